// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

struct LineChartViewTests {
    static let chart = ReportFigure.LineChart(
        title: "rates",
        xLabel: "layer",
        yLabel: "rate",
        x: [0, 1, 2, 3],
        series: [
            .init(name: "top-1 same", values: [0.2, 0.3, .nan, 0.25]),
            .init(name: "top-1 same, chance", values: [0.125, 0.125, 0.125, 0.125], dashed: true),
            .init(name: "MI", values: [0.1, 0.1, 0.1]),
            .init(name: "null", values: [0.05, 0.05, 0.05, 0.05], dashed: true),
        ]
    )

    @Test func drawsLinesPointsAndLegend() throws {
        let svg = LineChartView(chart: Self.chart).svg()
        let elements = try HeatmapChartTests.elements(svg)
        let lines = elements.filter { $0.name == "polyline" }
        // Plot lines: "top-1 same" is broken by its NaN into 0.2-0.3 and a lone point (a circle,
        // no line), 1 chance, 1 MI (3 values), 1 null; then 4 legend samples.
        #expect(lines.count == 4 + 4)
        #expect(lines.filter { $0.attributes["class"] == "series dashed" }.count == 2 + 2)
        let points = elements.filter { $0.name == "circle" }
        #expect(points.count == 3 + 4 + 3 + 4)
        #expect(svg.contains("<title>top-1 same — layer 1: 0.3</title>"))
        #expect(svg.contains("<title>top-1 same, chance — layer 3: 0.125</title>"))
        let legend = elements.filter { $0.name == "text" && $0.attributes["class"] == "lg" }.map(\.text)
        #expect(legend == ["top-1 same", "top-1 same, chance", "MI", "null"])
        // The y axis starts at 0 (all values are small and positive), x ticks are integers.
        let ticks = elements.filter { $0.name == "text" && $0.attributes["class"] == "tk" }.map(\.text)
        #expect(ticks.contains("0.00") || ticks.contains("0.0"))
        #expect(ticks.contains("3") && !ticks.contains("0.5"))
    }

    @Test func chanceLinesTakeTheColourOfTheirSeries() {
        let colors = LineChartView(chart: Self.chart).colors
        #expect(colors[0] == LineChartView.palette[0])
        #expect(colors[1] == colors[0])
        #expect(colors[2] == LineChartView.palette[1])
        #expect(colors[3] == LineChartView.palette[2])
    }

    @Test func intervalsDrawBandsErrorBarsAndWidenTheAxis() throws {
        // Points 0-1 have intervals (a band), point 2 has none, point 3 alone has one (an error bar).
        let chart = ReportFigure.LineChart(
            title: "acc",
            xLabel: "layer",
            yLabel: "accuracy",
            x: [0, 1, 2, 3],
            series: [
                .init(
                    name: "accuracy",
                    values: [0.4, 0.5, 0.45, 0.5],
                    lower: [0.3, 0.45, .nan, 0.2],
                    upper: [0.6, 0.55, .nan, 0.9]
                ),
                .init(name: "baseline", values: [0.3, 0.3, 0.3, 0.3], dashed: true),
            ]
        )
        let svg = LineChartView(chart: chart).svg()
        let elements = try HeatmapChartTests.elements(svg)
        let bands = elements.filter { $0.name == "polygon" && $0.attributes["class"] == "band" }
        #expect(bands.count == 1)
        #expect(bands.first?.attributes["fill"] == LineChartView.palette[0])
        #expect(bands.first.map { ($0.attributes["points"] ?? "").split(separator: " ").count } == 4)
        // The lone interval at layer 3 is an error bar: one stem and two caps.
        #expect(elements.filter { $0.name == "line" && $0.attributes["class"] == "err" }.count == 3)
        #expect(svg.contains("<title>accuracy — layer 1: 0.5 [0.45, 0.55]</title>"))
        #expect(svg.contains("<title>accuracy — layer 2: 0.45</title>"))
        // The axis reaches the upper end 0.9, above every value (max 0.5).
        let ticks = elements.filter { $0.name == "text" && $0.attributes["class"] == "tk" }.compactMap {
            Double($0.text)
        }
        #expect((ticks.max() ?? 0) >= 0.9)
        // A legend band swatch for the series with intervals only.
        #expect(elements.filter { $0.name == "rect" && $0.attributes["class"] == "band" }.count == 1)
    }

    @Test func seriesWithoutIntervalsDrawNoIntervalMarks() {
        let svg = LineChartView(chart: Self.chart).svg()
        #expect(!svg.contains("class=\"band\"") && !svg.contains("class=\"err\"") && !svg.contains("<polygon"))
    }

    @Test func emptyChartIsStillValid() throws {
        let chart = ReportFigure.LineChart(title: "", xLabel: "", yLabel: "", x: [], series: [])
        #expect(try HeatmapChartTests.elements(LineChartView(chart: chart).svg()).contains { $0.name == "svg" })
    }
}
