// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Draws a ``ReportFigure/LineChart`` as SVG: axes with nice ticks and titles, light grid lines,
/// one polyline per series (dashed for `dashed` series such as chance), a point with a tooltip at
/// every finite value, and a legend below the plot. A non-finite value breaks its line.
///
/// A series with `lower` and `upper` gets its interval drawn in its colour: a translucent band
/// over every run of two or more consecutive points whose interval is finite, an error bar at a
/// point whose neighbours have none, the interval in each point's tooltip ("0.3 [0.25, 0.34]"),
/// and a band swatch behind its legend sample. The y axis covers the intervals' ends. A series
/// without intervals draws exactly as before.
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
            if s.dashed,
                let j = (0..<i).last(where: {
                    !chart.series[$0].dashed && !chart.series[$0].name.isEmpty
                        && s.name.hasPrefix(chart.series[$0].name)
                })
            {
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
        let intervals: [[Interval?]] = chart.series.map { s in
            (0..<min(n, s.values.count)).map { Self.interval(s, at: $0) }
        }
        let finiteX = chart.x.filter(\.isFinite)
        var finiteY = points.flatMap { $0.filter { $0.0.isFinite && $0.1.isFinite }.map(\.1) }
        for (i, row) in intervals.enumerated() {
            for (j, iv) in row.enumerated() where points[i][j].0.isFinite {
                if let iv { finiteY += [iv.lower, iv.upper] }
            }
        }
        var yMin = finiteY.min() ?? 0
        let yMax = finiteY.max() ?? 1
        if yMin >= 0 && yMin < yMax - yMin { yMin = 0 }
        let xAxis = AxisScale(
            minimum: finiteX.min() ?? 0,
            maximum: finiteX.max() ?? 1,
            targetTicks: 8,
            from: left,
            to: left + plotW,
            wholeSteps: false,
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
            canvas.text(
                HTMLEscaping.truncated(chart.xLabel, to: 80),
                x: left + plotW / 2,
                y: top + plotH + 34,
                class: "ax",
                anchor: .middle
            )
        }
        if !chart.yLabel.isEmpty {
            canvas.text(
                HTMLEscaping.truncated(chart.yLabel, to: 36),
                x: 14,
                y: top + plotH / 2,
                class: "ax",
                anchor: .middle,
                rotate: -90
            )
        }

        // Series: dashed ones first, so solid curves lie on top; intervals under every curve.
        let colors = self.colors
        let order =
            chart.series.indices.filter { chart.series[$0].dashed }
            + chart.series.indices.filter { !chart.series[$0].dashed }
        for i in order where intervals[i].contains(where: { $0 != nil }) {
            drawIntervals(points[i], intervals[i], color: colors[i], xAxis: xAxis, yAxis: yAxis, into: &canvas)
        }
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
            for (j, (x, y)) in points[i].enumerated() where x.isFinite && y.isFinite {
                let range =
                    intervals[i][j].map { " [\(NumberFormat.value($0.lower)), \(NumberFormat.value($0.upper))]" } ?? ""
                canvas.circle(
                    cx: xAxis.pixel(x),
                    cy: yAxis.pixel(y),
                    r: s.dashed ? 2.2 : 3,
                    fill: colors[i],
                    class: s.dashed ? "pt hollow" : "pt",
                    title: "\(s.name) — \(xName) \(NumberFormat.value(x)): \(NumberFormat.value(y))\(range)"
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
            if intervals[i].contains(where: { $0 != nil }) {
                canvas.rect(x: x, y: y - 9, width: 24, height: 10, fill: colors[i], class: "band")
            }
            canvas.polyline([(x, y - 4), (x + 24, y - 4)], stroke: colors[i], dashed: s.dashed)
            canvas.text(name, x: x + 30, y: y, class: "lg")
            canvas.raw("</g>")
            x += w
        }
        let height = chart.series.isEmpty ? top + plotH + 44 : y + 8
        return canvas.finish(width: width, height: height, standalone: standalone)
    }

    /// A finite interval around one value.
    struct Interval: Equatable {
        var lower: Double
        var upper: Double
    }

    /// The interval of series `s` at point `j`: nil without `lower`/`upper`, or where either end
    /// is missing or not finite. Ends given in the wrong order are swapped.
    static func interval(_ s: ReportFigure.Series, at j: Int) -> Interval? {
        guard let lower = s.lower, let upper = s.upper, j < lower.count, j < upper.count else { return nil }
        let a = lower[j]
        let b = upper[j]
        guard a.isFinite, b.isFinite else { return nil }
        return Interval(lower: min(a, b), upper: max(a, b))
    }

    /// Bands over runs of consecutive finite intervals (two points or more) and error bars at
    /// lone ones.
    private func drawIntervals(
        _ points: [(Double, Double)],
        _ intervals: [Interval?],
        color: String,
        xAxis: AxisScale,
        yAxis: AxisScale,
        into canvas: inout SVGCanvas
    ) {
        var run: [(x: Double, lo: Double, hi: Double)] = []
        func flush() {
            if run.count == 1, let p = run.first {
                canvas.line(x1: p.x, y1: p.lo, x2: p.x, y2: p.hi, class: "err", stroke: color)
                canvas.line(x1: p.x - 3, y1: p.lo, x2: p.x + 3, y2: p.lo, class: "err", stroke: color)
                canvas.line(x1: p.x - 3, y1: p.hi, x2: p.x + 3, y2: p.hi, class: "err", stroke: color)
            } else if run.count > 1 {
                canvas.polygon(
                    run.map { ($0.x, $0.hi) } + run.reversed().map { ($0.x, $0.lo) },
                    fill: color,
                    class: "band"
                )
            }
            run = []
        }
        for (j, (x, _)) in points.enumerated() {
            if x.isFinite, let iv = intervals[j] {
                run.append((xAxis.pixel(x), yAxis.pixel(iv.lower), yAxis.pixel(iv.upper)))
            } else {
                flush()
            }
        }
        flush()
    }
}
