// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Draws a ``ReportFigure/LineChart`` as SVG: axes with nice ticks and titles, light grid lines,
/// one polyline per series (dashed for `dashed` series such as chance), a point with a tooltip at
/// every finite value, and a legend below the plot. A non-finite value breaks its line.
///
/// A dashed series whose name starts with the name of an earlier solid series ("top-1 same,
/// chance" after "top-1 same") takes that series' colour, so a curve and its reference pair up
/// visually; every other series takes the next colour of the palette.
struct LineChartView {
    let chart: ReportFigure.LineChart

    /// Categorical colours (Tableau 10), in order of use.
    static let palette = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    ]

    /// The colour of each series.
    var colors: [String] {
        var out: [String] = []
        var next = 0
        for (i, s) in chart.series.enumerated() {
            if s.dashed, let j = (0..<i).last(where: { !chart.series[$0].dashed && !chart.series[$0].name.isEmpty && s.name.hasPrefix(chart.series[$0].name) }) {
                out.append(out[j])
            } else {
                out.append(Self.palette[next % Self.palette.count])
                next += 1
            }
        }
        return out
    }

    func svg(standalone: Bool = false) -> String {
        let width = 560.0
        let left = 58.0
        let right = 14.0
        let top = 12.0
        let plotH = 250.0
        let plotW = width - left - right
        var canvas = SVGCanvas(label: chart.title)

        // Finite points per series.
        let n = chart.x.count
        let points: [[(Double, Double)]] = chart.series.map { s in
            (0..<min(n, s.values.count)).map { (chart.x[$0], s.values[$0]) }
        }
        let finiteX = chart.x.filter(\.isFinite)
        let finiteY = points.flatMap { $0.filter { $0.0.isFinite && $0.1.isFinite }.map(\.1) }
        var yMin = finiteY.min() ?? 0
        let yMax = finiteY.max() ?? 1
        if yMin >= 0 && yMin < yMax - yMin { yMin = 0 }
        let xAxis = AxisScale(
            minimum: finiteX.min() ?? 0, maximum: finiteX.max() ?? 1, targetTicks: 8, from: left, to: left + plotW, wholeSteps: false,
            integers: !finiteX.isEmpty && finiteX.allSatisfy { $0 == $0.rounded() }
        )
        let yAxis = AxisScale(minimum: yMin, maximum: yMax, targetTicks: 5, from: top + plotH, to: top)

        // Grid, axes and ticks.
        for t in yAxis.ticks {
            let y = yAxis.pixel(t)
            canvas.line(x1: left, y1: y, x2: left + plotW, y2: y, class: "grid")
            canvas.text(yAxis.label(t), x: left - 6, y: y + 3.8, class: "tk", anchor: .end)
        }
        canvas.line(x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis")
        canvas.line(x1: left, y1: top, x2: left, y2: top + plotH, class: "axis")
        for t in xAxis.ticks {
            let x = xAxis.pixel(t)
            canvas.line(x1: x, y1: top + plotH, x2: x, y2: top + plotH + 4, class: "axis")
            canvas.text(xAxis.label(t), x: x, y: top + plotH + 16, class: "tk", anchor: .middle)
        }
        if !chart.xLabel.isEmpty {
            canvas.text(HTMLEscaping.truncated(chart.xLabel, to: 80), x: left + plotW / 2, y: top + plotH + 34, class: "ax", anchor: .middle)
        }
        if !chart.yLabel.isEmpty {
            canvas.text(HTMLEscaping.truncated(chart.yLabel, to: 36), x: 14, y: top + plotH / 2, class: "ax", anchor: .middle, rotate: -90)
        }

        // Series: dashed ones first, so solid curves lie on top.
        let colors = self.colors
        let order = chart.series.indices.filter { chart.series[$0].dashed } + chart.series.indices.filter { !chart.series[$0].dashed }
        for i in order {
            let s = chart.series[i]
            var run: [(Double, Double)] = []
            for (x, y) in points[i] {
                if x.isFinite && y.isFinite {
                    run.append((xAxis.pixel(x), yAxis.pixel(y)))
                } else {
                    canvas.polyline(run, stroke: colors[i], dashed: s.dashed)
                    run = []
                }
            }
            canvas.polyline(run, stroke: colors[i], dashed: s.dashed)
        }
        for i in order {
            let s = chart.series[i]
            let xName = chart.xLabel.isEmpty ? "x" : chart.xLabel
            for (x, y) in points[i] where x.isFinite && y.isFinite {
                canvas.circle(
                    cx: xAxis.pixel(x), cy: yAxis.pixel(y), r: s.dashed ? 2.2 : 3, fill: colors[i], class: s.dashed ? "pt hollow" : "pt",
                    title: "\(s.name) — \(xName) \(NumberFormat.value(x)): \(NumberFormat.value(y))"
                )
            }
        }

        // Legend below, wrapping into rows.
        var x = left
        var y = top + plotH + 54
        for (i, s) in chart.series.enumerated() {
            let name = HTMLEscaping.truncated(s.name.isEmpty ? "series \(i + 1)" : s.name, to: 60)
            let w = 30 + HTMLEscaping.estimatedWidth(name, fontSize: 11.5) + 18
            if x + w > width && x > left {
                x = left
                y += 18
            }
            canvas.raw("<g>")
            canvas.polyline([(x, y - 4), (x + 24, y - 4)], stroke: colors[i], dashed: s.dashed)
            canvas.text(name, x: x + 30, y: y, class: "lg")
            canvas.raw("</g>")
            x += w
        }
        let height = chart.series.isEmpty ? top + plotH + 44 : y + 8
        return canvas.finish(width: width, height: height, standalone: standalone)
    }
}
