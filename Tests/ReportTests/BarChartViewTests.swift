// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
@testable import MoERoutingReport
import Testing

struct BarChartViewTests {
    static func bars(_ svg: String) throws -> [Markup.Element] {
        try HeatmapChartTests.elements(svg).filter { $0.name == "rect" && $0.attributes["class"] == "bar" }
    }

    @Test func verticalBarsForLayerNumbersWithHighlights() throws {
        let chart = ReportFigure.BarChart(
            title: "js", xLabel: "layer", yLabel: "bits", labels: (0..<5).map(String.init), values: [0.1, 0.4, 0.2, .nan, 0.3],
            highlighted: [false, true, false, false, true]
        )
        let view = BarChartView(chart: chart)
        #expect(!view.horizontal)
        let svg = view.svg()
        let bars = try Self.bars(svg)
        #expect(bars.count == 4)
        #expect(bars.filter { $0.attributes["fill"] == BarChartView.accent }.count == 2)
        #expect(svg.contains("<title>layer 1: 0.4 (highlighted)</title>"))
        #expect(svg.contains(">highlighted (2 of 5)</text>"))
        // Bar heights are proportional to values: 0.4 is twice 0.2.
        let heights = bars.compactMap { Double($0.attributes["height"] ?? "") }
        #expect(abs(heights[1] - 2 * heights[2]) <= 0.2)
    }

    @Test func horizontalBarsForLongLabels() throws {
        let chart = ReportFigure.BarChart(
            title: "paths", xLabel: "expert path", yLabel: "tokens", labels: ["3→5→1→6→2", "0→0→2→4→4", "7→1→4→1→0"], values: [30, 20, 10]
        )
        let view = BarChartView(chart: chart)
        #expect(view.horizontal)
        let svg = view.svg()
        let bars = try Self.bars(svg)
        let widths = bars.compactMap { Double($0.attributes["width"] ?? "") }
        #expect(widths.count == 3 && abs(widths[0] - 3 * widths[2]) <= 0.2)
        #expect(svg.contains(">3→5→1→6→2</text>"))
        #expect(svg.contains("class=\"vl\">30</text>"))
        #expect(!svg.contains("highlighted"))
    }

    @Test func shortCategoricalLabelsStayVerticalWhileTheyFit() {
        let few = ReportFigure.BarChart(title: "", xLabel: "", yLabel: "", labels: ["3→5→1", "0→0→2"], values: [2, 1])
        #expect(!BarChartView(chart: few).horizontal)
        // Twenty paths no longer fit under their bars; every label must stay, so bars turn.
        let many = ReportFigure.BarChart(title: "", xLabel: "", yLabel: "", labels: (0..<20).map { "\($0 % 8)→1→2" }, values: [Double](repeating: 1, count: 20))
        #expect(BarChartView(chart: many).horizontal)
        // Forty layer numbers do not fit either, but every k-th is labelled instead.
        let layers = ReportFigure.BarChart(title: "", xLabel: "", yLabel: "", labels: (0..<40).map(String.init), values: [Double](repeating: 1, count: 40))
        #expect(!BarChartView(chart: layers).horizontal)
    }

    @Test func negativeValuesHangBelowZero() throws {
        let chart = ReportFigure.BarChart(title: "d", xLabel: "", yLabel: "", labels: ["1", "2"], values: [1, -1])
        let bars = try Self.bars(BarChartView(chart: chart).svg())
        let ys = bars.compactMap { Double($0.attributes["y"] ?? "") }
        #expect(ys.count == 2 && ys[1] > ys[0])
        let empty = ReportFigure.BarChart(title: "", xLabel: "", yLabel: "", labels: [], values: [])
        #expect(try Self.bars(BarChartView(chart: empty).svg()).isEmpty)
    }
}
