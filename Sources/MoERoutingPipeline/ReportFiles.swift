// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
public import MoERouting
import MoERoutingReport
import MoERoutingTraces

/// How an analysis result is printed: plain text, JSON (keyed by analyzer, as report.json) or
/// Markdown.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// Each report as plain text (report.txt).
    case text
    /// One JSON object keyed by analyzer (report.json).
    case json
    /// Each report as Markdown (report.md).
    case markdown

    /// `result` in this format, ending with a newline.
    ///
    /// ```swift
    /// print(OutputFormat.json.render(result), terminator: "")
    /// ```
    public func render(_ result: AnalysisResult) -> String {
        switch self {
        case .json: return result.reportJSON.jsonString(indent: 2) + "\n"
        case .text: return result.renderText()
        case .markdown: return result.renderMarkdown()
        }
    }
}

extension AnalysisResult {
    /// The JSON output of an analysis (`--format json`, report.json): one member per analyzer,
    /// then, when the run facts carry one, the `input` section (records skipped by reason, bytes
    /// lost, phase, positions; docs/analyzers.md).
    public var reportJSON: ReportValue {
        guard let input = run["input"], var members = json.objectMembers else { return json }
        members.append(.init("input", input))
        return .object(members)
    }
}

/// Writes the report files of a run into a directory: report.html (one self-contained page with
/// charts), report.json (keyed by analyzer), report.md, report.txt and run.json (inputs, counts,
/// failures). Each is written under a temporary name and renamed into place
/// (``AtomicOutputFile``); errors read "cannot write PATH: REASON".
///
/// ```swift
/// let written = try ReportFiles.write(result, to: "out/run")  // the five paths, in order
/// ```
public enum ReportFiles {
    /// The files ``write(_:to:subtitle:)`` writes, in order.
    public static let names = ["report.html", "report.json", "report.md", "report.txt", "run.json"]

    /// The paths of the report files in `directory`, for ``OutputPreflight`` before the work.
    public static func paths(in directory: String) -> [String] {
        names.map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Writes the five files into `directory` (created when missing) and returns their paths;
    /// `subtitle` goes under the HTML report's title (the inputs' names, say).
    @discardableResult
    public static func write(_ result: AnalysisResult, to directory: String, subtitle: String? = nil) throws -> [String]
    {
        try OutputPreflight.prepareDirectory(directory)
        var written: [String] = []
        func put(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try AtomicOutputFile.write(Array(text.utf8), to: path)
            written.append(path)
        }
        try put("report.html", HTMLReport.render(result, title: "MoE routing report", subtitle: subtitle))
        try put("report.json", result.reportJSON.jsonString(indent: 2) + "\n")
        try put("report.md", result.renderMarkdown())
        try put("report.txt", result.renderText())
        try put("run.json", result.run.jsonString(indent: 2) + "\n")
        return written
    }
}
