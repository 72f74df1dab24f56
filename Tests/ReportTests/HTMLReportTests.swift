// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingReport
import Testing

struct HTMLReportTests {
    static let result = ReportFixtures.mixtralSized()
    static let html = HTMLReport.render(result, title: "Synthetic <report>", subtitle: "32 layers & 8 experts")

    @Test func opensOnSummaryThenRunThenFailuresThenOneSectionPerReport() throws {
        let html = Self.html
        let order = [
            "<section id=\"summary\">", "<section id=\"run\">", "<section id=\"failures\"",
            "<section id=\"transition\"",
            "<section id=\"multihop\"", "<section id=\"domain\"", "<section id=\"expert_load\"",
        ]
        let positions = try order.map { try #require(html.range(of: $0)?.lowerBound, "missing \($0)") }
        #expect(positions == positions.sorted())
        #expect(Markup.count("<section ", in: html) == 3 + Self.result.reports.count)
        #expect(Markup.count("class=\"analyzer\">\n<h2>", in: html) == Self.result.reports.count)

        // The summary: every headline once, with its value and reference, in report order.
        let summary = try #require(Markup.between("<table class=\"summary\">", "</table>", in: html))
        let headlines = Self.result.reports.flatMap(\.headlines)
        #expect(Markup.count("<td class=\"value\">", in: summary) == headlines.count)
        #expect(summary.contains("<td class=\"value\">0.131</td><td class=\"ref\">chance 0.125</td>"))
        #expect(summary.contains("<a href=\"#multihop\">multihop</a>"))
        #expect(html.contains("<title>Synthetic &lt;report&gt;</title>"))
        #expect(html.contains("<p class=\"subtitle\">32 layers &amp; 8 experts</p>"))

        // Run statistics, facts (statistics keys not repeated) and the failure.
        let run = try #require(Markup.between("<section id=\"run\">", "</section>", in: html))
        #expect(run.contains("<b>932</b><span>tokens</span>"))
        #expect(run.contains("<b>29,784</b><span>token-layer records</span>"))
        #expect(run.contains("<b>5</b><span>incomplete journeys</span>"))
        #expect(run.contains("<tr><th>skipped records</th><td>none</td></tr>"))
        #expect(run.contains("<tr><th>shape</th><td>layers: 32, experts: 8, top_k: 2</td></tr>"))
        #expect(
            run.contains("<tr><th>inputs</th><td>../shared/data/mixtral_humaneval_2problems_routing.jsonl, ../shared")
        )
        #expect(!run.contains("<th>tokens</th>"))
        // A seed is a JSON number but an identifier: shown as typed, not digit-grouped.
        #expect(run.contains("<tr><th>seed</th><td>24301</td></tr>"))
        let failures = try #require(Markup.between("<section id=\"failures\"", "</section>", in: html))
        #expect(failures.contains("<td>broken</td><td>finish</td>"))
    }

    @Test func everySVGIsWellFormedXML() {
        let svgs = Markup.svgFragments(Self.html)
        // transition: shared legend + 31 panels + pooled heatmap + 2 line charts; multihop: 2;
        // domain: 2 heatmaps + bars; plugin: 1.
        #expect(svgs.count == (1 + 31 + 1 + 2) + 2 + 3 + 1)
        for (i, svg) in svgs.enumerated() {
            if case .failure(let error) = Markup.parse(svg) {
                Issue.record("svg \(i) does not parse: \(error)\n\(svg.prefix(300))")
            }
        }
    }

    @Test func drawsEveryHeatmapCellWithATooltipAndLegends() throws {
        var cells = 0
        var titled = 0
        for svg in Markup.svgFragments(Self.html) {
            // Cell rectangles are the rects inside <g class="cells">.
            guard let group = Markup.between("<g class=\"cells\" shape-rendering=\"crispEdges\">", "</g>", in: svg)
            else { continue }
            cells += Markup.count("<rect ", in: group)
            titled += Markup.count("<title>", in: group)
        }
        #expect(cells == ReportFixtures.heatmapCells())
        #expect(titled == cells)
        // One gradient legend per heatmap drawn on its own, one per grid of small multiples.
        #expect(Markup.count("<linearGradient ", in: Self.html) == 1 + 1 + 1 + 2 + 1)
        // The 32 diagonal cells of the 32 x 32 heatmap are NaN: hatched, with a "no data" tooltip.
        #expect(Markup.count(" #d0d7de\"><title>", in: Self.html) == 32)
        #expect(Markup.count("= no data</title>", in: Self.html) == 32)
    }

    @Test func linesBarsAndHighlights() {
        // Dashed series: 2 + 1 curves, each also with a dashed legend sample.
        #expect(Markup.count("class=\"series dashed\"", in: Self.html) == 2 * (2 + 1))
        // 8 of the 32 JS-divergence bars are highlighted, and the legend says so.
        #expect(Markup.count("fill=\"#e8590c\"><title>", in: Self.html) == 8)
        #expect(Self.html.contains(">highlighted (8 of 32)</text>"))
        // Expert paths are long labels: horizontal bars, each with its value printed.
        #expect(Self.html.contains(">0→0→1</text>"))
        #expect(Self.html.contains("class=\"vl\">200</text>"))
    }

    @Test func escapesTextFromPlugins() {
        let html = Self.html
        #expect(!html.contains("<script"))
        #expect(!html.contains(ReportFixtures.hostile))
        #expect(html.contains("Expert load &lt;script&gt;&amp;&quot;&#39;x"))
        #expect(html.contains("<li>every slot counts &lt;script&gt;&amp;&quot;&#39;x</li>"))
        // Hostile section ids are made valid and unique; fixed ids cannot be taken.
        let report = { (name: String) in AnalyzerReport(analyzer: name, title: name, json: [:]) }
        let odd = HTMLReport.render(
            AnalysisResult(
                reports: [report("a b\"<"), report("summary"), report("x"), report("x"), report("")],
                failures: [],
                statistics: .init()
            )
        )
        for id in ["a-b--", "summary-2", "x", "x-2", "section"] {
            #expect(odd.contains("<section id=\"\(id)\" class=\"analyzer\">"), "missing id \(id)")
        }
        #expect(odd.contains("<h2>a b&quot;&lt;<span class=\"name\">a b&quot;&lt;</span></h2>"))
    }

    @Test func loadsNothingFromTheNetwork() throws {
        let html = Self.html
        let urls = try Regex("https?://[^\"' )<>]*")
        for match in html.matches(of: urls) {
            #expect(html[match.range] == "http://www.w3.org/2000/svg")
        }
        #expect(!html.contains(" src="))
        #expect(!html.contains("@import"))
        #expect(!html.contains("url(http"))
        // Links are to sections of the page; images (very large heatmaps only) are inline data.
        let hrefs = try Regex("href=\"([^\"]*)\"")
        for match in html.matches(of: hrefs) {
            let href = html[match.range]
            #expect(href.hasPrefix("href=\"#") || href.hasPrefix("href=\"data:image/png;base64,"))
        }
    }

    @Test func isDeterministic() {
        let again = HTMLReport.render(
            ReportFixtures.mixtralSized(),
            title: "Synthetic <report>",
            subtitle: "32 layers & 8 experts"
        )
        #expect(Array(again.utf8) == Array(Self.html.utf8))
    }

    @Test func mixtralSizedReportIsCompact() throws {
        let bytes = Self.html.utf8.count
        print("report size for 32 layers x 8 experts: \(bytes) bytes, \(Markup.svgFragments(Self.html).count) svgs")
        #expect(bytes < 2_000_000)
        #expect(!Self.html.contains(" style="))
        // Coordinates carry at most one decimal.
        let keys = ["x", "y", "width", "height", "cx", "cy", "r", "x1", "y1", "x2", "y2"]
        for svg in Markup.svgFragments(Self.html) {
            guard case .success(let elements) = Markup.parse(svg) else { continue }
            for e in elements {
                let numbers =
                    keys.compactMap { e.attributes[$0] }
                    + (e.attributes["points"] ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
                for n in numbers {
                    #expect(
                        (n.split(separator: ".").dropFirst().first?.count ?? 0) <= 1,
                        "\(e.name) has coordinate \(n)"
                    )
                }
            }
        }
    }

    @Test func emptyResultStillRenders() {
        let html = HTMLReport.render(AnalysisResult(reports: [], failures: [], statistics: .init()))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("No analyzer reported headline figures."))
        #expect(!html.contains("id=\"failures\""))
        #expect(Markup.svgFragments(html).isEmpty)
        #expect(html.contains("<title>MoE routing report</title>"))
    }

    @Test func intervalsAndReferenceMarkersReachThePageWithTheirStyles() throws {
        let figures: [ReportFigure] = [
            .lines(
                .init(
                    title: "accuracy",
                    xLabel: "layer",
                    yLabel: "accuracy",
                    x: [0, 1, 2],
                    series: [
                        .init(name: "acc", values: [0.2, 0.3, 0.25], lower: [0.1, 0.2, 0.2], upper: [0.3, 0.4, 0.3])
                    ]
                )
            ),
            .bars(
                .init(
                    title: "js",
                    xLabel: "layer",
                    yLabel: "bits",
                    labels: ["0", "1"],
                    values: [0.1, 0.2],
                    lower: [0.05, 0.1],
                    upper: [0.2, 0.3],
                    reference: [0.15, 0.15],
                    referenceLabel: "null <95th>"
                )
            ),
        ]
        let result = AnalysisResult(
            reports: [AnalyzerReport(analyzer: "t", title: "T", json: [:], figures: figures)],
            failures: [],
            statistics: .init()
        )
        let html = HTMLReport.render(result)
        #expect(Markup.count("<polygon ", in: html) == 1)
        #expect(Markup.count("class=\"err\"", in: html) == 2 * 3)
        #expect(Markup.count("class=\"ref\"", in: html) == 2 + 1)
        #expect(html.contains(">null &lt;95th&gt;</text>"))
        for rule in ["svg.chart .band{", "svg.chart .err{", "svg.chart .ref{"] {
            #expect(html.contains(rule), "\(rule)")
        }
        for svg in Markup.svgFragments(html) {
            if case .failure(let error) = Markup.parse(svg) { Issue.record("\(error)") }
        }
        #expect(HTMLReport.svg(for: figures[1]).contains("svg.chart .ref{"))
    }

    @Test func standaloneSVGOfAFigure() {
        let figure = ReportFigure.lines(
            .init(title: "t", xLabel: "x", yLabel: "y", x: [0, 1], series: [.init(name: "s", values: [1, 2])])
        )
        let svg = HTMLReport.svg(for: figure)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.contains("<style>"))
        if case .failure(let error) = Markup.parse(svg) { Issue.record("standalone svg does not parse: \(error)") }
    }
}
