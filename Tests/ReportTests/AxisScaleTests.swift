// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import MoERoutingReport

struct AxisScaleTests {
    @Test func stepsAreOneTwoOrFiveTimesAPowerOfTen() {
        #expect(AxisScale.niceStep(span: 1, targetTicks: 5) == (0.2, 1))
        #expect(AxisScale.niceStep(span: 30, targetTicks: 8) == (5, 0))
        #expect(AxisScale.niceStep(span: 0.12, targetTicks: 5) == (0.02, 2))
        #expect(AxisScale.niceStep(span: 870, targetTicks: 5) == (200, 0))
        #expect(AxisScale.niceStep(span: 0.08, targetTicks: 1) == (0.1, 1))
        #expect(AxisScale.niceStep(span: 0, targetTicks: 5) == (1, 0))
    }

    @Test func widensToWholeStepsAndMapsPixels() {
        let axis = AxisScale(minimum: 0.03, maximum: 0.91, targetTicks: 5, from: 260, to: 0)
        #expect(axis.minimum == 0)
        #expect(axis.maximum == 1)
        #expect(axis.ticks.map(axis.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(axis.pixel(0.5) == 130)
        #expect(axis.pixel(1) == 0)
    }

    @Test func keepsExactRangeWhenAsked() {
        let axis = AxisScale(minimum: 0, maximum: 30, targetTicks: 8, from: 0, to: 300, wholeSteps: false)
        #expect(axis.ticks == [0, 5, 10, 15, 20, 25, 30])
        let layers = AxisScale(
            minimum: 0,
            maximum: 3,
            targetTicks: 8,
            from: 0,
            to: 300,
            wholeSteps: false,
            integers: true
        )
        #expect(layers.ticks == [0, 1, 2, 3])
        #expect(layers.label(2) == "2")
    }

    @Test func handlesDegenerateInput() {
        let flat = AxisScale(minimum: 0.125, maximum: 0.125, targetTicks: 5, from: 0, to: 100)
        #expect(flat.minimum < 0.125 && flat.maximum > 0.125)
        let zero = AxisScale(minimum: 0, maximum: 0, targetTicks: 5, from: 0, to: 100)
        #expect(zero.ticks.contains(0))
        let nonFinite = AxisScale(minimum: .nan, maximum: .infinity, targetTicks: 5, from: 0, to: 100)
        #expect(nonFinite.minimum == 0 && nonFinite.maximum == 1)
        let negative = AxisScale(minimum: -0.3, maximum: 0.2, targetTicks: 5, from: 0, to: 100)
        #expect(negative.label(0) == "0.0")
        #expect(negative.ticks.first.map(negative.label) == "-0.3")
        #expect(negative.ticks.last.map(negative.label) == "0.2")
        #expect(AxisScale(minimum: 0, maximum: 1e-300, targetTicks: 5, from: 0, to: 1).ticks.count <= 200)
    }
}
