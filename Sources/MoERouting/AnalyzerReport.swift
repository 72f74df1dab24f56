// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// What an analyzer hands back from ``RoutingAnalyzer/finish()``: a stable JSON payload, tables
/// for the text and Markdown renderings, figures for the HTML report, and notes.
///
/// The JSON payload is the interface users and scripts read (`moe-routing analyze --format json`
/// prints one object keyed by analyzer name, each value a report's ``json``). Tables show the
/// same figures for people.
///
/// ```swift
/// AnalyzerReport(
///     analyzer: "counter", title: "Token counter",
///     json: ["tokens": 42],
///     tables: [ReportTable(title: "Counts", columns: ["what", "n"], rows: [["tokens", "42"]])]
/// )
/// ```
public struct AnalyzerReport: Sendable, Equatable {
    /// The analyzer's registry name (the key in the combined JSON).
    public var analyzer: String
    /// A human title for the report's section.
    public var title: String
    /// The machine-readable result.
    public var json: ReportValue
    /// Tables for the text and Markdown renderings.
    public var tables: [ReportTable]
    /// Figures (heatmaps, line and bar charts) for the HTML report.
    public var figures: [ReportFigure]
    /// Headline figures for a report's summary table, each beside its chance value or baseline.
    public var headlines: [Headline]
    /// Free-text remarks: caveats, skipped data, how to read a figure.
    public var notes: [String]

    /// A headline figure with what it should be compared against.
    public struct Headline: Sendable, Equatable {
        /// What is measured, for example "top-1 same id, next layer".
        public var label: String
        /// The measured value, formatted.
        public var value: String
        /// What to compare it with, formatted, for example "chance 0.125".
        public var reference: String
        public init(label: String, value: String, reference: String) {
            self.label = label
            self.value = value
            self.reference = reference
        }
    }

    /// Creates a report.
    public init(
        analyzer: String,
        title: String,
        json: ReportValue,
        tables: [ReportTable] = [],
        figures: [ReportFigure] = [],
        headlines: [Headline] = [],
        notes: [String] = []
    ) {
        self.analyzer = analyzer
        self.title = title
        self.json = json
        self.tables = tables
        self.figures = figures
        self.headlines = headlines
        self.notes = notes
    }

    // MARK: - Renderings

    /// Plain text: title, headlines, tables and notes, aligned in columns.
    public func renderText() -> String {
        var out = "== \(title) [\(analyzer)] ==\n"
        if !headlines.isEmpty {
            out += ReportTable(
                title: "Headlines",
                columns: ["figure", "value", "compare with"],
                rows: headlines.map { [$0.label, $0.value, $0.reference] }
            ).renderText()
        }
        for t in tables { out += "\n" + t.renderText() }
        for n in notes { out += "\nnote: \(n)" }
        if !notes.isEmpty { out += "\n" }
        return out
    }

    /// GitHub-flavoured Markdown: a `##` heading, then tables and notes.
    public func renderMarkdown() -> String {
        var out = "## \(title)\n\n"
        if !headlines.isEmpty {
            out +=
                ReportTable(
                    title: "Headlines",
                    columns: ["figure", "value", "compare with"],
                    rows: headlines.map { [$0.label, $0.value, $0.reference] }
                ).renderMarkdown() + "\n"
        }
        for t in tables { out += t.renderMarkdown() + "\n" }
        for n in notes { out += "> \(n)\n\n" }
        return out
    }
}

/// A table of formatted cells, rendered as aligned text or Markdown.
public struct ReportTable: Sendable, Equatable {
    /// Caption.
    public var title: String
    /// Column headings.
    public var columns: [String]
    /// Rows of cells; each row has one cell per column.
    public var rows: [[String]]

    /// Creates a table.
    public init(title: String, columns: [String], rows: [[String]]) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }

    /// Aligned plain text with a caption line.
    public func renderText() -> String {
        var widths = columns.map(\.count)
        for r in rows {
            for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let w = i < widths.count ? widths[i] : c.count
                return c + String(repeating: " ", count: max(0, w - c.count))
            }.joined(separator: "  ").trailingSpacesTrimmed + "\n"
        }
        var out = "\(title)\n" + line(columns)
        out += line(widths.map { String(repeating: "-", count: $0) })
        for r in rows { out += line(r) }
        return out
    }

    /// A Markdown table with a bold caption line.
    public func renderMarkdown() -> String {
        func esc(_ s: String) -> String { s.replacingAll("|", with: "\\|") }
        var out = "**\(title)**\n\n"
        out += "| " + columns.map(esc).joined(separator: " | ") + " |\n"
        out += "|" + columns.map { _ in "---|" }.joined() + "\n"
        for r in rows { out += "| " + r.map(esc).joined(separator: " | ") + " |\n" }
        return out
    }
}

/// A figure an analyzer contributes to the HTML report. The data is what the chart draws; the
/// report module decides how.
public enum ReportFigure: Sendable, Equatable {
    /// A matrix drawn as a heatmap with a colour legend.
    case heatmap(Heatmap)
    /// Curves against a shared x axis, for example rates against hop distance.
    case lines(LineChart)
    /// Labelled bars, for example the most frequent expert paths.
    case bars(BarChart)

    /// A heatmap: `values[row][column]`. A NaN cell means *no data* (for example a source expert
    /// that was never selected, or a masked diagonal): the report draws it apart from every
    /// value, and the JSON behind it should say `null`.
    public struct Heatmap: Sendable, Equatable {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var rowLabels: [String]
        public var columnLabels: [String]
        public var values: [[Double]]
        public init(
            title: String,
            xLabel: String,
            yLabel: String,
            rowLabels: [String],
            columnLabels: [String],
            values: [[Double]]
        ) {
            self.title = title
            self.xLabel = xLabel
            self.yLabel = yLabel
            self.rowLabels = rowLabels
            self.columnLabels = columnLabels
            self.values = values
        }
    }

    /// One named curve; `dashed` marks reference lines such as chance. `lower` and `upper`, when
    /// given, bound an interval around each value (a confidence interval, a spread over folds),
    /// drawn as a band or error bars; NaN at a point means no interval there.
    public struct Series: Sendable, Equatable {
        public var name: String
        public var values: [Double]
        public var dashed: Bool
        public var lower: [Double]?
        public var upper: [Double]?
        public init(
            name: String,
            values: [Double],
            dashed: Bool = false,
            lower: [Double]? = nil,
            upper: [Double]? = nil
        ) {
            self.name = name
            self.values = values
            self.dashed = dashed
            self.lower = lower
            self.upper = upper
        }
    }

    /// Curves over shared x values.
    public struct LineChart: Sendable, Equatable {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var x: [Double]
        public var series: [Series]
        public init(title: String, xLabel: String, yLabel: String, x: [Double], series: [Series]) {
            self.title = title
            self.xLabel = xLabel
            self.yLabel = yLabel
            self.x = x
            self.series = series
        }
    }

    /// Labelled bars; `highlighted` marks bars to emphasise (for example significant layers).
    /// `lower`/`upper`, when given, are an interval per bar (error bars; NaN: none). `reference`,
    /// when given, is a value to compare each bar with (an expected count under independence, a
    /// null mean), drawn as a marker on the bar and named by `referenceLabel` in the legend.
    public struct BarChart: Sendable, Equatable {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var labels: [String]
        public var values: [Double]
        public var highlighted: [Bool]
        public var lower: [Double]?
        public var upper: [Double]?
        public var reference: [Double]?
        public var referenceLabel: String?
        public init(
            title: String,
            xLabel: String,
            yLabel: String,
            labels: [String],
            values: [Double],
            highlighted: [Bool] = [],
            lower: [Double]? = nil,
            upper: [Double]? = nil,
            reference: [Double]? = nil,
            referenceLabel: String? = nil
        ) {
            self.title = title
            self.xLabel = xLabel
            self.yLabel = yLabel
            self.labels = labels
            self.values = values
            self.highlighted = highlighted
            self.lower = lower
            self.upper = upper
            self.reference = reference
            self.referenceLabel = referenceLabel
        }
    }
}

extension String {
    fileprivate var trailingSpacesTrimmed: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
