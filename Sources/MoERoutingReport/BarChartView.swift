// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Draws a ``ReportFigure/BarChart`` as SVG. Bars stand vertically when every label fits under
/// its bar (or the labels are integers, such as layer numbers, and every k-th is labelled);
/// otherwise, for long categorical labels such as expert paths "3→5→1", bars lie horizontally
/// with their labels at the left and their values at the end. Every bar has a tooltip;
/// `highlighted` bars take the accent colour and a legend says how many are highlighted (the
/// figure's title says what highlighting means).
///
/// With `lower`/`upper`, each bar whose two ends are finite gets an error bar and the interval in
/// its tooltip; with `reference`, each bar whose reference is finite gets a dark marker across
/// it (with its own tooltip), named in the legend by `referenceLabel` ("reference" when nil).
/// The value axis covers every interval end and reference. A chart without them draws exactly
/// as before.
struct BarChartView {
    let chart: ReportFigure.BarChart

    static let base = "#4e79a7"
    static let accent = "#e8590c"

    /// One bar per value; a missing label reads as the bar's index.
    var count: Int { chart.values.count }
    func label(_ i: Int) -> String { i < chart.labels.count ? chart.labels[i] : String(i) }
    func value(_ i: Int) -> Double { i < chart.values.count ? chart.values[i] : .nan }
    func isHighlighted(_ i: Int) -> Bool { i < chart.highlighted.count && chart.highlighted[i] }

    /// The interval of bar `i`, when both ends are given and finite (ends in the wrong order are
    /// swapped).
    func interval(_ i: Int) -> (lower: Double, upper: Double)? {
        guard let lo = chart.lower, let hi = chart.upper, i < lo.count, i < hi.count, lo[i].isFinite, hi[i].isFinite
        else { return nil }
        return (min(lo[i], hi[i]), max(lo[i], hi[i]))
    }

    /// The reference value of bar `i`, when given and finite.
    func reference(_ i: Int) -> Double? {
        guard let r = chart.reference, i < r.count, r[i].isFinite else { return nil }
        return r[i]
    }

    /// The legend's name of the reference markers.
    var referenceName: String { chart.referenceLabel.flatMap { $0.isEmpty ? nil : $0 } ?? "reference" }

    /// Whether any bar has a reference marker.
    var hasReference: Bool { (0..<count).contains { reference($0) != nil } }

    /// Whether a legend is drawn above the bars.
    var hasLegend: Bool { !chart.highlighted.isEmpty || hasReference }

    /// Whether the bars lie horizontally (long labels).
    var horizontal: Bool {
        let n = count
        guard n > 0 else { return false }
        let slot = Self.slot(n)
        let widest = (0..<n).map { HTMLEscaping.estimatedWidth(label($0), fontSize: 11) }.max() ?? 0
        if widest + 4 <= slot { return false }
        return !(0..<n).allSatisfy { Int(label($0)) != nil }
    }

    static func slot(_ n: Int) -> Double { min(max(((500 / Double(max(n, 1))) * 2).rounded(.down) / 2, 6), 48) }

    func tooltip(_ i: Int) -> String {
        let name = chart.xLabel.isEmpty ? "" : chart.xLabel + " "
        var s = "\(name)\(label(i)): \(NumberFormat.value(value(i)))"
        if let iv = interval(i) { s += " [\(NumberFormat.value(iv.lower)), \(NumberFormat.value(iv.upper))]" }
        if let r = reference(i) { s += "; \(referenceName) \(NumberFormat.value(r))" }
        return s + (isHighlighted(i) ? " (highlighted)" : "")
    }

    /// The tooltip of bar `i`'s reference marker.
    func referenceTooltip(_ i: Int, _ r: Double) -> String {
        let name = chart.xLabel.isEmpty ? "" : chart.xLabel + " "
        return "\(name)\(label(i)): \(referenceName) \(NumberFormat.value(r))"
    }

    func svg(standalone: Bool = false) -> String {
        horizontal ? horizontalSVG(standalone: standalone) : verticalSVG(standalone: standalone)
    }

    /// The value range including zero, every interval end and every reference.
    private var valueRange: (Double, Double) {
        var finite = (0..<count).map(value).filter(\.isFinite)
        for i in 0..<count {
            if let iv = interval(i) { finite += [iv.lower, iv.upper] }
            if let r = reference(i) { finite.append(r) }
        }
        return (min(finite.min() ?? 0, 0), max(finite.max() ?? 1, 0))
    }

    /// The colour of error bars.
    static let whisker = "#24292f"

    /// Draws the legend at `y`: the highlight swatches when the chart highlights, the reference
    /// marker when any bar has one; nothing otherwise.
    private func drawLegend(into canvas: inout SVGCanvas, x: Double, y: Double) {
        guard hasLegend else { return }
        canvas.raw("<g class=\"legend\">")
        var x = x
        if !chart.highlighted.isEmpty {
            let n = (0..<count).filter(isHighlighted).count
            canvas.rect(x: x, y: y - 9, width: 12, height: 10, fill: Self.accent)
            let text = "highlighted (\(n) of \(count))"
            canvas.text(text, x: x + 17, y: y, class: "lg")
            let x2 = x + 17 + HTMLEscaping.estimatedWidth(text, fontSize: 11.5) + 16
            canvas.rect(x: x2, y: y - 9, width: 12, height: 10, fill: Self.base)
            canvas.text("other", x: x2 + 17, y: y, class: "lg")
            x = x2 + 17 + HTMLEscaping.estimatedWidth("other", fontSize: 11.5) + 16
        }
        if hasReference {
            canvas.line(x1: x, y1: y - 4, x2: x + 14, y2: y - 4, class: "ref")
            canvas.text(HTMLEscaping.truncated(referenceName, to: 60), x: x + 19, y: y, class: "lg")
        }
        canvas.raw("</g>")
    }

    private func verticalSVG(standalone: Bool) -> String {
        let n = count
        let slot = Self.slot(n)
        let left = 58.0
        let top = hasLegend ? 30.0 : 12.0
        let plotH = 220.0
        let plotW = slot * Double(max(n, 1))
        let width = max(left + plotW + 14, 320)
        var canvas = SVGCanvas(label: chart.title)
        let (lo, hi) = valueRange
        let axis = AxisScale(minimum: lo, maximum: hi, targetTicks: 5, from: top + plotH, to: top)

        for t in axis.ticks {
            let y = axis.pixel(t)
            canvas.line(x1: left, y1: y, x2: left + plotW, y2: y, class: "grid")
            canvas.text(axis.label(t), x: left - 6, y: y + 3.8, class: "tk", anchor: .end)
        }
        canvas.line(x1: left, y1: top, x2: left, y2: top + plotH, class: "axis")
        let zero = axis.pixel(0)
        for i in 0..<n {
            let v = value(i)
            guard v.isFinite else { continue }
            let y1 = axis.pixel(max(v, 0))
            let y2 = axis.pixel(min(v, 0))
            canvas.rect(
                x: left + Double(i) * slot + slot * 0.12,
                y: y1,
                width: slot * 0.76,
                height: max(y2 - y1, 0.5),
                fill: isHighlighted(i) ? Self.accent : Self.base,
                class: "bar",
                title: tooltip(i)
            )
        }
        canvas.line(x1: left, y1: zero, x2: left + plotW, y2: zero, class: "zero")
        for i in 0..<n {
            let cx = left + (Double(i) + 0.5) * slot
            if let iv = interval(i) {
                let cap = min(slot * 0.2, 4)
                let (ya, yb) = (axis.pixel(iv.lower), axis.pixel(iv.upper))
                canvas.line(x1: cx, y1: ya, x2: cx, y2: yb, class: "err", stroke: Self.whisker)
                canvas.line(x1: cx - cap, y1: ya, x2: cx + cap, y2: ya, class: "err", stroke: Self.whisker)
                canvas.line(x1: cx - cap, y1: yb, x2: cx + cap, y2: yb, class: "err", stroke: Self.whisker)
            }
            if let r = reference(i) {
                let y = axis.pixel(r)
                let half = slot * 0.44
                canvas.line(x1: cx - half, y1: y, x2: cx + half, y2: y, class: "ref", title: referenceTooltip(i, r))
            }
        }

        // Category labels: every k-th for integer labels that would collide.
        let widest = (0..<n).map { HTMLEscaping.estimatedWidth(label($0), fontSize: 11) }.max() ?? 0
        let step = max(1, Int(((widest + 4) / slot).rounded(.up)))
        for i in stride(from: 0, to: n, by: step) {
            canvas.text(label(i), x: left + (Double(i) + 0.5) * slot, y: top + plotH + 15, class: "tk", anchor: .middle)
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
        drawLegend(into: &canvas, x: left, y: 16)
        return canvas.finish(width: width, height: top + plotH + 42, standalone: standalone)
    }

    private func horizontalSVG(standalone: Bool) -> String {
        let n = count
        let rowH = 20.0
        let texts = (0..<n).map { HTMLEscaping.truncated(label($0), to: 40) }
        let labelW = min(texts.map { HTMLEscaping.estimatedWidth($0, fontSize: 11) }.max() ?? 0, 260)
        let left = labelW + 14
        let plotW = 380.0
        let valueRoom = 56.0
        let top = (hasLegend ? 26.0 : 6.0) + (chart.xLabel.isEmpty ? 0 : 18)
        let plotH = rowH * Double(n)
        var canvas = SVGCanvas(label: chart.title)
        let (lo, hi) = valueRange
        let axis = AxisScale(minimum: lo, maximum: hi, targetTicks: 5, from: left, to: left + plotW)

        for t in axis.ticks {
            let x = axis.pixel(t)
            canvas.line(x1: x, y1: top, x2: x, y2: top + plotH, class: "grid")
            canvas.text(axis.label(t), x: x, y: top + plotH + 15, class: "tk", anchor: .middle)
        }
        canvas.line(x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis")
        for i in 0..<n {
            let y = top + Double(i) * rowH
            canvas.text(
                texts[i],
                x: left - 6,
                y: y + rowH / 2 + 3.8,
                class: "tk",
                anchor: .end,
                title: texts[i] == label(i) ? nil : label(i)
            )
            let v = value(i)
            guard v.isFinite else {
                canvas.text("n/a", x: axis.pixel(0) + 4, y: y + rowH / 2 + 3.5, class: "vl")
                continue
            }
            let x1 = axis.pixel(min(v, 0))
            let x2 = axis.pixel(max(v, 0))
            canvas.rect(
                x: x1,
                y: y + 3,
                width: max(x2 - x1, 0.5),
                height: rowH - 6,
                fill: isHighlighted(i) ? Self.accent : Self.base,
                class: "bar",
                title: tooltip(i)
            )
            var end = (low: x1, high: x2)
            if let iv = interval(i) {
                let (xa, xb) = (axis.pixel(iv.lower), axis.pixel(iv.upper))
                let cy = y + rowH / 2
                canvas.line(x1: xa, y1: cy, x2: xb, y2: cy, class: "err", stroke: Self.whisker)
                canvas.line(x1: xa, y1: cy - 4, x2: xa, y2: cy + 4, class: "err", stroke: Self.whisker)
                canvas.line(x1: xb, y1: cy - 4, x2: xb, y2: cy + 4, class: "err", stroke: Self.whisker)
                end = (min(end.low, xa), max(end.high, xb))
            }
            if let r = reference(i) {
                let xr = axis.pixel(r)
                canvas.line(
                    x1: xr,
                    y1: y + 1.5,
                    x2: xr,
                    y2: y + rowH - 1.5,
                    class: "ref",
                    title: referenceTooltip(i, r)
                )
                end = (min(end.low, xr), max(end.high, xr))
            }
            canvas.text(
                NumberFormat.value(v),
                x: v < 0 ? end.low - 4 : end.high + 4,
                y: y + rowH / 2 + 3.5,
                class: "vl",
                anchor: v < 0 ? .end : .start
            )
        }
        canvas.line(x1: axis.pixel(0), y1: top, x2: axis.pixel(0), y2: top + plotH, class: "zero")
        if !chart.xLabel.isEmpty {
            canvas.text(
                HTMLEscaping.truncated(chart.xLabel, to: 40),
                x: left - 6,
                y: top - 6,
                class: "ax",
                anchor: .end
            )
        }
        if !chart.yLabel.isEmpty {
            canvas.text(
                HTMLEscaping.truncated(chart.yLabel, to: 80),
                x: left + plotW / 2,
                y: top + plotH + 34,
                class: "ax",
                anchor: .middle
            )
        }
        drawLegend(into: &canvas, x: left, y: 16)
        return canvas.finish(width: left + plotW + valueRoom, height: top + plotH + 42, standalone: standalone)
    }
}
