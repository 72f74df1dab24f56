// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// `analyze` and `inspect` of a trace captured with --timing: the per-layer timings travel inside
// the .moetrace file, so the capture's timing section comes back without timings.jsonl.

import Foundation
import MoERouting
import Testing

struct AnalyzeTimingTests {
    @Test(.enabled(if: venvReady, "needs the project venv (scripts/setup-python.sh)"))
    func analyzeOfATimedTraceHasTheCaptureTimingSection() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try tool(["run", "--output", dir.path, "--max-tokens", "16", "--timing"], timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        // Without the side file, the trace alone must carry the timings.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("timings.jsonl"))
        let trace = dir.appendingPathComponent("trace.moetrace").path
        let a = try tool(["analyze", trace, "--format", "json"])
        #expect(a.status == 0, "\(a.stderr)")
        let v = try ReportValue.parse(json: a.stdout)
        #expect(v.objectMembers?.map(\.key) == ["transition", "multihop", "domain", "capture", "input"])
        let timing = v["capture"]?["timing"]
        let layers = timing?["layers"]?.arrayValue ?? []
        #expect(layers.count == 4)
        let shares = layers.compactMap { $0["routing_share"]?.doubleValue }
        #expect(shares.count == 4)
        #expect(shares.allSatisfy { $0 > 0 && $0 < 1 }, "\(shares)")
        // Each share is routing ms over MoE ms of its own layer.
        for l in layers {
            guard let r = l["routing_ms"]?.doubleValue, let m = l["moe_ms"]?.doubleValue,
                let s = l["routing_share"]?.doubleValue
            else { continue }
            #expect(abs(r / m - s) < 1e-9)
        }
        if case .int(let steps)? = timing?["steps"] { #expect(steps > 0) } else { Issue.record("no steps") }

        let i = try tool(["inspect", trace])
        #expect(i.status == 0, "\(i.stderr)")
        #expect(i.stdout.contains("routing share of MoE time per layer: "), "\(i.stdout)")
    }
}
