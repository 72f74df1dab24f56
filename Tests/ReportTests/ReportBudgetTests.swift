// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

/// The page size budget at large E: DeepSeek-V3's shape (58 MoE layers, 256 experts).
struct ReportBudgetTests {
    /// A 256 x 256 row-normalised matrix of pseudo-random values (noise: it does not compress).
    static func noisyTransition(layer: Int, experts n: Int = 256) -> ReportFigure.Heatmap {
        var x = UInt64(layer + 1) &* 0x9E37_79B9_7F4A_7C15
        let values: [[Double]] = (0..<n).map { _ in
            let raw = (0..<n).map { _ -> Double in
                x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Double(x >> 11) / Double(1 << 53)
            }
            let sum = raw.reduce(0, +)
            return raw.map { $0 / sum }
        }
        let labels = (0..<n).map(String.init)
        return .init(
            title: "top-1 layer \(layer) -> \(layer + 1)",
            xLabel: "top-1 expert at layer \(layer + 1)",
            yLabel: "top-1 expert at layer \(layer)",
            rowLabels: labels,
            columnLabels: labels,
            values: values
        )
    }

    static func result(_ figures: [ReportFigure]) -> AnalysisResult {
        AnalysisResult(
            reports: [AnalyzerReport(analyzer: "transition", title: "T", json: [:], figures: figures)],
            failures: [],
            statistics: .init()
        )
    }

    @Test func manyFullMatricesStayUnderTheBudgetAndSayWhatWasSummarised() throws {
        // 57 layer pairs of 256 x 256 noise: about 9 MB of images if all were drawn.
        let pairs = 57
        let figures: [ReportFigure] = (0..<pairs).map { .heatmap(Self.noisyTransition(layer: $0)) }
        let html = HTMLReport.render(Self.result(figures))
        let bytes = html.utf8.count
        print("report size for \(pairs) noisy heatmaps of 256 x 256: \(bytes) bytes")
        #expect(bytes <= 5_000_000)
        let drawn = Markup.count("href=\"data:image/png;base64,", in: html)
        #expect(drawn > 0 && drawn < pairs)
        // Every s-th drawn, the rest named in the summary table with a pointer to report.json.
        let stride = (pairs + drawn - 1) / drawn
        #expect(html.contains("\(drawn) of \(pairs) drawn (every \(ReportPage.ordinal(stride))"))
        #expect(html.contains("\(pairs - drawn) heatmaps not drawn, to keep the page under its size budget"))
        #expect(html.contains("every value is in report.json"))
        for layer in 0..<pairs {
            let title = "top-1 layer \(layer) -&gt; \(layer + 1)"
            let inPanel = html.contains("<div class=\"ptitle\">\(title)</div>")
            let inTable = html.contains("<td>\(title)</td>")
            #expect(inPanel != inTable, "layer pair \(layer): drawn \(inPanel), summarised \(inTable)")
            #expect(inPanel == (layer % stride == 0))
        }
        #expect(html.contains("each panel: experts ordered by usage"))
        for svg in Markup.svgFragments(html) {
            if case .failure(let error) = Markup.parse(svg) { Issue.record("\(error)") }
        }
    }

    @Test func sparseMatricesAreAllDrawn() throws {
        // 57 pairs of 256 x 256 with few tokens each (mostly zeros): compress to a few KB each.
        let n = 256
        let figures: [ReportFigure] = (0..<57).map { layer in
            var h = Self.noisyTransition(layer: layer, experts: 4)
            var values = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
            for i in 0..<300 { values[(i * 37 + layer) % n][(i * 101 + i / 7) % n] = 1 }
            h.values = values
            h.rowLabels = (0..<n).map(String.init)
            h.columnLabels = h.rowLabels
            return .heatmap(h)
        }
        let html = HTMLReport.render(Self.result(figures))
        print("report size for 57 sparse heatmaps of 256 x 256: \(html.utf8.count) bytes")
        #expect(html.utf8.count < 2_000_000)
        #expect(Markup.count("href=\"data:image/png;base64,", in: html) == 57)
        #expect(!html.contains("not drawn"))
    }

    @Test func allowanceSharesTheBudgetFairly() {
        // Three blocks of 10 pieces of 100 bytes and one small block of 50: 3,050 bytes in all.
        let big = [Int](repeating: 100, count: 10)
        let costs: [[[Int]]] = [[big, [], big], [[50], big]]
        #expect(ReportPage.allowance(costs, budget: 5_000) == [[nil, nil, nil], [nil, nil]])
        // Budget 1,550: the small block keeps everything, the others share 1,500: 500 each = 5 pieces.
        #expect(ReportPage.allowance(costs, budget: 1_550) == [[5, nil, 5], [nil, 5]])
        // Not even one piece fits a share of 25 bytes.
        #expect(ReportPage.allowance(costs, budget: 100) == [[0, nil, 0], [0, 0]])
        #expect(ReportPage.subset(57, allowed: 20) == (Array(Swift.stride(from: 0, to: 57, by: 3)), 3))
        #expect(ReportPage.subset(5, allowed: nil).drawn == [0, 1, 2, 3, 4])
    }

    @Test func aSingleHeatmapOverItsShareBecomesATableRow() {
        let page = ReportPage(heatmapBudget: 1_000)
        var copy = page
        let h = Self.noisyTransition(layer: 3, experts: 80)
        let html = copy.document(Self.result([.heatmap(h)]), title: "t", subtitle: nil)
        #expect(!html.contains("data:image/png"))
        #expect(html.contains("1 heatmap not drawn, to keep the page under its size budget (none drawn)"))
        #expect(html.contains("<td>80 × 80</td>"))
    }
}

/// What stays as it was for Mixtral's shape, and the hover data of large heatmaps.
struct LargeHeatmapPageTests {
    @Test func mixtralShapedPageKeepsVectorCellsInIDOrderWithoutScript() throws {
        let html = HTMLReport.render(ReportFixtures.mixtralSized())
        #expect(!html.contains("<script"))
        #expect(!html.contains("data:image/png"))
        #expect(!html.contains("not drawn"))
        // The 31 per-layer-pair 8 x 8 panels: natural order, said once over the grid.
        #expect(html.contains("<div class=\"axes\">each panel: experts in id order (at most 16 per axis)</div>"))
        let panel = try #require(html.components(separatedBy: "<div class=\"panel\">").dropFirst().first)
        let cells = HeatmapChartTests.cellRects(panel)
        #expect(cells.count == 64)
        #expect(cells[0].contains("top-1 expert at layer 0: 0, top-1 expert at layer 1: 0 ="))
        #expect(cells[9].contains("top-1 expert at layer 0: 1, top-1 expert at layer 1: 1 ="))
    }

    @Test func imagesCarryTheirLabelsInDrawnOrderAndTheLevelValues() throws {
        let n = 128
        var values = [[Double]](repeating: [Double](repeating: 0.25, count: n), count: n)
        for r in 0..<n { values[r][100] = 0.75 }  // the heaviest column: drawn first
        let h = ReportFigure.Heatmap(
            title: "affinity",
            xLabel: "expert at layer 1",
            yLabel: "expert at layer 0",
            rowLabels: (0..<n).map { "r\($0)" },
            columnLabels: (0..<n).map { "c\($0)" },
            values: values
        )
        let html = HTMLReport.render(ReportBudgetTests.result([.heatmap(h)]))
        #expect(Markup.count("<script>", in: html) == 1)
        #expect(html.contains("window.moeCell"))
        let cols = try #require(Markup.between("data-cols=\"", "\"", in: html)).split(separator: "|").map(String.init)
        let rows = try #require(Markup.between("data-rows=\"", "\"", in: html)).split(separator: "|").map(String.init)
        #expect(cols.count == n && rows.count == n)
        #expect(cols[0] == "c100" && cols[1] == "c0" && cols[100] == "c99")
        #expect(rows == (0..<n).map { "r\($0)" })
        let loText = try #require(Markup.between("data-lo=\"", "\"", in: html))
        let stepText = try #require(Markup.between("data-step=\"", "\"", in: html))
        let lo = try #require(Double(loText))
        let step = try #require(Double(stepText))
        let image = try HeatmapChartTests.embeddedImage(html)
        // Level to value as the script computes it: lo + level x step, within half a step.
        #expect(abs(lo + Double(image.index(x: 0, y: 5)) * step - 0.75) <= step / 2 + 1e-9)
        #expect(abs(lo + Double(image.index(x: 7, y: 5)) * step - 0.25) <= step / 2 + 1e-9)
        #expect(html.contains("data-y=\"expert at layer 0\" data-x=\"expert at layer 1\""))
    }
}
