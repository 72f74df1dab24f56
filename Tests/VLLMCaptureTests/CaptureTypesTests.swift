// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing
import VLLMCapture

@Suite struct CaptureTypesTests {
    @Test func routerLogitStatisticsMatchHandComputedValues() {
        var s = RouterLogitStatistics(layers: 2)
        // Row 1: four equal logits: entropy ln 4, sorted probs 1/4 each, margin p2 - p3 = 0.
        // Row 2: logits (ln 4, ln 2, ln 1, ln 1): probs 0.5, 0.25, 0.125, 0.125; margin p2 - p3 = 0.125;
        // entropy = 0.5 ln 2 + 0.25 ln 4 + 2 * 0.125 ln 8 = 1.75 ln 2.
        let logits: [Float] = [0, 0, 0, 0, Float(log(4.0)), Float(log(2.0)), 0, 0]
        logits.withUnsafeBufferPointer { s.add(layer: 1, logits: $0, experts: 4, topK: 2) }
        #expect(s.rows == [0, 2])
        #expect(abs(s.entropySum[1] - (log(4.0) + 1.75 * log(2.0))) < 1e-6)
        #expect(abs(s.marginSum[1] - 0.125) < 1e-6)
        // Out-of-range layers are ignored.
        logits.withUnsafeBufferPointer { s.add(layer: 5, logits: $0, experts: 4, topK: 2) }
        #expect(s.rows == [0, 2])
        let value = s.reportValue
        #expect(value[1]?["mean_margin_k_k1"]?.doubleValue.map { abs($0 - 0.0625) < 1e-6 } == true)
    }

    @Test func timingTotalsGiveRoutingShares() {
        var t = LayerTimingTotals(layers: 2)
        t.add(StepTiming(step: 0, rows: 5, routingNanoseconds: [10, 30], moeNanoseconds: [100, 60]))
        t.add(StepTiming(step: 1, rows: 2, routingNanoseconds: [10, 0], moeNanoseconds: [100, 0]))
        #expect(t.steps == 2 && t.rows == 7)
        #expect(t.routingNanoseconds == [20, 30])
        #expect(t.routingShare == [0.1, 0.5])
        #expect(LayerTimingTotals(layers: 1).routingShare == [0])
    }

    @Test func progressEstimatesAreBoundedByTheTokenBudget() {
        let p = CaptureProgress(
            finished: 1,
            total: 4,
            generatedTokens: 100,
            routedRows: 400,
            seconds: 2,
            remainingTokenBudget: 300
        )
        #expect(p.tokensPerSecond == 50)
        #expect(p.rowsPerSecond == 200)
        #expect(p.estimatedSecondsLeft == 6)
        #expect(
            CaptureProgress(
                finished: 0,
                total: 1,
                generatedTokens: 0,
                routedRows: 0,
                seconds: 0,
                remainingTokenBudget: 9
            ).estimatedSecondsLeft == nil
        )
    }
}
