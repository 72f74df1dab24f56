// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// What `moe-routing run` does, as a library user writes it: start vLLM in this process on the
// tiny model, capture the routing of two problems from each built-in dataset, analyze it live,
// and write the trace, the outputs, the run facts (run.json) and the report.
//
//     swift run capture-and-analyze-example [OUTPUT_DIRECTORY]
//
// The lines between the MARK comments are the README's "Use it as a library" snippet (a test
// checks that they stay the same).

import Foundation
import MoERoutingPipeline
import VLLMCapture

let output = CommandLine.arguments.dropFirst().first ?? "out/capture-and-analyze"

do {
    // MARK: - Use it as a library
    // The tiny model on two of the built-in HumanEval and GSM8K samples each.
    var job = CaptureJob(datasets: DatasetSelection(numProblems: 2))
    job.engine.maxTokens = 16
    let analyzers = try BuiltinAnalyzers.make(["summary", "transition", "multihop", "domain"])
    let run = try job.run(in: output, analyzers: analyzers)  // writes trace.moetrace and outputs.jsonl
    try ReportFiles.write(run.result, to: output)  // report.html, report.json, report.md, report.txt, run.json
    print(OutputFormat.text.render(run.result), terminator: "")
    // MARK: - End of the snippet
    print("trace: \(run.files.trace) (\(run.outcome.traceTotals))")
} catch {
    FileHandle.standardError.write(Data("capture-and-analyze-example: error: \(error)\n".utf8))
    exit(1)
}
