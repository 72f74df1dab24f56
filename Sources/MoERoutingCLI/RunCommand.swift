// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import VLLMCapture

extension MoERoutingCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Collect routing with vLLM in this process and analyze it live; write the trace and a report.",
            discussion: """
                The main job: `collect` and `analyze` in one process. Every finished problem's \
                routing reaches the analyzers while generation goes on. Writes into --output: \
                the trace (trace.moetrace), the generated outputs (outputs.jsonl), and at the end \
                the report (report.html, report.json, report.md, report.txt) and run.json; with \
                --jsonl also trace.jsonl, with --timing also timings.jsonl. With no arguments it \
                generates the tiny Mixtral-architecture model (models/tiny-mixtral) and runs it \
                on four HumanEval and four GSM8K prompts: the whole pipeline on a CPU in about a \
                minute.

                Ctrl-C (SIGINT) or SIGTERM: the engine step in flight finishes and no other \
                starts; the unfinished problems are aborted (their routing so far is kept, and \
                the report names them as partial); the trace is closed marked interrupted; \
                run.json ("interrupted") and the report (banner "interrupted after N of M \
                problems") are written for what was captured; the exit code is 130 (143 after \
                SIGTERM). A second signal quits at once: the trace then stays readable up to \
                its last complete chunk (`moe-routing inspect` says it was cut off).

                Examples:
                  moe-routing run
                  moe-routing run --dataset humaneval=../shared/data/humaneval.jsonl \\
                      --num-problems 16 --max-tokens 128 --output out/humaneval
                  moe-routing run --model /models/Mixtral-8x7B-v0.1-AWQ --quantization awq --device cuda \\
                      --dataset humaneval=../shared/data/humaneval.jsonl --dataset gsm8k ...
                """
        )

        @OptionGroup var capture: CaptureCommandOptions

        @Option(help: ArgumentHelp("Directory for the trace, outputs and report.", valueName: "dir"))
        var output: String = "out/run"

        @Option(name: .customLong("analyzer"), parsing: .upToNextOption,
                help: "Analyzers to run (default: summary transition multihop domain).")
        var analyzers: [String] = []

        @Option(name: .customLong("plugin"), help: ArgumentHelp("A plugin shared library to load (repeatable).", valueName: "lib.so"))
        var plugins: [String] = []

        @Option(help: "Output format on standard output: text, json or markdown.")
        var format: OutputFormat = .text

        @Option(name: .customLong("analysis-seed"), help: "Seed for shuffled nulls, permutation tests and bootstraps.")
        var analysisSeed: UInt64 = 0x5EED

        @Flag(help: "Also write the routing as seed-format JSONL (trace.jsonl).")
        var jsonl = false

        func run() throws {
            let registry = try BuiltinAnalyzers.registry(plugins: plugins)
            let names = analyzers.isEmpty ? ["summary"] + BuiltinAnalyzers.defaultNames : analyzers
            let instances = try names.map { try registry.make($0) }
            let paths = CapturePaths(directory: output)
            let job = try CaptureJob(options: capture, label: "run")
            let outcome = try job.execute(
                paths: paths, jsonl: jsonl, analyzers: instances, analysisSeed: analysisSeed,
                alsoWrites: ReportFiles.paths(in: output))
            if outcome.error != nil {
                Console.warn("trace so far: \(paths.trace) (\(outcome.traceTotals)); analyze it with `moe-routing analyze \(paths.trace)`")
                try outcome.rethrow()
            }
            var (reports, failures) = outcome.analyzers.finishAll()
            if let summary = outcome.summary, let capture = CaptureReport.make(summary) { reports.append(capture) }
            for f in failures { Console.warn("\(f)") }
            let s = outcome.statistics
            var runInfo: [ReportValue.Member] = [
                .init("inputs", .array([.string(paths.trace)])),
                .init("trace", .string(paths.trace)),
                .init("outputs", .string(paths.outputs)),
                .init("shape", ["layers": .int(outcome.shape.layers), "experts": .int(outcome.shape.experts), "top_k": .int(outcome.shape.topK)]),
                .init("settings", .object(outcome.settings.keys.sorted().map { .init($0, .string(outcome.settings[$0] ?? "")) })),
                .init("analysis_seed", .integer(analysisSeed)),
            ]
            if let summary = outcome.summary { runInfo.append(.init("capture", summary.reportValue)) }
            var stop = outcome.interruption
            stop?.keptIn = "the trace and the analyses"
            if let stop { runInfo.append(.init("interrupted", stop.reportValue)) }
            runInfo.append(.init("tokens", .int(s.tokens)))
            runInfo.append(.init("records", .int(s.records)))
            runInfo.append(.init("complete_journeys", .int(s.completeJourneys)))
            runInfo.append(.init("incomplete_journeys", .int(s.incompleteJourneys)))
            runInfo.append(.init("failures", .array(failures.map { ["analyzer": .string($0.analyzer), "stage": .string($0.stage), "message": .string($0.message)] })))
            let result = AnalysisResult(
                reports: reports, failures: failures, statistics: s, run: .object(runInfo),
                notices: stop.map { [$0.notice] } ?? [])
            try emit(result, format: format, output: output)
            Console.warn("trace: \(paths.trace) (\(outcome.traceTotals)); outputs: \(paths.outputs)")
            if let stop { Console.warn(stop.notice) }
            try outcome.exitIfInterrupted()
            if !failures.isEmpty { throw ExitCode(3) }
        }
    }
}
