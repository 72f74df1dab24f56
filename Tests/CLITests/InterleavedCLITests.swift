// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

/// `--interleaved`: JSONL traces whose problems' records interleave.
struct InterleavedCLITests {
    /// Two problems of three tokens, two layers each: sorted (problem after problem) or
    /// round-robin by token.
    static func lines(interleaved: Bool) -> [String] {
        func record(_ p: Int, _ t: Int, _ l: Int) -> String {
            #"{"dataset":"d","problem_id":\#(p),"layer":\#(l),"experts":[\#((p + t + l) % 4),\#((p + t + l + 1) % 4)],"gating_probs":[0.6,0.4],"token_idx":\#(t)}"#
        }
        let order: [(Int, Int)] =
            interleaved
            ? (0..<3).flatMap { t in [(5, t), (2, t)] }
            : [5, 2].flatMap { p in (0..<3).map { (p, $0) } }
        return order.flatMap { p, t in (0..<2).map { record(p, t, $0) } }
    }

    @Test func inspectAndConvertReadInterleavedTraces() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("steps.jsonl").path
        let sorted = dir.appendingPathComponent("sorted.jsonl").path
        try (Self.lines(interleaved: true).joined(separator: "\n") + "\n").write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        try (Self.lines(interleaved: false).joined(separator: "\n") + "\n").write(
            toFile: sorted,
            atomically: true,
            encoding: .utf8
        )

        // Without the flag: one line naming the flag.
        let refused = try tool(["inspect", path])
        #expect(refused.status != 0)
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("steps.jsonl:5"), "\(refused.stderr)")
        #expect(refused.stderr.contains("or read it with --interleaved"), "\(refused.stderr)")

        let r = try tool(["inspect", path, "--interleaved", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try ReportValue.parse(json: r.stdout)
        #expect(v["records"] == .int(12))
        #expect(v["tokens"] == .int(6))
        #expect(v["domains"]?[0]?["problems"] == .int(2))

        // convert --interleaved writes what converting the sorted file writes.
        let a = dir.appendingPathComponent("a.jsonl").path
        let b = dir.appendingPathComponent("b.jsonl").path
        let c1 = try tool(["convert", path, a, "--interleaved"])
        let c2 = try tool(["convert", sorted, b])
        #expect(c1.status == 0, "\(c1.stderr)")
        #expect(c2.status == 0, "\(c2.stderr)")
        let written = try String(contentsOfFile: a, encoding: .utf8)
        #expect(written == (try String(contentsOfFile: b, encoding: .utf8)))
        #expect(written.split(separator: "\n").count == 12)

        let help = try tool(["analyze", "--help"])
        #expect(help.stdout.contains("--interleaved"))
    }
}
