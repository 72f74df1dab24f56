// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Everything one analysis run produced: each analyzer's report, the analyzers that failed, and
/// what went through the stream. Renders the combined JSON, text and Markdown outputs.
///
/// ```swift
/// let result = AnalysisResult(reports: reports, failures: failures, statistics: stats)
/// print(result.json.jsonString(indent: 2))   // {"transition": {...}, "multihop": {...}}
/// ```
public struct AnalysisResult: Sendable, Equatable {
    /// Reports in the order the analyzers were given.
    public var reports: [AnalyzerReport]
    /// Analyzers dropped during the run.
    public var failures: [AnalyzerFailure]
    /// Stream counts.
    public var statistics: StreamStatistics
    /// Free-form facts about the run (inputs, shape, seed, skipped records), for `run.json`.
    public var run: ReportValue
    /// Warnings a reader of the report must see before any figure, one sentence each: the run was
    /// interrupted, bad records were skipped, bytes were lost. Every rendering shows them first
    /// (a banner in HTML, a quoted block in Markdown, `NOTICE:` lines in text); the structured
    /// facts behind them belong in ``run``.
    public var notices: [String]

    public init(
        reports: [AnalyzerReport],
        failures: [AnalyzerFailure],
        statistics: StreamStatistics,
        run: ReportValue = [:],
        notices: [String] = []
    ) {
        self.reports = reports
        self.failures = failures
        self.statistics = statistics
        self.run = run
        self.notices = notices
    }

    /// One object keyed by analyzer name: the stable interface of `--format json`.
    public var json: ReportValue { .object(reports.map { .init($0.analyzer, $0.json) }) }

    /// Every analyzer's text rendering, one after another, then failures.
    public func renderText() -> String {
        var parts = reports.map { $0.renderText() }
        if !notices.isEmpty { parts.insert(notices.map { "NOTICE: \($0)" }.joined(separator: "\n") + "\n", at: 0) }
        if !failures.isEmpty { parts.append(failures.map { "FAILED: \($0)" }.joined(separator: "\n") + "\n") }
        return parts.joined(separator: "\n")
    }

    /// A Markdown document: a summary table of every analyzer's headlines, then each report.
    public func renderMarkdown(title: String = "MoE routing report") -> String {
        var out = "# \(title)\n\n"
        for notice in notices { out += "> **Notice:** \(notice)\n\n" }
        out +=
            "\(statistics.tokens) tokens, \(statistics.records) token-layer records, \(statistics.incompleteJourneys) incomplete journeys.\n\n"
        let headlines = reports.flatMap { r in r.headlines.map { [r.analyzer, $0.label, $0.value, $0.reference] } }
        if !headlines.isEmpty {
            out +=
                ReportTable(
                    title: "Summary",
                    columns: ["analyzer", "figure", "value", "compare with"],
                    rows: headlines
                ).renderMarkdown() + "\n"
        }
        for r in reports { out += r.renderMarkdown() }
        for f in failures { out += "> **Failed:** \(f)\n\n" }
        return out
    }
}
