// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

struct FigureLayoutTests {
    static func heatmap(_ l: Int, size: Int = 8, x: String? = nil) -> ReportFigure.Heatmap {
        let labels = (0..<size).map(String.init)
        return .init(
            title: "layer \(l)",
            xLabel: x ?? "expert at layer \(l + 1)",
            yLabel: "expert at layer \(l)",
            rowLabels: labels,
            columnLabels: labels,
            values: [[Double]](repeating: [Double](repeating: 0, count: size), count: size)
        )
    }

    static let line = ReportFigure.lines(.init(title: "l", xLabel: "", yLabel: "", x: [], series: []))

    @Test func runsOfAlikeHeatmapsBecomeSmallMultiples() {
        let perLayer = (0..<31).map { Self.heatmap($0) }
        let pooled = Self.heatmap(0, x: "expert j at layer l+1")
        let blocks = FigureLayout.blocks(perLayer.map(ReportFigure.heatmap) + [.heatmap(pooled), Self.line])
        #expect(blocks == [.multiples(perLayer), .single(.heatmap(pooled)), .single(Self.line)])
    }

    @Test func shortRunsShareAScaleAndOtherFiguresBreakRuns() {
        let a = Self.heatmap(0)
        let b = Self.heatmap(1)
        let c = Self.heatmap(2, size: 4)
        #expect(
            FigureLayout.blocks([.heatmap(a), .heatmap(b), .heatmap(c)]) == [.alike([a, b]), .single(.heatmap(c))]
        )
        #expect(
            FigureLayout.blocks([.heatmap(a), Self.line, .heatmap(b)]) == [
                .single(.heatmap(a)), .single(Self.line), .single(.heatmap(b)),
            ]
        )
        #expect(FigureLayout.blocks([]) == [])
    }

    @Test func masksDigitRuns() {
        #expect(FigureLayout.maskDigits("top-1 expert at layer 12") == "top-# expert at layer #")
        #expect(FigureLayout.maskDigits("l+1 -> 30") == "l+# -> #")
        #expect(FigureLayout.alike(Self.heatmap(3), Self.heatmap(29)))
        #expect(!FigureLayout.alike(Self.heatmap(3), Self.heatmap(3, size: 9)))
    }
}
