// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Assembles the document; holds the id allocator so every id on the page is unique.
struct ReportPage {
    private var ids = IDAllocator()

    /// Keys of ``AnalysisResult/run`` that repeat ``StreamStatistics`` or the failures, which the
    /// page shows on their own.
    static let statisticKeys: Set<String> = [
        "tokens", "records", "complete_journeys", "incomplete_journeys", "failures",
    ]

    /// A grid of small multiples with more cells than this is drawn as images (see
    /// ``HeatmapChart/maxVectorCells``): 24,576 cells is, for example, 6 panels of 64 × 64.
    static let maxVectorCellsPerGrid = 6 * HeatmapChart.maxVectorCells

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
        for (report, id) in zip(result.reports, sectionIDs) { out += section(report, id: id) }

        out += "</main>\n<footer>A self-contained report: nothing is loaded from the network. "
        out += "Hover a heatmap cell, a bar or a point to see its value.</footer>\n</body>\n</html>\n"
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

    private mutating func section(_ report: AnalyzerReport, id: String) -> String {
        var out = "<section id=\"\(Self.esc(id))\" class=\"analyzer\">\n"
        out += "<h2>\(Self.esc(report.title))<span class=\"name\">\(Self.esc(report.analyzer))</span></h2>\n"
        let blocks = FigureLayout.blocks(report.figures)
        if !blocks.isEmpty {
            out += "<div class=\"figures\">\n"
            for block in blocks {
                switch block {
                case .single(let figure): out += single(figure)
                case .alike(let heatmaps):
                    let scale = ColorScale.covering(heatmaps.map(\.values))?.rounded()
                    out += "<div class=\"alike\">\n"
                    for h in heatmaps { out += heatmap(h, scale: scale, shared: true) }
                    out += "</div>\n"
                case .multiples(let heatmaps): out += multiples(heatmaps)
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

    private mutating func multiples(_ heatmaps: [ReportFigure.Heatmap]) -> String {
        let charts = heatmaps.map { HeatmapChart($0, size: .panel) }
        let scale = ColorScale.covering(heatmaps.map(\.values))?.rounded() ?? ColorScale(minimum: 0, maximum: 1)
        let sharedX = Set(heatmaps.map(\.xLabel)).count == 1
        let sharedY = Set(heatmaps.map(\.yLabel)).count == 1
        let first = charts[0]
        // Draw every panel as an image when the grid as a whole is too large to draw cell by cell.
        let cells = charts.reduce(0) { $0 + $1.rows * $1.columns }
        let image = cells > Self.maxVectorCellsPerGrid || charts.contains(where: \.prefersImage)
        var out =
            "<figure class=\"multiples\"><figcaption>\(heatmaps.count) heatmaps, \(first.rows) × \(first.columns) each"
        out += "<span class=\"meta\"> — one colour scale for all; "
        out += image ? "drawn as images, one pixel per cell (values are in report.json)" : "hover a cell for its value"
        out += "</span></figcaption>\n"
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
        for chart in charts {
            out += "<div class=\"panel\"><div class=\"ptitle\">\(Self.esc(chart.heatmap.title))</div>"
            out += chart.svg(scale: scale, axisTitles: (!sharedX, !sharedY), image: image, ids: &ids) + "</div>\n"
        }
        return out + "</div>\n</figure>\n"
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
