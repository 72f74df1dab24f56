// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Draws a ``ReportFigure/Heatmap`` as SVG: one rectangle per cell coloured on a viridis scale,
/// with its value in a tooltip, row and column labels (every k-th when they would collide), axis
/// titles and a colour legend. A cell that is not finite means *no data* (a source expert never
/// selected, a masked diagonal): it is hatched grey (plain grey in an image), left out of the
/// colour scale, its tooltip says "no data", and the legend gains a "no data" swatch.
///
/// Above ``maxVectorCells`` cells the cells become one embedded PNG, one pixel per cell
/// (``imageElement(scale:x:y:width:height:)``): each cell quantised to one of 255 colour levels
/// (``HeatmapRaster``), compressed, with whole-pixel cells (at least 2 pixels at full size, 1 in
/// a panel) so a 256 × 256 matrix is 512 pixels wide.
///
/// Rows and columns are drawn in the order ``HeatmapOrder`` picks (usage order for large
/// expert × expert matrices, id order otherwise), with the true ids in labels and tooltips; a
/// full-size chart states the order under its x-axis title.
///
/// Two sizes: ``Size/full`` for a figure of its own (legend at the right, values printed in cells
/// that are large enough), and ``Size/panel`` for one of a grid of small multiples that share a
/// colour scale and a separate legend (``legend(scale:hasMissing:ids:)``).
struct HeatmapChart {
    /// How large to draw.
    enum Size {
        case full, panel
    }

    /// The heatmap as drawn: rows and columns in ``order`` (labels moved with them).
    let heatmap: ReportFigure.Heatmap
    let rows: Int
    let columns: Int
    let size: Size
    /// Where each drawn row and column comes from, and the chart's sentence about it.
    let order: HeatmapOrder

    /// Above this many cells a heatmap is drawn as an embedded image, one pixel per cell, rather
    /// than one rectangle (with a tooltip) per cell, to keep the report small and fast.
    static let maxVectorCells = 4096

    /// The colour of cells that are not finite in an image (which cannot hatch).
    static let missingGrey = "#d0d7de"

    init(_ heatmap: ReportFigure.Heatmap, size: Size) {
        let rows = heatmap.values.count
        let columns = heatmap.values.map(\.count).max() ?? 0
        let order = HeatmapOrder(heatmap)
        self.rows = rows
        self.columns = columns
        self.size = size
        self.order = order
        if order.rule == .natural {
            self.heatmap = heatmap
        } else {
            func label(_ labels: [String], _ i: Int) -> String { i < labels.count ? labels[i] : String(i) }
            var drawn = heatmap
            drawn.rowLabels = order.rows.map { label(heatmap.rowLabels, $0) }
            drawn.columnLabels = order.columns.map { label(heatmap.columnLabels, $0) }
            drawn.values = order.rows.map { r in
                let row = heatmap.values[r]
                return order.columns.map { c in c < row.count ? row[c] : .nan }
            }
            self.heatmap = drawn
        }
    }

    /// Whether there is any cell to draw.
    var isEmpty: Bool { rows == 0 || columns == 0 }

    /// Whether a cell is not finite (or missing from a short row).
    var hasMissing: Bool {
        heatmap.values.contains { row in row.count < columns || row.contains { !$0.isFinite } }
    }

    func value(_ r: Int, _ c: Int) -> Double {
        let row = heatmap.values[r]
        return c < row.count ? row[c] : .nan
    }

    func rowLabel(_ r: Int) -> String { r < heatmap.rowLabels.count ? heatmap.rowLabels[r] : String(r) }
    func columnLabel(_ c: Int) -> String { c < heatmap.columnLabels.count ? heatmap.columnLabels[c] : String(c) }

    /// The legend's and tooltips' name for a cell that is not finite.
    static let noData = "no data"

    /// The tooltip of a cell: "y-axis: row, x-axis: column = value" ("= no data" when the value
    /// is not finite).
    func tooltip(_ r: Int, _ c: Int) -> String {
        let y = heatmap.yLabel.isEmpty ? "row" : heatmap.yLabel
        let x = heatmap.xLabel.isEmpty ? "column" : heatmap.xLabel
        let v = value(r, c)
        return "\(y): \(rowLabel(r)), \(x): \(columnLabel(c)) = \(v.isFinite ? NumberFormat.value(v) : Self.noData)"
    }

    // MARK: - Drawing

    /// Whether this heatmap alone is too large to draw cell by cell.
    var prefersImage: Bool { rows * columns > Self.maxVectorCells }

    /// The SVG of the heatmap. `scale` defaults to the range of its own values; `axisTitles`
    /// turns the x and y titles on or off (small multiples that share titles leave them out);
    /// `image` draws the cells as one embedded PNG (default: when ``prefersImage``).
    func svg(
        scale given: ColorScale?,
        axisTitles: (x: Bool, y: Bool) = (true, true),
        image: Bool? = nil,
        ids: inout IDAllocator,
        standalone: Bool = false
    ) -> String {
        let asImage = image ?? prefersImage
        let scale = given ?? ColorScale.covering([heatmap.values])?.rounded() ?? ColorScale(minimum: 0, maximum: 1)
        let full = size == .full
        let tickFont = full ? 11.0 : 9.5
        let axisFont = full ? 12.0 : 10.0
        let maxPlot = full ? 440.0 : 150.0
        let cellW: Double
        let cellH: Double
        if asImage {
            // Whole pixels per cell, each axis on its own (a 58 × 256 layer-by-expert map is not
            // squeezed to 2-pixel rows): about 512 pixels at full size, 256 in a panel.
            let target = full ? 512.0 : 256.0
            func side(_ n: Int) -> Double { min(max((target / Double(max(n, 1))).rounded(.down), full ? 2 : 1), 44) }
            cellW = side(columns)
            cellH = min(side(rows), max(cellW * 4, full ? 8 : 4))
        } else {
            var cell = maxPlot / Double(max(rows, columns))
            cell = min(max(cell, full ? 6 : 3), full ? 44 : 20)
            cell = (cell * 2).rounded(.down) / 2
            cellW = cell
            cellH = cell
        }
        let cell = min(cellW, cellH)
        let plotW = cellW * Double(columns)
        let plotH = cellH * Double(rows)
        let labelLimit = full ? 18 : 12
        let tk = full ? "tk" : "tk sm"
        let ax = full ? "ax" : "ax sm"

        // Row labels: every k-th so that labels do not overlap (k a round number: 1, 2, 4, 5, 8, 10, 16, ...).
        let rowStep = Self.roundStep(Int(((tickFont + 2) / cellH).rounded(.up)))
        let rowTexts = (0..<rows).map { HTMLEscaping.truncated(rowLabel($0), to: labelLimit) }
        let rowLabelW =
            stride(from: 0, to: rows, by: rowStep).map { HTMLEscaping.estimatedWidth(rowTexts[$0], fontSize: tickFont) }
            .max() ?? 0

        // Column labels: horizontal every k-th, or rotated when horizontal ones would be too sparse.
        let colTexts = (0..<columns).map { HTMLEscaping.truncated(columnLabel($0), to: labelLimit) }
        let colLabelW = colTexts.map { HTMLEscaping.estimatedWidth($0, fontSize: tickFont) }.max() ?? 0
        let verticalStep = Self.roundStep(Int(((tickFont + 2) / cellW).rounded(.up)))
        let horizontalStep = Self.roundStep(Int(((colLabelW + 5) / cellW).rounded(.up)))
        let rotated = horizontalStep > 2 * verticalStep
        let colStep = rotated ? verticalStep : horizontalStep
        let colBand = rotated ? colLabelW + 8 : tickFont + 6

        let showY = axisTitles.y && !heatmap.yLabel.isEmpty
        let showX = axisTitles.x && !heatmap.xLabel.isEmpty
        let left = (showY ? axisFont + 8 : 2) + rowLabelW + 5
        let top = full ? 8.0 : 3.0
        let xTitleBand = showX ? axisFont + 8 : 0
        // The order rule, in lines about as wide as the plot (at least 260 pixels).
        let orderLines =
            full ? order.note.map { Self.wrapped($0, width: max(plotW, 260), fontSize: tickFont) } ?? [] : []
        let orderBand = orderLines.isEmpty ? 0.0 : Double(orderLines.count) * (tickFont + 3) + 4
        var height = top + plotH + colBand + xTitleBand + orderBand + 2

        var canvas = SVGCanvas(label: heatmap.title)
        let missing = hasMissing
        var hatch = ""
        if missing && asImage {
            hatch = Self.missingGrey
        } else if missing {
            let id = ids.fresh("moe-na")
            hatch = "url(#\(id)) \(Self.missingGrey)"
            canvas.define(Self.hatchPattern(id: id))
        }

        // Cells.
        let printValues = full && cell >= 30 && !asImage
        if asImage {
            canvas.raw(imageElement(scale: scale, x: left, y: top, width: plotW, height: plotH))
        } else {
            canvas.raw("<g class=\"cells\" shape-rendering=\"crispEdges\">")
            for r in 0..<rows {
                for c in 0..<columns {
                    let v = value(r, c)
                    canvas.rect(
                        x: left + Double(c) * cell,
                        y: top + Double(r) * cell,
                        width: cell,
                        height: cell,
                        fill: v.isFinite ? scale.hex(v) : hatch,
                        title: tooltip(r, c)
                    )
                }
            }
            canvas.raw("</g>")
        }
        if printValues {
            canvas.raw("<g pointer-events=\"none\">")
            for r in 0..<rows {
                for c in 0..<columns {
                    let v = value(r, c)
                    guard v.isFinite else { continue }
                    let s = NumberFormat.cell(v)
                    guard HTMLEscaping.estimatedWidth(s, fontSize: 10) <= cell - 4 else { continue }
                    canvas.text(
                        s,
                        x: left + (Double(c) + 0.5) * cell,
                        y: top + (Double(r) + 0.5) * cell + 3.5,
                        class: scale.wantsDarkText(v) ? "cv" : "cv lt",
                        anchor: .middle
                    )
                }
            }
            canvas.raw("</g>")
        }
        canvas.rect(x: left, y: top, width: plotW, height: plotH, class: "frame")

        // Tick labels.
        for r in stride(from: 0, to: rows, by: rowStep) {
            canvas.text(
                rowTexts[r],
                x: left - 4,
                y: top + (Double(r) + 0.5) * cellH + tickFont * 0.35,
                class: tk,
                anchor: .end
            )
        }
        for c in stride(from: 0, to: columns, by: colStep) {
            let x = left + (Double(c) + 0.5) * cellW
            if rotated {
                canvas.text(
                    colTexts[c],
                    x: x + tickFont * 0.35,
                    y: top + plotH + 4,
                    class: tk,
                    anchor: .end,
                    rotate: -90
                )
            } else {
                canvas.text(colTexts[c], x: x, y: top + plotH + tickFont + 2, class: tk, anchor: .middle)
            }
        }

        // Axis titles, shortened to the plot's extent (full text in a tooltip).
        var width = left + plotW + 4
        if showX {
            let maxChars = max(Int((max(plotW, 140) + left - 4) / (axisFont * 0.6)), 6)
            let s = HTMLEscaping.truncated(heatmap.xLabel, to: maxChars)
            let w = HTMLEscaping.estimatedWidth(s, fontSize: axisFont)
            let cx = max(left + plotW / 2, w / 2 + 2)
            width = max(width, cx + w / 2 + 2)
            canvas.text(
                s,
                x: cx,
                y: top + plotH + colBand + axisFont + 2,
                class: ax,
                anchor: .middle,
                title: s == heatmap.xLabel ? nil : heatmap.xLabel
            )
        }
        for (i, line) in orderLines.enumerated() {
            let y = top + plotH + colBand + xTitleBand + tickFont + 4 + Double(i) * (tickFont + 3)
            canvas.text(line, x: left, y: y, class: "tk")
            width = max(width, left + HTMLEscaping.estimatedWidth(line, fontSize: tickFont) + 4)
        }
        if showY {
            let maxChars = max(Int(max(plotH, 60) / (axisFont * 0.6)), 6)
            let s = HTMLEscaping.truncated(heatmap.yLabel, to: maxChars)
            let w = HTMLEscaping.estimatedWidth(s, fontSize: axisFont)
            let cy = max(top + plotH / 2, w / 2 + 2)
            height = max(height, cy + w / 2 + 2)
            canvas.text(
                s,
                x: axisFont + 1,
                y: cy,
                class: ax,
                anchor: .middle,
                rotate: -90,
                title: s == heatmap.yLabel ? nil : heatmap.yLabel
            )
        }

        // Legend at the right of a full heatmap.
        if full {
            let barX = left + plotW + 18
            let barH = max(plotH, 140)
            let used = Self.drawVerticalLegend(
                into: &canvas,
                scale: scale,
                x: barX,
                y: top,
                height: barH,
                hatch: missing ? hatch : nil,
                ids: &ids
            )
            width = max(width, barX + used)
            height = max(height, top + barH + (missing ? 30 : 8))
        }
        return canvas.finish(width: width, height: height, standalone: standalone)
    }

    /// A number for the hover script: nine significant digits, scientific notation when small
    /// or large ("0.00196850394", "1.5e-07").
    static func exact(_ v: Double) -> String {
        guard v.isFinite, v != 0 else { return "0" }
        var exponent = 0
        var m = abs(v)
        while m >= 10 {
            m /= 10
            exponent += 1
        }
        while m < 1 {
            m *= 10
            exponent -= 1
        }
        let mantissa = (v < 0 ? "-" : "") + NumberFormat.fixed(m, decimals: 8, trimZeros: true)
        return exponent == 0 ? mantissa : "\(mantissa)e\(exponent)"
    }

    /// A label step rounded up to 1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, ... so
    /// labelled positions are easy to count.
    static func roundStep(_ step: Int) -> Int {
        let s = max(step, 1)
        var base = 1
        while true {
            for m in [1, 2, 4, 5, 8] where m * base >= s { return m * base }
            if 10 * base >= s { return 10 * base }
            for m in [16, 20, 25, 32, 50, 64] where m * base >= s { return m * base }
            base *= 100
        }
    }

    /// `text` broken at spaces into lines of at most about `width` pixels (a longer word stays whole).
    static func wrapped(_ text: String, width: Double, fontSize: Double) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            let candidate = line.isEmpty ? String(word) : line + " " + word
            if !line.isEmpty && HTMLEscaping.estimatedWidth(candidate, fontSize: fontSize) > width {
                lines.append(line)
                line = String(word)
            } else {
                line = candidate
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    /// The cells quantised on `scale`, one level per cell, in drawn order.
    func raster(scale: ColorScale) -> HeatmapRaster {
        HeatmapRaster(values: heatmap.values, columns: columns, scale: scale)
    }

    /// The cells as one `<image>`: a palette PNG with one pixel per cell (``HeatmapRaster``),
    /// scaled up without smoothing.
    func imageElement(scale: ColorScale, x: Double, y: Double, width: Double, height: Double) -> String {
        let raster = raster(scale: scale)
        let png = raster.png()
        let c = NumberFormat.coordinate
        let note =
            "\(rows) × \(columns) cells drawn as an image (too many for one tooltip each; values in report.json); "
            + "colour scale \(NumberFormat.value(scale.minimum)) to \(NumberFormat.value(scale.maximum))"
            + " in \(Int(HeatmapRaster.topLevel) + 1) levels of \(NumberFormat.value(raster.step))"
            + (hasMissing ? "; grey cells: \(Self.noData)" : "")
        // What the hover script (HoverScript) needs: labels in drawn order, axis names, the levels' values.
        func joined(_ labels: [String]) -> String {
            HTMLEscaping.escape(labels.map { String($0.map { $0 == "|" ? "¦" : $0 }) }.joined(separator: "|"))
        }
        let names = (
            y: heatmap.yLabel.isEmpty ? "row" : heatmap.yLabel, x: heatmap.xLabel.isEmpty ? "column" : heatmap.xLabel
        )
        let data =
            "data-rows=\"\(joined((0..<rows).map(rowLabel)))\" data-cols=\"\(joined((0..<columns).map(columnLabel)))\" "
            + "data-y=\"\(HTMLEscaping.escape(names.y))\" data-x=\"\(HTMLEscaping.escape(names.x))\" "
            + "data-lo=\"\(Self.exact(scale.minimum))\" data-step=\"\(Self.exact(raster.step))\" "
        return "<image class=\"raster\" x=\"\(c(x))\" y=\"\(c(y))\" width=\"\(c(width))\" height=\"\(c(height))\" "
            + data + "preserveAspectRatio=\"none\" href=\"data:image/png;base64,\(PNGEncoder.base64(png))\">"
            + "<title>\(HTMLEscaping.escape(note))</title></image>"
    }

    // MARK: - Legends

    static func hatchPattern(id: String) -> String {
        "<pattern id=\"\(id)\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
            + "<rect width=\"6\" height=\"6\" fill=\"#eaeef2\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#8c959f\" stroke-width=\"2\"/></pattern>"
    }

    static func gradient(id: String, vertical: Bool) -> String {
        var s = "<linearGradient id=\"\(id)\" x1=\"0\" y1=\"\(vertical ? 1 : 0)\" x2=\"\(vertical ? 0 : 1)\" y2=\"0\">"
        let n = ColorScale.anchors.count
        for i in 0..<n {
            let t = Double(i) / Double(n - 1)
            s +=
                "<stop offset=\"\(NumberFormat.fixed(t, decimals: 3, trimZeros: true))\" stop-color=\"\(ColorScale.viridisHex(t))\"/>"
        }
        return s + "</linearGradient>"
    }

    /// Legend ticks: nice values from the minimum to the maximum (both always labelled; an
    /// interior tick closer than `gap` pixels to an end that is not itself a tick is dropped).
    /// Returns (value, label) pairs from the minimum up.
    static func legendTicks(scale: ColorScale, length: Double, gap: Double) -> [(Double, String)] {
        let axis = AxisScale(
            minimum: scale.minimum,
            maximum: scale.maximum,
            targetTicks: ColorScale.legendTicks,
            from: 0,
            to: length,
            wholeSteps: false
        )
        let tolerance = (scale.maximum - scale.minimum) * 1e-9
        var ticks = axis.ticks.map { ($0, axis.label($0)) }
        if let first = ticks.first, abs(first.0 - scale.minimum) <= tolerance {
            ticks[0].0 = scale.minimum
        } else {
            ticks.removeAll { axis.pixel($0.0) < gap }
            ticks.insert((scale.minimum, NumberFormat.value(scale.minimum)), at: 0)
        }
        if let last = ticks.last, abs(last.0 - scale.maximum) <= tolerance {
            ticks[ticks.count - 1].0 = scale.maximum
        } else {
            ticks.removeAll { $0.0 != scale.minimum && axis.pixel($0.0) > length - gap }
            ticks.append((scale.maximum, NumberFormat.value(scale.maximum)))
        }
        return ticks
    }

    /// Draws a vertical gradient bar with ticks; returns the width used.
    static func drawVerticalLegend(
        into canvas: inout SVGCanvas,
        scale: ColorScale,
        x: Double,
        y: Double,
        height: Double,
        hatch: String?,
        ids: inout IDAllocator
    ) -> Double {
        let id = ids.fresh("moe-grad")
        canvas.define(gradient(id: id, vertical: true))
        canvas.rect(
            x: x,
            y: y,
            width: 12,
            height: height,
            fill: "url(#\(id))",
            title: "colour scale: \(NumberFormat.value(scale.minimum)) to \(NumberFormat.value(scale.maximum))"
        )
        var labelW = 0.0
        for (v, s) in legendTicks(scale: scale, length: height, gap: 14) {
            let py = y + height - scale.position(v) * height
            canvas.line(x1: x + 12, y1: py, x2: x + 16, y2: py, class: "axis")
            canvas.text(s, x: x + 19, y: py + 3.8, class: "tk")
            labelW = max(labelW, HTMLEscaping.estimatedWidth(s, fontSize: 11))
        }
        if let hatch {
            canvas.rect(x: x, y: y + height + 10, width: 12, height: 12, fill: hatch)
            canvas.text(noData, x: x + 19, y: y + height + 20, class: "tk")
            labelW = max(labelW, HTMLEscaping.estimatedWidth(noData, fontSize: 11))
        }
        return 19 + labelW + 4
    }

    /// A separate horizontal legend for small multiples sharing `scale`.
    static func legend(
        scale: ColorScale,
        hasMissing: Bool,
        image: Bool = false,
        ids: inout IDAllocator,
        title: String
    ) -> String {
        var canvas = SVGCanvas(label: "colour scale: \(title)", classes: "chart legend")
        let x = 24.0
        let length = 300.0
        let id = ids.fresh("moe-grad")
        canvas.define(gradient(id: id, vertical: false))
        canvas.rect(
            x: x,
            y: 4,
            width: length,
            height: 12,
            fill: "url(#\(id))",
            title: "colour scale: \(NumberFormat.value(scale.minimum)) to \(NumberFormat.value(scale.maximum))"
        )
        for (v, s) in legendTicks(scale: scale, length: length, gap: 30) {
            let px = x + scale.position(v) * length
            canvas.line(x1: px, y1: 16, x2: px, y2: 20, class: "axis")
            canvas.text(s, x: px, y: 32, class: "tk", anchor: .middle)
        }
        var width = x + length + 30
        if hasMissing {
            var fill = missingGrey
            if !image {
                let pid = ids.fresh("moe-na")
                canvas.define(hatchPattern(id: pid))
                fill = "url(#\(pid)) \(missingGrey)"
            }
            canvas.rect(x: width, y: 4, width: 12, height: 12, fill: fill)
            canvas.text(noData, x: width + 17, y: 14, class: "tk")
            width += 22 + HTMLEscaping.estimatedWidth(noData, fontSize: 11) + 6
        }
        return canvas.finish(width: width, height: 38)
    }
}
