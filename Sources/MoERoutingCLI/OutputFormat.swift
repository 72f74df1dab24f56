// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingReport

/// How a command prints its result on standard output.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

/// Writes the report files of a run into a directory: report.html (one self-contained page with
/// charts), report.json (keyed by analyzer), report.md, report.txt and run.json (inputs, counts,
/// failures).
enum ReportFiles {
    static func write(_ result: AnalysisResult, to directory: String, subtitle: String? = nil) throws -> [String] {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create output directory \(directory): \(error.localizedDescription)")
        }
        var written: [String] = []
        func put(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CLIError("cannot write \(path): \(error.localizedDescription)")
            }
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
