// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Assembles the document; holds the id allocator so every id on the page is unique.
///
/// Heatmaps share one page budget, ``heatmapByteBudget``: when their markup together would be
/// larger, each block of heatmaps (a single one, a row of alike ones, a grid of small multiples)
/// gets a fair share (blocks under the share keep everything, the rest split what is left), a
/// grid draws every s-th panel for the smallest s that fits, and every heatmap left out is
/// summarised in a table under its block (size, range, mean, largest cell) that says so and
/// points to `report.json` for the values.
struct ReportPage {
    private var ids = IDAllocator()
    /// The bytes of heatmap markup the page may hold (see ``heatmapByteBudget``).
    var heatmapBudget: Int

    init(heatmapBudget: Int = Self.heatmapByteBudget) {
        self.heatmapBudget = heatmapBudget
    }

    /// The most bytes of heatmap markup (SVG and embedded images) one page holds: 3.5 MB, so a
    /// report with tables stays under 5 MB and opens quickly.
    static let heatmapByteBudget = 3_500_000

    /// Keys of ``AnalysisResult/run`` that repeat ``StreamStatistics`` or the failures, which the
    /// page shows on their own.
    static let statisticKeys: Set<String> = [
        "tokens", "records", "complete_journeys", "incomplete_journeys", "failures",
    ]

    /// A grid of small multiples with more cells than this is drawn as images (see
    /// ``HeatmapChart/maxVectorCells``): 16,384 cells is, for example, 4 panels of 64 × 64 or 16
    /// of 32 × 32 (about 2 MB of SVG).
    static let maxVectorCellsPerGrid = 4 * HeatmapChart.maxVectorCells

    private static func esc(_ s: String) -> String { HTMLEscaping.escape(s) }

    mutating func document(_ result: AnalysisResult, title: String, subtitle: String?) -> String {
        for fixed in ["summary", "run", "failures"] { _ = ids.claim(fixed) }
        let sectionIDs = result.reports.map { ids.claim($0.analyzer) }
        let failed = Set(result.failures.map(\.analyzer))

        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        out +=
            "<title>\(Self.esc(title))</title>\n<style>\n\(Stylesheet.page)\n\(Stylesheet.svg)\n</style>\n</head>\n<body>\n"

        // Header and navigation.
        out += "<header>\n<h1>\(Self.esc(title))</h1>\n"
        if let subtitle, !subtitle.isEmpty { out += "<p class=\"subtitle\">\(Self.esc(subtitle))</p>\n" }
        out += "<nav><a href=\"#summary\">Summary</a><a href=\"#run\">Run</a>"
        if !result.failures.isEmpty {
            out += "<a href=\"#failures\" class=\"failed\">Failures (\(result.failures.count))</a>"
        }
        for (report, id) in zip(result.reports, sectionIDs) {
            let cls = failed.contains(report.analyzer) ? " class=\"failed\"" : ""
            out += "<a href=\"#\(Self.esc(id))\"\(cls)>\(Self.esc(HTMLEscaping.truncated(report.title, to: 48)))</a>"
        }
        out += "</nav>\n</header>\n<main>\n"
        if !result.notices.isEmpty {
            out += "<section class=\"notices\" role=\"alert\">\n"
            for notice in result.notices { out += "<p>\(Self.esc(notice))</p>\n" }
            out += "</section>\n"
        }

        out += summary(result, sectionIDs: sectionIDs)
        out += run(result)
        if !result.failures.isEmpty { out += failures(result.failures) }
        let sections = result.reports.map { FigureLayout.blocks($0.figures) }
        let allowance = Self.allowance(sections.map { $0.map(Self.pieceCosts) }, budget: heatmapBudget)
        var body = ""
        for (i, (report, id)) in zip(result.reports, sectionIDs).enumerated() {
            body += section(report, id: id, blocks: sections[i], allowance: allowance[i])
        }
        out += body

        out += "</main>\n<footer>A self-contained report: nothing is loaded from the network. "
        out += "Hover a heatmap cell, a bar or a point to see its value.</footer>\n"
        // The hover script for heatmaps drawn as images, only when there are any.
        if body.contains("<image class=\"raster\"") { out += HoverScript.element }
        out += "</body>\n</html>\n"
        return out
    }

    // MARK: - Summary, run, failures

    private func summary(_ result: AnalysisResult, sectionIDs: [String]) -> String {
        var out = "<section id=\"summary\">\n<h2>Summary</h2>\n"
        let rows = zip(result.reports, sectionIDs).filter { !$0.0.headlines.isEmpty }
        guard !rows.isEmpty else {
            return out + "<p class=\"empty\">No analyzer reported headline figures.</p>\n</section>\n"
        }
        out += "<div class=\"tablewrap\"><table class=\"summary\">\n"
        out +=
            "<thead><tr><th>analyzer</th><th>figure</th><th class=\"num\">value</th><th>compare with</th></tr></thead>\n<tbody>\n"
        for (report, id) in rows {
            for (i, h) in report.headlines.enumerated() {
                out +=
                    i == 0
                    ? "<tr class=\"first\"><td class=\"analyzer\"><a href=\"#\(Self.esc(id))\">\(Self.esc(report.analyzer))</a></td>"
                    : "<tr><td></td>"
                out +=
                    "<td>\(Self.esc(h.label))</td><td class=\"value\">\(Self.esc(h.value))</td><td class=\"ref\">\(Self.esc(h.reference))</td></tr>\n"
            }
        }
        return out + "</tbody>\n</table></div>\n</section>\n"
    }

    private func run(_ result: AnalysisResult) -> String {
        let s = result.statistics
        var out = "<section id=\"run\">\n<h2>Run</h2>\n<div class=\"stats\">"
        func stat(_ value: String, _ label: String, warn: Bool = false) {
            out += "<div class=\"stat\(warn ? " warn" : "")\"><b>\(value)</b><span>\(label)</span></div>"
        }
        stat(NumberFormat.grouped(s.tokens), "tokens")
        stat(NumberFormat.grouped(s.records), "token-layer records")
        stat(NumberFormat.grouped(s.completeJourneys), "complete journeys")
        stat(NumberFormat.grouped(s.incompleteJourneys), "incomplete journeys", warn: s.incompleteJourneys > 0)
        stat("\(result.reports.count)", "reports")
        stat("\(result.failures.count)", "failed analyzers", warn: !result.failures.isEmpty)
        out += "</div>\n"
        let facts: [ReportValue.Member]
        if let members = result.run.objectMembers {
            facts = members.filter { !Self.statisticKeys.contains($0.key) }
        } else if result.run == .null {
            facts = []
        } else {
            facts = [.init("run", result.run)]
        }
        if !facts.isEmpty {
            out += "<table class=\"kv\">\n"
            for m in facts {
                let key = String(m.key.map { $0 == "_" ? " " : $0 })
                out += "<tr><th>\(Self.esc(key))</th><td>\(Self.esc(Self.fact(m)))</td></tr>\n"
            }
            out += "</table>\n"
        }
        return out + "</section>\n"
    }

    /// A run fact's value on one line. A seed (`seed`, `analysis_seed`) is an identifier to type
    /// back into `--analysis-seed`, so its digits are shown as written, not grouped.
    static func fact(_ m: ReportValue.Member) -> String {
        if m.key == "seed" || m.key.hasSuffix("_seed"), let seed = m.value.uint64Value { return String(seed) }
        return inline(m.value)
    }

    /// A run fact on one line: scalars as they are, lists joined by commas, objects as "key: value".
    static func inline(_ v: ReportValue, depth: Int = 0) -> String {
        switch v {
        case .null: return "—"
        case .bool(let b): return b ? "yes" : "no"
        case .int(let i): return NumberFormat.grouped(i)
        case .unsigned(let u): return NumberFormat.grouped(u)
        case .double(let d): return NumberFormat.value(d)
        case .string(let s): return s
        case .array(let a):
            if a.isEmpty { return "none" }
            if depth > 1 { return v.jsonString() }
            return a.map { inline($0, depth: depth + 1) }.joined(separator: ", ")
        case .object(let m):
            if m.isEmpty { return "none" }
            if depth > 1 { return v.jsonString() }
            return m.map { "\($0.key): \(inline($0.value, depth: depth + 1))" }.joined(separator: ", ")
        }
    }

    private func failures(_ failures: [AnalyzerFailure]) -> String {
        var out = "<section id=\"failures\" class=\"failures\">\n<h2>Failed analyzers</h2>\n"
        out += "<p>These analyzers were dropped during the run; their reports are missing or incomplete.</p>\n"
        out += Self.table(
            ReportTable(
                title: "",
                columns: ["analyzer", "stage", "message"],
                rows: failures.map { [$0.analyzer, $0.stage, $0.message] }
            )
        )
        return out + "</section>\n"
    }

    // MARK: - Analyzer sections

    private mutating func section(
        _ report: AnalyzerReport,
        id: String,
        blocks: [FigureLayout.Block],
        allowance: [Int?]
    ) -> String {
        var out = "<section id=\"\(Self.esc(id))\" class=\"analyzer\">\n"
        out += "<h2>\(Self.esc(report.title))<span class=\"name\">\(Self.esc(report.analyzer))</span></h2>\n"
        if !blocks.isEmpty {
            out += "<div class=\"figures\">\n"
            for (block, allowed) in zip(blocks, allowance) {
                switch block {
                case .single(let figure):
                    if case .heatmap(let h) = figure, allowed == 0 {
                        out += Self.omitted([h], drawn: 0, stride: nil)
                    } else {
                        out += single(figure)
                    }
                case .alike(let heatmaps):
                    let scale = ColorScale.covering(heatmaps.map(\.values))?.rounded()
                    let (drawn, stride) = Self.subset(heatmaps.count, allowed: allowed)
                    // Images are wide (512 pixels for 256 experts): let them wrap instead of one row.
                    let wide = heatmaps.contains { HeatmapChart($0, size: .full).prefersImage }
                    if !drawn.isEmpty {
                        if !wide { out += "<div class=\"alike\">\n" }
                        for i in drawn { out += heatmap(heatmaps[i], scale: scale, shared: true) }
                        if !wide { out += "</div>\n" }
                    }
                    if drawn.count < heatmaps.count {
                        out += Self.omitted(Self.left(heatmaps, drawn: drawn), drawn: drawn.count, stride: stride)
                    }
                case .multiples(let heatmaps): out += multiples(heatmaps, allowed: allowed)
                }
            }
            out += "</div>\n"
        }
        for table in report.tables { out += Self.table(table) }
        if !report.notes.isEmpty {
            out += "<ul class=\"notes\">\n" + report.notes.map { "<li>\(Self.esc($0))</li>\n" }.joined() + "</ul>\n"
        }
        return out + "</section>\n"
    }

    private mutating func single(_ figure: ReportFigure) -> String {
        switch figure {
        case .heatmap(let h):
            return heatmap(h, scale: nil, shared: false)
        case .lines(let c):
            return
                "<figure class=\"lines\"><figcaption>\(Self.esc(c.title))</figcaption>\(LineChartView(chart: c).svg())</figure>\n"
        case .bars(let b):
            return
                "<figure class=\"bars\"><figcaption>\(Self.esc(b.title))</figcaption>\(BarChartView(chart: b).svg())</figure>\n"
        }
    }

    private mutating func heatmap(_ h: ReportFigure.Heatmap, scale: ColorScale?, shared: Bool) -> String {
        let chart = HeatmapChart(h, size: .full)
        let body = chart.isEmpty ? "<p class=\"empty\">no data</p>" : chart.svg(scale: scale, ids: &ids)
        let note = shared ? "<span class=\"meta\"> · shared colour scale</span>" : ""
        return "<figure class=\"heatmap\"><figcaption>\(Self.esc(h.title))\(note)</figcaption>\(body)</figure>\n"
    }

    private mutating func multiples(_ heatmaps: [ReportFigure.Heatmap], allowed: Int?) -> String {
        let (drawn, stride) = Self.subset(heatmaps.count, allowed: allowed)
        guard !drawn.isEmpty else { return Self.omitted(heatmaps, drawn: 0, stride: nil) }
        let charts = drawn.map { HeatmapChart(heatmaps[$0], size: .panel) }
        let scale = ColorScale.covering(heatmaps.map(\.values))?.rounded() ?? ColorScale(minimum: 0, maximum: 1)
        let sharedX = Set(heatmaps.map(\.xLabel)).count == 1
        let sharedY = Set(heatmaps.map(\.yLabel)).count == 1
        let first = charts[0]
        let image = Self.gridIsRaster(heatmaps)
        var out =
            "<figure class=\"multiples\"><figcaption>\(heatmaps.count) heatmaps, \(first.rows) × \(first.columns) each"
        out += "<span class=\"meta\"> — one colour scale for all; "
        out +=
            image
            ? "drawn as images, one pixel per cell in \(Int(HeatmapRaster.topLevel) + 1) colour levels "
                + "(hover for a cell's value within half a level; exact values in report.json)"
            : "hover a cell for its value"
        if drawn.count < heatmaps.count {
            out +=
                "; \(drawn.count) of \(heatmaps.count) drawn (every \(Self.ordinal(stride ?? 1)), to keep the page small), "
                + "the others summarised in the table below"
        }
        out += "</span></figcaption>\n"
        let notes = charts.compactMap(\.order.note).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        if !notes.isEmpty {
            out += "<div class=\"axes\">\(Self.esc("each panel: " + notes.joined(separator: " / ")))</div>\n"
        }
        var axes: [String] = []
        if sharedY && !heatmaps[0].yLabel.isEmpty { axes.append("rows: \(heatmaps[0].yLabel)") }
        if sharedX && !heatmaps[0].xLabel.isEmpty { axes.append("columns: \(heatmaps[0].xLabel)") }
        if !axes.isEmpty { out += "<div class=\"axes\">\(Self.esc(axes.joined(separator: " · ")))</div>\n" }
        out +=
            HeatmapChart.legend(
                scale: scale,
                hasMissing: charts.contains(where: \.hasMissing),
                image: image,
                ids: &ids,
                title: "\(heatmaps.count) heatmaps"
            ) + "\n"
        out += "<div class=\"panels\">\n"
        for chart in charts { out += panel(chart, scale: scale, axisTitles: (!sharedX, !sharedY), image: image) }
        out += "</div>\n</figure>\n"
        if drawn.count < heatmaps.count {
            out += Self.omitted(Self.left(heatmaps, drawn: drawn), drawn: drawn.count, stride: stride)
        }
        return out
    }

    private mutating func panel(
        _ chart: HeatmapChart,
        scale: ColorScale,
        axisTitles: (x: Bool, y: Bool),
        image: Bool
    ) -> String {
        "<div class=\"panel\"><div class=\"ptitle\">\(Self.esc(chart.heatmap.title))</div>"
            + chart.svg(scale: scale, axisTitles: axisTitles, image: image, ids: &ids) + "</div>\n"
    }

    // MARK: - The heatmap budget

    /// Whether a grid of small multiples is drawn as images: when it is too large as a whole to
    /// draw cell by cell, or any panel alone is.
    static func gridIsRaster(_ heatmaps: [ReportFigure.Heatmap]) -> Bool {
        var cells = 0
        for h in heatmaps {
            let n = h.values.count * (h.values.map(\.count).max() ?? 0)
            if n > HeatmapChart.maxVectorCells { return true }
            cells += n
        }
        return cells > maxVectorCellsPerGrid
    }

    /// The bytes each heatmap of a block would take on the page (empty for other figures).
    static func pieceCosts(_ block: FigureLayout.Block) -> [Int] {
        var ids = IDAllocator()
        switch block {
        case .single(.heatmap(let h)):
            return [HeatmapChart(h, size: .full).svg(scale: nil, ids: &ids).utf8.count]
        case .single:
            return []
        case .alike(let hs):
            let scale = ColorScale.covering(hs.map(\.values))?.rounded()
            return hs.map { HeatmapChart($0, size: .full).svg(scale: scale, ids: &ids).utf8.count }
        case .multiples(let hs):
            let scale = ColorScale.covering(hs.map(\.values))?.rounded() ?? ColorScale(minimum: 0, maximum: 1)
            let image = gridIsRaster(hs)
            return hs.map {
                HeatmapChart($0, size: .panel).svg(scale: scale, axisTitles: (false, false), image: image, ids: &ids)
                    .utf8.count
            }
        }
    }

    /// How many heatmaps of each block may be drawn so that all of them together stay within
    /// `budget` bytes: nil (all) when everything fits; otherwise each block gets at most a
    /// common share (the largest one for which the shares fill the budget; blocks smaller than
    /// it keep everything), and draws every s-th heatmap for the smallest s that fits its share.
    static func allowance(_ costs: [[[Int]]], budget: Int) -> [[Int?]] {
        let totals = costs.flatMap { $0.map { $0.reduce(0, +) } }
        guard totals.reduce(0, +) > budget else { return costs.map { $0.map { _ in nil } } }
        // The share: blocks under it keep all; the others split the rest equally.
        var share = Double(budget)
        var rest = Double(budget)
        var open = totals.filter { $0 > 0 }.sorted()
        while let smallest = open.first {
            let equal = rest / Double(open.count)
            if Double(smallest) > equal {
                share = equal
                break
            }
            rest -= Double(smallest)
            open.removeFirst()
            share = rest
        }
        return costs.map { section in
            section.map { pieces -> Int? in
                guard !pieces.isEmpty else { return nil }
                if Double(pieces.reduce(0, +)) <= share { return nil }
                for s in 1...pieces.count {
                    let chosen = Swift.stride(from: 0, to: pieces.count, by: s).map { pieces[$0] }
                    if Double(chosen.reduce(0, +)) <= share { return chosen.count }
                }
                return 0
            }
        }
    }

    /// The indices to draw of `count` heatmaps of which `allowed` may be drawn (all when nil):
    /// every s-th from the first, for the smallest s that gives at most `allowed`; and s.
    static func subset(_ count: Int, allowed: Int?) -> (drawn: [Int], stride: Int?) {
        guard let allowed, allowed < count else { return (Array(0..<count), nil) }
        guard allowed > 0 else { return ([], nil) }
        var s = 1
        while (count + s - 1) / s > allowed { s += 1 }
        return (Array(Swift.stride(from: 0, to: count, by: s)), s)
    }

    static func left(_ heatmaps: [ReportFigure.Heatmap], drawn: [Int]) -> [ReportFigure.Heatmap] {
        let set = Set(drawn)
        return heatmaps.indices.filter { !set.contains($0) }.map { heatmaps[$0] }
    }

    /// "2nd", "3rd", "11th".
    static func ordinal(_ n: Int) -> String {
        let suffix: String
        switch (n % 10, n % 100) {
        case (_, 11...13): suffix = "th"
        case (1, _): suffix = "st"
        case (2, _): suffix = "nd"
        case (3, _): suffix = "rd"
        default: suffix = "th"
        }
        return "\(n)\(suffix)"
    }

    /// The table that stands for heatmaps not drawn: what each was and its headline numbers.
    static func omitted(_ heatmaps: [ReportFigure.Heatmap], drawn: Int, stride: Int?) -> String {
        guard !heatmaps.isEmpty else { return "" }
        let how =
            drawn == 0
            ? "none drawn"
            : "\(drawn) of \(drawn + heatmaps.count) drawn above (every \(ordinal(stride ?? 1)))"
        let title =
            "\(heatmaps.count) heatmap\(heatmaps.count == 1 ? "" : "s") not drawn, to keep the page under its size budget "
            + "(\(how)); every value is in report.json"
        let rows = heatmaps.map { h -> [String] in
            let chart = HeatmapChart(h, size: .panel)
            var lo = Double.infinity
            var hi = -Double.infinity
            var sum = 0.0
            var n = 0
            var top: (Int, Int)?
            for (r, row) in h.values.enumerated() {
                for (c, v) in row.enumerated() where v.isFinite {
                    lo = min(lo, v)
                    if v > hi {
                        hi = v
                        top = (r, c)
                    }
                    sum += v
                    n += 1
                }
            }
            func label(_ labels: [String], _ i: Int) -> String { i < labels.count ? labels[i] : String(i) }
            let y = h.yLabel.isEmpty ? "row" : h.yLabel
            let x = h.xLabel.isEmpty ? "column" : h.xLabel
            let largest = top.map { "\(y) \(label(h.rowLabels, $0.0)), \(x) \(label(h.columnLabels, $0.1))" } ?? "—"
            return [
                h.title, "\(chart.rows) × \(chart.columns)", n > 0 ? NumberFormat.value(lo) : "—",
                n > 0 ? NumberFormat.value(sum / Double(n)) : "—", n > 0 ? NumberFormat.value(hi) : "—", largest,
                "\(chart.rows * chart.columns - n)",
            ]
        }
        let table = ReportTable(
            title: title,
            columns: ["heatmap", "size", "min", "mean", "max", "largest cell at", "cells without data"],
            rows: rows
        )
        return "<div class=\"omitted\">" + Self.table(table) + "</div>\n"
    }

    // MARK: - Tables

    /// Whether a cell reads as a number ("0.125", "-3", "12.5%", "1e-05").
    static func isNumeric(_ cell: String) -> Bool {
        var s = Substring(cell)
        if s.hasSuffix("%") { s = s.dropLast() }
        return !s.isEmpty && Double(s) != nil
    }

    /// A table; numeric columns are right-aligned; tables longer than 40 rows fold into a
    /// `<details>` element (open without JavaScript by a click).
    static func table(_ t: ReportTable) -> String {
        let width = max(t.columns.count, t.rows.map(\.count).max() ?? 0)
        let placeholders: Set<String> = ["", "n/a", "nan", "null", "—", "-"]
        let numeric = (0..<width).map { c in
            let cells = t.rows.compactMap { c < $0.count ? $0[c] : nil }.filter { !placeholders.contains($0) }
            return !cells.isEmpty && cells.allSatisfy(isNumeric)
        }
        func cls(_ c: Int) -> String { numeric[c] ? " class=\"num\"" : "" }
        var out = "<table class=\"data\">"
        if !t.title.isEmpty { out += "<caption>\(esc(t.title))</caption>" }
        out += "\n<thead><tr>"
        for c in 0..<width { out += "<th\(cls(c))>\(esc(c < t.columns.count ? t.columns[c] : ""))</th>" }
        out += "</tr></thead>\n<tbody>\n"
        for row in t.rows {
            out += "<tr>"
            for c in 0..<width { out += "<td\(cls(c))>\(esc(c < row.count ? row[c] : ""))</td>" }
            out += "</tr>\n"
        }
        out += "</tbody></table>"
        if t.rows.count > 40 {
            return
                "<details class=\"tablewrap\"><summary>\(esc(t.title.isEmpty ? "table" : t.title)) (\(t.rows.count) rows)</summary>\n\(out)</details>\n"
        }
        return "<div class=\"tablewrap\">\(out)</div>\n"
    }
}
