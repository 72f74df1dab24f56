// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The transition and multihop analyzers on the real Mixtral-8x7B traces in ../shared/data
// (MixtralRealTraces). Skipped when the data is absent.

import Foundation
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

struct TransitionRealDataTests {
    /// Next-layer top-1 equality on real Mixtral routing is at chance (1/8): science.md measured
    /// 0.127 (HumanEval) and 0.117 (GSM8K). Skipped when ../shared/data is absent.
    @Test(
        .enabled(if: MixtralRealTraces.available, "skipped: ../shared/data with the Mixtral routing traces is absent")
    )
    func nextLayerTop1IsAtChance() throws {
        for (name, measured, records) in [
            (MixtralRealTraces.humaneval, 0.127, 10779), (MixtralRealTraces.gsm8k, 0.117, 7889),
        ] {
            let (block, n) = try MixtralRealTraces.block([name])
            #expect(n == records)
            #expect(block.recordCount == records)
            let a = TransitionAnalyzer()
            try a.begin(AnalysisContext(shape: .mixtral8x7B))
            try a.consume(block)
            let report = try a.finish()
            let pooled = report.json["pooled"]
            let same = pooled?["top1_same"]?.doubleValue ?? .nan
            #expect(abs(same - measured) < 0.0015, "\(name): top1_same \(same), science.md \(measured)")
            #expect(abs(same - 0.125) < 0.015)
            // Holes: some tokens lack layers, so some pairs are skipped and counted.
            #expect((pooled?["skipped_pairs"]?.intValue ?? 0) > 0)
            // Overlap fraction near chance 0.25 (science.md: 0.24-0.25).
            #expect(abs((pooled?["overlap_fraction"]?.doubleValue ?? 0) - 0.245) < 0.015)
            // Two problems: cross-validation runs (2 folds), and its figures are reported.
            #expect(pooled?["prediction"]?["top1_accuracy"]?.doubleValue != nil)
            #expect(report.json["problems"]?.intValue == 2)
        }
    }

    /// The same at distances 2..16 (science.md): every same-id rate stays near chance.
    @Test(
        .enabled(if: MixtralRealTraces.available, "skipped: ../shared/data with the Mixtral routing traces is absent")
    )
    func sameIdRatesAtLongerDistancesAreAtChance() throws {
        let a = MultiHopAnalyzer()
        try a.begin(AnalysisContext(shape: .mixtral8x7B))
        for name in [MixtralRealTraces.humaneval, MixtralRealTraces.gsm8k] {
            try a.consume(try MixtralRealTraces.block([name]).block)
        }
        let json = try a.finish().json
        for d in 2...16 {
            let row = json["distances"]?[d - 1]
            #expect(row?["distance"]?.intValue == d)
            #expect(abs((row?["top1_same"]?.doubleValue ?? 0) - 0.125) < 0.02, "distance \(d)")
            #expect(abs((row?["overlap_fraction"]?.doubleValue ?? 0) - 0.25) < 0.02, "distance \(d)")
        }
        #expect((json["paths"]?["complete_tokens"]?.intValue ?? 0) > 0)
    }
}
