// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The capture section's router decisiveness figures: entropy (nats) and the k/(k+1) margin (a
// probability) are different units, so each has its own chart and axis.

import MoERouting
import MoERoutingPipeline
import Testing

struct CaptureReportTests {
    @Test func decisivenessChartsPutOneUnitOnEachAxis() throws {
        let entropy = [1.2, 0.9, .nan]
        let margin = [0.05, 0.12, .nan]
        let figures = CaptureReport.decisivenessFigures(entropy: entropy, margin: margin)
        #expect(figures.count == 2)
        var charts: [ReportFigure.LineChart] = []
        for f in figures {
            guard case .lines(let c) = f else {
                Issue.record("expected a line chart, got \(f)")
                continue
            }
            charts.append(c)
        }
        try #require(charts.count == 2)
        // One series per chart, and the axis names the unit of that series.
        #expect(charts.map(\.series.count) == [1, 1])
        #expect(charts[0].yLabel == "entropy (nats)")
        #expect(charts[0].series[0].values.prefix(2) == [1.2, 0.9])
        #expect(charts[1].yLabel == "probability margin")
        #expect(charts[1].series[0].values.prefix(2) == [0.05, 0.12])
        #expect(charts.allSatisfy { $0.x == [0, 1, 2] && $0.xLabel == "MoE layer" })
    }
}
