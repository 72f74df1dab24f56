// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import MoERoutingReport

struct ColorScaleTests {
    @Test func endsAreViridisEnds() {
        let scale = ColorScale(minimum: 2, maximum: 4)
        #expect(scale.hex(2) == "#440154")
        #expect(scale.hex(4) == "#fde725")
        #expect(scale.hex(-10) == "#440154")
        #expect(scale.hex(10) == "#fde725")
        #expect(scale.hex(.nan) == "#440154")
        // Halfway between anchors 4 (#26828e) and 5 (#1f9e89).
        #expect(scale.hex(3) == "#23908c")
    }

    @Test func lightnessRisesMonotonically() {
        var previous = -1.0
        for i in 0...100 {
            let (r, g, b) = ColorScale.viridis(Double(i) / 100)
            let luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
            #expect(luminance > previous, "luminance falls at \(i)%")
            previous = luminance
        }
        #expect(!ColorScale(minimum: 0, maximum: 1).wantsDarkText(0))
        #expect(ColorScale(minimum: 0, maximum: 1).wantsDarkText(1))
    }

    @Test func coversFiniteValuesAndRoundsOutwards() throws {
        let scale = try #require(ColorScale.covering([[[0.0003, .nan], [0.4375, 0.1]], [[.infinity, 0.2]]]))
        #expect(scale.minimum == 0.0003)
        #expect(scale.maximum == 0.4375)
        let rounded = scale.rounded()
        #expect(rounded.minimum == 0)
        #expect(rounded.maximum == 0.5)
        // 0.045...0.215 widens to 0.04...0.22 in steps of 0.02, but a legend over that range
        // steps by 0.05, so it widens again to 0...0.25, where both ends are legend ticks.
        let twice = ColorScale(minimum: 0.045, maximum: 0.215).rounded()
        #expect(twice.minimum == 0 && twice.maximum == 0.25)
        let ticks = HeatmapChart.legendTicks(scale: twice, length: 300, gap: 20).map(\.1)
        #expect(ticks == ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25"])
        #expect(ColorScale.covering([[[.nan]]]) == nil)
        #expect(ColorScale.covering([]) == nil)
    }

    @Test func degenerateRangesWiden() {
        #expect(ColorScale(minimum: 0, maximum: 0) == ColorScale(minimum: 0, maximum: 1))
        #expect(ColorScale(minimum: 3, maximum: 3) == ColorScale(minimum: 3, maximum: 6))
        #expect(ColorScale(minimum: .nan, maximum: 1) == ColorScale(minimum: 0, maximum: 1))
        #expect(ColorScale(minimum: 5, maximum: 5).position(5) == 0)
    }
}
