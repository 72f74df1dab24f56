// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing

@testable import MoERoutingReport

struct HeatmapOrderTests {
    static func matrix(
        _ values: [[Double]],
        x: String = "expert at layer 4",
        y: String = "expert at layer 3"
    ) -> ReportFigure.Heatmap {
        .init(title: "m", xLabel: x, yLabel: y, rowLabels: [], columnLabels: [], values: values)
    }

    /// An n × n matrix whose row r sums to rowMass(r) and column c to colMass(c) (an outer product).
    static func outer(_ n: Int, rowMass: (Int) -> Double, columnMass: (Int) -> Double) -> [[Double]] {
        (0..<n).map { r in (0..<n).map { c in rowMass(r) * columnMass(c) } }
    }

    @Test func usageOrderSortsByMassLargestFirstTiesByID() {
        // 20 experts: masses that repeat (ties) and one expert without any data.
        let n = 20
        let rowMass: [Double] = (0..<n).map { Double(($0 * 7) % 5) + 1 }
        let columnMass: [Double] = (0..<n).map { Double(($0 * 3) % 4) + 1 }
        var values = Self.outer(n, rowMass: { rowMass[$0] }, columnMass: { columnMass[$0] })
        values[2] = [Double](repeating: .nan, count: n)
        let order = HeatmapOrder(Self.matrix(values))
        #expect(order.rule == .usage)
        // Expected: by mass descending, then id ascending; row 2 (no data) last.
        func descending(_ mass: [Double], _ a: Int, _ b: Int) -> Bool { mass[a] != mass[b] ? mass[a] > mass[b] : a < b }
        let expectedRows: [Int] = (0..<n).filter { $0 != 2 }.sorted { descending(rowMass, $0, $1) } + [2]
        let expectedColumns: [Int] = (0..<n).sorted { descending(columnMass, $0, $1) }
        // Spelled out for the first few: mass 5 at ids 7, 12, 17 (2 has no data), then mass 4 from id 4.
        #expect(expectedRows.prefix(4) == [7, 12, 17, 4])
        #expect(order.rows == expectedRows)
        #expect(order.columns == expectedColumns)
        #expect(order.note?.contains("experts ordered by usage: rows by row sum, columns by column sum") == true)
        #expect(order.note?.contains("ties by id") == true)
    }

    @Test func normalisedRowsKeepIDOrderAndSaySo() {
        // Row-normalised (each row sums to 1 up to rounding), as P(j | i) is.
        let n = 32
        var values: [[Double]] = []
        for r in 0..<n {
            var raw: [Double] = []
            for c in 0..<n { raw.append(Double((r * 5 + c * c) % 9) + 0.1 * Double(c % 3)) }
            let sum = raw.reduce(0, +)
            values.append(raw.map { $0 / sum })
        }
        let order = HeatmapOrder(Self.matrix(values))
        #expect(order.rule == .usage)
        #expect(order.rows == Array(0..<n))
        #expect(order.columns != Array(0..<n))
        let sums: [Double] = (0..<n).map { c in values.reduce(0.0) { $0 + $1[c] } }
        for (a, b) in zip(order.columns, order.columns.dropFirst()) { #expect(sums[a] >= sums[b] - 1e-12) }
        #expect(order.note?.contains("rows in id order (all rows have the same sum)") == true)
    }

    @Test func smallOrLayerAxesKeepIDOrder() {
        let eight = Self.outer(8, rowMass: { Double($0) }, columnMass: { Double(8 - $0) })
        let small = HeatmapOrder(Self.matrix(eight))
        #expect(small.rule == .natural && small.rows == Array(0..<8) && small.columns == Array(0..<8))
        #expect(small.note == "experts in id order (at most 16 per axis)")

        let usage = Self.outer(20, rowMass: { Double($0) }, columnMass: { Double(20 - $0) })
        let perLayer = HeatmapOrder(Self.matrix(usage, x: "expert", y: "layer"))
        #expect(perLayer.rule == .natural && perLayer.columns == Array(0..<20))
        #expect(perLayer.note?.hasPrefix("experts in id order") == true)

        let layers = HeatmapOrder(Self.matrix(usage, x: "layer j", y: "layer i"))
        #expect(layers.rule == .natural && layers.note == nil)
    }

    @Test func chartDrawsTheOrderWithTrueIDsAndStatesIt() throws {
        // 20 x 20: column 13 has by far the largest mass, so it is drawn first, labelled 13.
        let n = 20
        var values = Self.outer(n, rowMass: { Double($0 + 1) }, columnMass: { _ in 1 })
        for r in 0..<n { values[r][13] = 100 }
        let h = ReportFigure.Heatmap(
            title: "m",
            xLabel: "expert at layer 4",
            yLabel: "expert at layer 3",
            rowLabels: (0..<n).map { "e\($0)" },
            columnLabels: (0..<n).map { "f\($0)" },
            values: values
        )
        let chart = HeatmapChart(h, size: .full)
        #expect(chart.order.columns.first == 13)
        #expect(chart.order.rows.first == 19)
        #expect(chart.heatmap.columnLabels.first == "f13")
        #expect(chart.heatmap.rowLabels.first == "e19")
        #expect(chart.value(0, 0) == values[19][13])
        var ids = IDAllocator()
        let svg = chart.svg(scale: nil, image: false, ids: &ids)
        let first = try #require(HeatmapChartTests.cellRects(svg).first)
        #expect(first.contains("expert at layer 3: e19, expert at layer 4: f13 = 100"))
        #expect(svg.contains("experts ordered by usage:"))
        #expect(svg.contains("labels are expert ids"))
    }
}
