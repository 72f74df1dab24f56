// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingReport
import MoERoutingTraces

/// How a command prints its result on standard output.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

/// Writes the report files of a run into a directory: report.html (one self-contained page with
/// charts), report.json (keyed by analyzer), report.md, report.txt and run.json (inputs, counts,
/// failures). Each is written under a temporary name and renamed into place
/// (``AtomicOutputFile``); errors read "cannot write PATH: REASON".
enum ReportFiles {
    /// The files ``write(_:to:subtitle:)`` writes, in order.
    static let names = ["report.html", "report.json", "report.md", "report.txt", "run.json"]

    /// The paths of the report files in `directory`, for ``OutputPreflight`` before the work.
    static func paths(in directory: String) -> [String] {
        names.map { (directory as NSString).appendingPathComponent($0) }
    }

    static func write(_ result: AnalysisResult, to directory: String, subtitle: String? = nil) throws -> [String] {
        try OutputPreflight.prepareDirectory(directory)
        var written: [String] = []
        func put(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try AtomicOutputFile.write(Array(text.utf8), to: path)
            written.append(path)
        }
        try put("report.html", HTMLReport.render(result, title: "MoE routing report", subtitle: subtitle))
        try put("report.json", analysisJSON(result).jsonString(indent: 2) + "\n")
        try put("report.md", result.renderMarkdown())
        try put("report.txt", result.renderText())
        try put("run.json", result.run.jsonString(indent: 2) + "\n")
        return written
    }
}

/// Standard error, line by line.
enum Console {
    static func warn(_ line: String) {
        FileHandle.standardError.write(Data(("moe-routing: " + line + "\n").utf8))
    }
}
