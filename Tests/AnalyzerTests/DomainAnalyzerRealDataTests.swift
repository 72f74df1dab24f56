// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainAnalyzer on the real Mixtral-8x7B traces in ../shared/data (2 HumanEval and 2 GSM8K
// problems, MixtralRealTraces) as one block. Skipped when the data is absent.

import DomainAnalyzer
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

struct DomainAnalyzerRealDataTests {
    // Skipped (with this reason) when ../shared/data is absent.
    @Test(.enabled(if: MixtralRealTraces.available, "skipped: ../shared/data with the Mixtral traces is absent"))
    func realTracesTwoProblemsPerDomain() throws {
        let (block, records) = try MixtralRealTraces.block([MixtralRealTraces.humaneval, MixtralRealTraces.gsm8k])
        let r = try DomainFixture.run(.mixtral8x7B, [block])
        #expect(r.json["applicable"] == true)
        let domains = try #require(r.json["domains"]?.arrayValue)
        #expect(domains.map { $0["name"]?.stringValue ?? "" } == ["gsm8k", "humaneval"])
        #expect(domains.map { $0["problems"]?.intValue ?? 0 } == [2, 2])
        // Every record is a present cell.
        #expect(domains.map { $0["records"]?.intValue ?? 0 } == [7889, 10779])
        #expect(records == 7889 + 10779)
        // 2 vs 2 problems: C(4, 2) = 6 relabelings, enumerated; a relabeling and its mirror tie,
        // so p is a multiple of 2/6 and at least 1/3 (within [1/6, 1]).
        #expect(r.json["permutation"]?["method"] == "exact")
        #expect(r.json["permutation"]?["relabelings"] == 6)
        let layers = try #require(r.json["layers"]?.arrayValue)
        #expect(layers.count == 32)
        var line = "real traces, gsm8k vs humaneval, per-layer JS (bits):"
        for (l, layer) in layers.enumerated() {
            let js = try #require(layer["js_divergence_bits"]?.doubleValue)
            let p = try #require(layer["p_value"]?.doubleValue)
            #expect(js > 0 && js < 1)
            #expect(p >= 1.0 / 6 && p <= 1)
            #expect([2.0 / 6, 4.0 / 6, 1].contains { abs($0 - p) < 1e-12 }, "layer \(l) p = \(p)")
            line += " \(l):\(String(format: "%.4f", js))(p=\(String(format: "%.2f", p)))"
        }
        print(line)
        for t in r.json["transfer"]?.arrayValue ?? [] {
            print(
                "transfer \(t["train"]?.stringValue ?? "")->\(t["test"]?.stringValue ?? ""): top-1 \(t["top1_accuracy"]?.doubleValue ?? .nan), within-test CV \(t["within_test_cv_top1_accuracy"]?.doubleValue ?? .nan), most frequent \(t["baseline_most_frequent"]?.doubleValue ?? .nan), evaluated \(t["evaluated"]?.intValue ?? 0)"
            )
        }
        print(r.renderText())
    }
}
