// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

@testable import MoERoutingReport

struct HeatmapRasterTests {
    @Test func everyValueIsRecoverableWithinHalfAStep() throws {
        var x: UInt64 = 12_345
        let n = 97
        let values: [[Double]] = (0..<n).map { r in
            (0..<n).map { c in
                if (r * n + c) % 31 == 0 { return .nan }
                x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return -0.3 + 1.1 * Double(x >> 11) / Double(1 << 53)
            }
        }
        let scale = try #require(ColorScale.covering([values])).rounded()
        let raster = HeatmapRaster(values: values, columns: n, scale: scale)
        let image = try PNGImage(bytes: raster.png())
        #expect(image.width == n && image.height == n && image.palette.count == 256)
        var worst = 0.0
        for r in 0..<n {
            for c in 0..<n {
                let level = image.index(x: c, y: r)
                let v = values[r][c]
                if v.isFinite {
                    #expect(level <= HeatmapRaster.topLevel)
                    worst = max(worst, abs(raster.value(level: level) - v))
                    // The pixel's colour is the level's viridis colour.
                    let colour = image.rgb(x: c, y: r)
                    let expected = ColorScale.viridisBytes(Double(level) / 254)
                    #expect([colour.0, colour.1, colour.2] == [expected.0, expected.1, expected.2])
                } else {
                    #expect(level == HeatmapRaster.missingLevel)
                    #expect(raster.value(level: level).isNaN)
                }
            }
        }
        #expect(worst <= raster.step / 2 + 1e-12)
        #expect(worst > raster.step / 10)  // the values really are quantised
        #expect(raster.step == (scale.maximum - scale.minimum) / 254)
    }

    @Test func sparseMatricesCompressToAFractionOfTheirCells() throws {
        // A 256 x 256 transition matrix from few tokens: mostly zeros, a few hundred cells set.
        let n = 256
        var values = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<600 { values[(i * 37) % n][(i * 101 + i / 7) % n] = Double(i % 5 + 1) / 5 }
        let raster = HeatmapRaster(values: values, columns: n, scale: ColorScale(minimum: 0, maximum: 1))
        let png = raster.png()
        #expect(png.count < 8_000, "\(png.count) bytes for 65,536 cells")
        let image = try PNGImage(bytes: png)
        #expect(image.index(x: 101, y: 37) == HeatmapRaster.level(0.4, scale: raster.scale))
    }

    @Test func embeddedImageOfAChartHoldsItsCellsInDrawnOrder() throws {
        // An 80 x 80 expert matrix (usage order): the image's first column is the heaviest column.
        let n = 80
        var values = [[Double]](repeating: [Double](repeating: 0.01, count: n), count: n)
        for r in 0..<n { values[r][57] = 0.9 }
        let h = ReportFigure.Heatmap(
            title: "affinity",
            xLabel: "expert at layer 1",
            yLabel: "expert at layer 0",
            rowLabels: [],
            columnLabels: [],
            values: values
        )
        let chart = HeatmapChart(h, size: .full)
        #expect(chart.prefersImage)
        var ids = IDAllocator()
        let svg = chart.svg(scale: nil, ids: &ids)
        let image = try HeatmapChartTests.embeddedImage(svg)
        let scale = try #require(ColorScale.covering([values])).rounded()
        let raster = HeatmapRaster(values: [[0]], columns: 1, scale: scale)
        #expect(abs(raster.value(level: image.index(x: 0, y: 0)) - 0.9) <= raster.step / 2 + 1e-12)
        #expect(abs(raster.value(level: image.index(x: 1, y: 0)) - 0.01) <= raster.step / 2 + 1e-12)
        #expect(svg.contains("experts ordered by usage:"))
        #expect(svg.contains("in 255 levels of"))
    }
}
