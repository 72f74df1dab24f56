// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

struct HeatmapChartTests {
    static func heatmap(
        _ values: [[Double]],
        rowLabels: [String] = [],
        columnLabels: [String] = []
    ) -> ReportFigure.Heatmap {
        .init(
            title: "t",
            xLabel: "expert",
            yLabel: "layer",
            rowLabels: rowLabels,
            columnLabels: columnLabels,
            values: values
        )
    }

    static func elements(_ svg: String) throws -> [Markup.Element] {
        switch Markup.parse(svg) {
        case .success(let e): return e
        case .failure(let error): throw error
        }
    }

    static func cellRects(_ svg: String) -> [String] {
        let group = Markup.between("<g class=\"cells\" shape-rendering=\"crispEdges\">", "</g>", in: svg) ?? ""
        return group.components(separatedBy: "<rect ").dropFirst().map { "<rect " + $0 }
    }

    @Test func drawsOneCellPerValueWithTooltipAndColour() throws {
        let h = Self.heatmap([[0, 0.5, 1], [1, 0.5, 0]], rowLabels: ["L0", "L1"], columnLabels: ["e0", "e1", "e2"])
        var ids = IDAllocator()
        let svg = HeatmapChart(h, size: .full).svg(scale: nil, ids: &ids)
        let cells = Self.cellRects(svg)
        #expect(cells.count == 6)
        #expect(cells[1].contains("fill=\"\(ColorScale.viridisHex(0.5))\""))
        #expect(cells[0].contains("fill=\"#440154\""))
        #expect(cells[2].contains("fill=\"#fde725\""))
        #expect(cells[1].contains("<title>layer: L0, expert: e1 = 0.5</title>"))
        let elements = try Self.elements(svg)
        #expect(elements.filter { $0.name == "linearGradient" }.count == 1)
        #expect(elements.filter { $0.name == "stop" }.count == ColorScale.anchors.count)
        // Legend ticks run from 0 to 1 and both axis titles are drawn.
        let texts = elements.filter { $0.name == "text" }.map(\.text)
        #expect(texts.contains("0.0") && texts.contains("1.0"))
        #expect(texts.contains("expert") && texts.contains("layer"))
        #expect(texts.contains("L1") && texts.contains("e2"))
    }

    @Test func hatchesMissingCellsAndPadsRaggedRows() throws {
        let h = Self.heatmap([[1, .nan], [2]])
        var ids = IDAllocator()
        let svg = HeatmapChart(h, size: .full).svg(scale: nil, ids: &ids)
        let cells = Self.cellRects(svg)
        #expect(cells.count == 4)
        #expect(
            cells.filter { $0.contains("fill=\"url(#moe-na-1) #d0d7de\"") && $0.contains("= no data</title>") }.count
                == 2
        )
        let elements = try Self.elements(svg)
        #expect(elements.contains { $0.name == "pattern" && $0.attributes["id"] == "moe-na-1" })
        #expect(elements.contains { $0.name == "text" && $0.text == "no data" })
    }

    @Test func noDataCellsStayOutOfTheScaleAndAreNamedInTheLegend() throws {
        // A row whose source expert was never selected is NaN: "no data", not zero.
        let h = Self.heatmap([[0.2, 0.4], [.nan, .nan]])
        var ids = IDAllocator()
        let svg = HeatmapChart(h, size: .full).svg(scale: nil, ids: &ids)
        let cells = Self.cellRects(svg)
        #expect(cells.count == 4)
        #expect(cells.filter { $0.contains("= no data</title>") && $0.contains("url(#moe-na-1)") }.count == 2)
        #expect(!svg.contains("n/a"))
        // The colour scale covers 0.2...0.4 only (rounded to round ends), so 0.2 is not the darkest
        // colour a NaN-as-zero scale would give 0.
        let scale = ColorScale(minimum: 0.2, maximum: 0.4).rounded()
        #expect(scale.minimum > 0)
        #expect(cells[0].contains("fill=\"\(scale.hex(0.2))\""))
        let texts = try Self.elements(svg).filter { $0.name == "text" }.map(\.text)
        #expect(texts.filter { $0 == "no data" }.count == 1)
        // No swatch when every cell has data.
        var ids2 = IDAllocator()
        let full = HeatmapChart(Self.heatmap([[0.2, 0.4]]), size: .full).svg(scale: nil, ids: &ids2)
        #expect(!full.contains("no data") && !full.contains("moe-na"))
        // The image path: grey cells, and its tooltip and the shared legend name them.
        var big = [[Double]](repeating: [Double](repeating: 1, count: 70), count: 70)
        big[3] = [Double](repeating: .nan, count: 70)
        var ids3 = IDAllocator()
        let image = HeatmapChart(Self.heatmap(big), size: .full).svg(scale: nil, ids: &ids3)
        #expect(image.contains("grey cells: no data</title>"))
        let legend = HeatmapChart.legend(
            scale: ColorScale(minimum: 0, maximum: 1),
            hasMissing: true,
            image: true,
            ids: &ids3,
            title: "t"
        )
        #expect(legend.contains(">no data</text>") && legend.contains("fill=\"#d0d7de\""))
    }

    @Test func labelsEveryKthTickOfALargeMatrixWithoutOverlap() throws {
        let n = 100
        let h = Self.heatmap((0..<n).map { r in (0..<n).map { Double(r * $0) } })
        var ids = IDAllocator()
        let svg = HeatmapChart(h, size: .full).svg(scale: nil, image: false, ids: &ids)
        #expect(Self.cellRects(svg).count == n * n)
        let ticks = try Self.elements(svg).filter { $0.name == "text" && $0.attributes["class"] == "tk" }
        let rowTicks = ticks.filter { $0.attributes["text-anchor"] == "end" }.compactMap {
            Double($0.attributes["y"] ?? "")
        }
        let columnTicks = ticks.filter { $0.attributes["text-anchor"] == "middle" }.compactMap {
            Double($0.attributes["x"] ?? "")
        }
        #expect(rowTicks.count > 10 && rowTicks.count < n)
        #expect(columnTicks.count > 10 && columnTicks.count < n)
        for (a, b) in zip(rowTicks, rowTicks.dropFirst()) { #expect(b - a >= 12, "row labels \(a), \(b) overlap") }
        // Column labels are at most two digits wide (about 13 px at 11 px).
        for (a, b) in zip(columnTicks, columnTicks.dropFirst()) {
            #expect(b - a >= 15, "column labels \(a), \(b) overlap")
        }
    }

    @Test func rotatesLongColumnLabels() throws {
        let h = Self.heatmap([[1, 2, 3, 4]], columnLabels: ["a long label", "another long one", "c", "d"])
        var ids = IDAllocator()
        let svg = HeatmapChart(h, size: .panel).svg(scale: nil, ids: &ids)
        let rotated = try Self.elements(svg).filter {
            $0.name == "text" && ($0.attributes["transform"] ?? "").hasPrefix("rotate(-90")
        }
        #expect(rotated.map(\.text).contains("a long label"))
    }

    @Test func panelsUseTheSharedScaleAndNoLegend() throws {
        let shared = ColorScale(minimum: 0, maximum: 10)
        var ids = IDAllocator()
        let svg = HeatmapChart(Self.heatmap([[5, 10]]), size: .panel).svg(
            scale: shared,
            axisTitles: (false, false),
            ids: &ids
        )
        let cells = Self.cellRects(svg)
        #expect(cells[0].contains("fill=\"\(ColorScale.viridisHex(0.5))\""))
        #expect(!svg.contains("linearGradient"))
        #expect(!(try Self.elements(svg)).contains { $0.name == "text" && ($0.text == "expert" || $0.text == "layer") })
        let legend = HeatmapChart.legend(scale: shared, hasMissing: true, ids: &ids, title: "2 heatmaps")
        let texts = try Self.elements(legend).filter { $0.name == "text" }.map(\.text)
        #expect(texts.first == "0" && texts.contains("10") && texts.contains("no data"))
    }

    @Test func printsValuesInLargeCellsInReadableColours() {
        var ids = IDAllocator()
        let svg = HeatmapChart(Self.heatmap([[0, 1]]), size: .full).svg(scale: nil, ids: &ids)
        #expect(svg.contains("class=\"cv lt\" text-anchor=\"middle\">0.00</text>"))
        #expect(svg.contains("class=\"cv\" text-anchor=\"middle\">1.00</text>"))
    }

    @Test func legendTicksIncludeBothEnds() {
        let ticks = HeatmapChart.legendTicks(scale: ColorScale(minimum: 0.013, maximum: 0.987), length: 300, gap: 20)
        #expect(ticks.first?.1 == "0.013")
        #expect(ticks.last?.1 == "0.987")
        #expect(ticks.map(\.1).contains("0.4"))
        #expect(!ticks.map(\.1).contains("0.0"))
        let round = HeatmapChart.legendTicks(scale: ColorScale(minimum: 0, maximum: 0.5), length: 300, gap: 20)
        #expect(round.map(\.1) == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"])
    }

    // MARK: - Very large heatmaps, drawn as images
    /// The PNG inside the first `data:` URI of `svg`.
    static func embeddedImage(_ svg: String) throws -> PNGImage {
        let base64 = try #require(Markup.between("href=\"data:image/png;base64,", "\"", in: svg))
        return try PNGImage(bytes: Array(try #require(Data(base64Encoded: base64))))
    }

    @Test func largeHeatmapsBecomeOnePixelPerCell() throws {
        let n = 70
        var values = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for r in 0..<n {
            for c in 0..<n { values[r][c] = r == c ? .nan : Double(r + c) }
        }
        let h = ReportFigure.Heatmap(
            title: "big",
            xLabel: "x",
            yLabel: "y",
            rowLabels: [],
            columnLabels: [],
            values: values
        )
        let chart = HeatmapChart(h, size: .full)
        #expect(chart.prefersImage)
        var ids = IDAllocator()
        let svg = chart.svg(scale: nil, ids: &ids)
        #expect(!svg.contains("<g class=\"cells\""))
        #expect(svg.utf8.count < 60_000)
        if case .failure(let error) = Markup.parse(svg) { Issue.record("\(error)") }
        let image = try Self.embeddedImage(svg)
        #expect(image.width == n && image.height == n)
        let scale = try #require(ColorScale.covering([values])).rounded()
        for (r, c) in [(0, 1), (5, 60), (69, 68)] {
            let (red, green, blue) = image.rgb(x: c, y: r)
            // The colour of the cell's level (255 levels of the scale).
            let expected = ColorScale.viridisBytes(Double(HeatmapRaster.level(values[r][c], scale: scale)) / 254)
            #expect([red, green, blue] == [expected.0, expected.1, expected.2])
        }
        let (red, green, blue) = image.rgb(x: 3, y: 3)
        #expect([red, green, blue] == [0xD0, 0xD7, 0xDE])
    }

    static func pattern(layer l: Int) -> [[Double]] {
        var m = [[Double]](repeating: [Double](repeating: 0, count: 64), count: 64)
        for r in 0..<64 {
            for c in 0..<64 { m[r][c] = Double((r * 7 + c * 3 + l) % 64) / 64 }
        }
        return m
    }

    @Test func largeGridsOfSmallMultiplesBecomeImages() throws {
        // 26 per-layer-pair 64 x 64 heatmaps, as for a 27-layer, 64-expert model.
        let labels = (0..<64).map(String.init)
        let figures: [ReportFigure] = (0..<26).map { l in
            .heatmap(
                .init(
                    title: "layer \(l)",
                    xLabel: "expert at layer \(l + 1)",
                    yLabel: "expert at layer \(l)",
                    rowLabels: labels,
                    columnLabels: labels,
                    values: Self.pattern(layer: l)
                )
            )
        }
        let result = AnalysisResult(
            reports: [AnalyzerReport(analyzer: "t", title: "T", json: [:], figures: figures)],
            failures: [],
            statistics: .init()
        )
        let html = HTMLReport.render(result)
        print("report size for 26 heatmaps of 64 x 64: \(html.utf8.count) bytes")
        #expect(html.utf8.count < 1_000_000)
        #expect(Markup.count("href=\"data:image/png;base64,", in: html) == 26)
        #expect(html.contains("drawn as images, one pixel per cell"))
        for svg in Markup.svgFragments(html) {
            if case .failure(let error) = Markup.parse(svg) { Issue.record("\(error)") }
        }
    }
}
