// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

/// `--pairs` (the multihop analyzer's layer pairs kept in full) on demo and analyze: accepted
/// values reach the report, bad ones fail with one line naming the entry and the fix.
struct PairsOptionTests {
    @Test func badPairsAreRefusedInOneLine() throws {
        let dir = try temporaryDirectory()
        for (value, expected) in [
            ("5:3", "l must be below j (write 3:5)"),
            ("2:2", "must differ"),
            ("0-3", "malformed"),
            ("0:4", "out of range: the model has 4 MoE layers (0...3)"),
        ] {
            let r = try tool([
                "demo", "--output", dir.path, "--problems", "2", "--tokens", "10", "--shape", "tiny-mixtral",
                "--pairs", value,
            ])
            #expect(r.status != 0, "--pairs \(value) was accepted")
            let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage") && !$0.isEmpty }
            #expect(lines.first?.contains(expected) == true, "--pairs \(value): \(r.stderr)")
            #expect(r.stderr.contains("--pairs"))
        }
    }

    @Test func analyzeChecksPairsAgainstTheTrace() throws {
        let dir = try temporaryDirectory()
        let demo = try tool([
            "demo", "--output", dir.path, "--problems", "2", "--tokens", "10", "--shape", "tiny-mixtral",
            "--pairs", "0:3",
        ])
        #expect(demo.status == 0, "\(demo.stderr)")
        let trace = dir.appendingPathComponent("demo.moetrace").path
        let bad = try tool(["analyze", trace, "--analyzer", "multihop", "--pairs", "1:9", "--format", "json"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("1:9"))
        #expect(bad.stderr.contains("0 <= l < j <= 3"))
        let good = try tool(["analyze", trace, "--analyzer", "multihop", "--pairs", "1:3", "--format", "json"])
        #expect(good.status == 0, "\(good.stderr)")
        let v = try ReportValue.parse(json: good.stdout)
        #expect(v["multihop"]?["tokens"] == .int(40))
    }
}
