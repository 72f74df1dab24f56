// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

struct BarChartViewTests {
    static func bars(_ svg: String) throws -> [Markup.Element] {
        try HeatmapChartTests.elements(svg).filter { $0.name == "rect" && $0.attributes["class"] == "bar" }
    }

    @Test func verticalBarsForLayerNumbersWithHighlights() throws {
        let chart = ReportFigure.BarChart(
            title: "js",
            xLabel: "layer",
            yLabel: "bits",
            labels: (0..<5).map(String.init),
            values: [0.1, 0.4, 0.2, .nan, 0.3],
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
            title: "paths",
            xLabel: "expert path",
            yLabel: "tokens",
            labels: ["3→5→1→6→2", "0→0→2→4→4", "7→1→4→1→0"],
            values: [30, 20, 10]
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
        let many = ReportFigure.BarChart(
            title: "",
            xLabel: "",
            yLabel: "",
            labels: (0..<20).map { "\($0 % 8)→1→2" },
            values: [Double](repeating: 1, count: 20)
        )
        #expect(BarChartView(chart: many).horizontal)
        // Forty layer numbers do not fit either, but every k-th is labelled instead.
        let layers = ReportFigure.BarChart(
            title: "",
            xLabel: "",
            yLabel: "",
            labels: (0..<40).map(String.init),
            values: [Double](repeating: 1, count: 40)
        )
        #expect(!BarChartView(chart: layers).horizontal)
    }

    @Test func errorBarsAndReferenceMarkersOnVerticalBars() throws {
        let chart = ReportFigure.BarChart(
            title: "js",
            xLabel: "layer",
            yLabel: "bits",
            labels: ["0", "1", "2"],
            values: [0.1, 0.2, 0.05],
            highlighted: [false, true, false],
            lower: [0.05, 0.15, .nan],
            upper: [0.3, 0.25, .nan],
            reference: [0.08, .nan, 0.4],
            referenceLabel: "null 95th percentile"
        )
        let view = BarChartView(chart: chart)
        #expect(!view.horizontal)
        let svg = view.svg()
        let elements = try HeatmapChartTests.elements(svg)
        // Two bars with intervals: a stem and two caps each.
        #expect(elements.filter { $0.name == "line" && $0.attributes["class"] == "err" }.count == 2 * 3)
        // Two reference markers on bars plus one legend sample.
        let refs = elements.filter { $0.name == "line" && $0.attributes["class"] == "ref" }
        #expect(refs.count == 2 + 1)
        #expect(svg.contains("<title>layer 0: 0.1 [0.05, 0.3]; null 95th percentile 0.08</title>"))
        #expect(svg.contains("<title>layer 2: null 95th percentile 0.4</title>"))
        #expect(svg.contains(">null 95th percentile</text>") && svg.contains(">highlighted (1 of 3)</text>"))
        // The axis reaches the reference 0.4, twice the largest bar.
        let ticks = elements.filter { $0.name == "text" && $0.attributes["class"] == "tk" }.compactMap {
            Double($0.text)
        }
        #expect((ticks.max() ?? 0) >= 0.4)
        // The interval's upper end lies above the bar's top (smaller y).
        let bars = try Self.bars(svg)
        let stem = try #require(elements.first { $0.name == "line" && $0.attributes["class"] == "err" })
        let stemTop = min(Double(stem.attributes["y1"] ?? "") ?? 0, Double(stem.attributes["y2"] ?? "") ?? 0)
        #expect(stemTop < (Double(bars[0].attributes["y"] ?? "") ?? 0))
    }

    @Test func referenceAloneGetsALegendAndHorizontalBarsGetIntervals() throws {
        let chart = ReportFigure.BarChart(
            title: "paths",
            xLabel: "expert path",
            yLabel: "tokens",
            labels: ["3→5→1→6→2", "0→0→2→4→4"],
            values: [30, 20],
            lower: [25, 10],
            upper: [35, 28],
            reference: [12, 12],
            referenceLabel: "expected under independence"
        )
        let view = BarChartView(chart: chart)
        #expect(view.horizontal)
        let svg = view.svg()
        let elements = try HeatmapChartTests.elements(svg)
        #expect(elements.filter { $0.name == "line" && $0.attributes["class"] == "err" }.count == 2 * 3)
        #expect(elements.filter { $0.name == "line" && $0.attributes["class"] == "ref" }.count == 2 + 1)
        #expect(svg.contains(">expected under independence</text>") && !svg.contains("highlighted"))
        // The value label sits right of the interval's end, not inside it.
        let stem = try #require(elements.first { $0.name == "line" && $0.attributes["class"] == "err" })
        let stemEnd = max(Double(stem.attributes["x1"] ?? "") ?? 0, Double(stem.attributes["x2"] ?? "") ?? 0)
        let label = try #require(
            elements.first { $0.name == "text" && $0.attributes["class"] == "vl" && $0.text == "30" }
        )
        #expect((Double(label.attributes["x"] ?? "") ?? 0) > stemEnd)
    }

    @Test func chartsWithoutIntervalsOrReferencesDrawAsBefore() {
        let plain = ReportFigure.BarChart(
            title: "js",
            xLabel: "layer",
            yLabel: "bits",
            labels: ["0", "1"],
            values: [0.1, 0.2]
        )
        let svg = BarChartView(chart: plain).svg()
        #expect(!svg.contains("class=\"err\"") && !svg.contains("class=\"ref\"") && !svg.contains("legend"))
        // NaN intervals and references draw nothing either, and no legend.
        var empty = plain
        empty.lower = [.nan, .nan]
        empty.upper = [.nan, .nan]
        empty.reference = [.nan, .nan]
        empty.referenceLabel = "null"
        #expect(BarChartView(chart: empty).svg() == svg)
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
