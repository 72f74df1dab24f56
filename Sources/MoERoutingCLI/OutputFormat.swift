// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import ArgumentParser
import MoERouting
public import MoERoutingPipeline

extension OutputFormat: ExpressibleByArgument {}

/// Prints a result in `format` and writes the report files when `output` is set.
func emit(_ result: AnalysisResult, format: OutputFormat, output: String?, subtitle: String? = nil) throws {
    print(format.render(result), terminator: "")
    if let output {
        let files = try ReportFiles.write(result, to: output, subtitle: subtitle)
        Console.warn("wrote \(files.joined(separator: ", "))")
    }
}

/// Standard error, line by line (`moe-routing: LINE`).
enum Console {
    static func warn(_ line: String) { PipelineLog.standardError(line) }
}
