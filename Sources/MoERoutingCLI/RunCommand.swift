// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingPipeline

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
                minute. --arch qwen3-moe (qwen2-moe, olmoe, deepseek-v2, deepseek-v3, gpt-oss) \
                runs a tiny model of that architecture instead (models/tiny-<arch>).

                Ctrl-C (SIGINT) or SIGTERM: the engine step in flight finishes and no other \
                starts; the unfinished problems are aborted (their routing so far is kept, and \
                the report names them as partial); the trace is closed marked interrupted; \
                run.json ("interrupted") and the report (banner "interrupted after N of M \
                problems") are written for what was captured; the exit code is 130 (143 after \
                SIGTERM). A second signal quits at once: the trace then stays readable up to \
                its last complete chunk (`moe-routing inspect` says it was cut off).

                Examples:
                  moe-routing run
                  moe-routing run --arch deepseek-v3 --output out/deepseek
                  moe-routing run --dataset humaneval=../shared/data/humaneval.jsonl \\
                      --num-problems 16 --max-tokens 128 --output out/humaneval
                  moe-routing run --model /models/Mixtral-8x7B-v0.1-AWQ --quantization awq --device cuda \\
                      --dataset humaneval=../shared/data/humaneval.jsonl --dataset gsm8k ...
                """
        )

        @OptionGroup var capture: CaptureCommandOptions

        @Option(help: ArgumentHelp("Directory for the trace, outputs and report.", valueName: "dir"))
        var output: String = "out/run"

        @Option(parsing: .upToNextOption, help: "Analyzers to run (default: summary transition multihop domain).")
        var analyzer: [String] = []

        @Option(help: ArgumentHelp("A plugin shared library to load (repeatable).", valueName: "lib.so"))
        var plugin: [String] = []

        @Option(help: "Output format on standard output: text, json or markdown.")
        var format: OutputFormat = .text

        @Option(help: "Seed for shuffled nulls, permutation tests and bootstraps.")
        var analysisSeed: UInt64 = 0x5EED

        @Flag(help: "Also write the routing as seed-format JSONL (trace.jsonl).")
        var jsonl = false

        @OptionGroup var multihopPairs: PairsOption

        func run() throws {
            let instances = try BuiltinAnalyzers.make(
                analyzer.isEmpty ? ["summary"] + BuiltinAnalyzers.defaultNames : analyzer,
                plugins: plugin,
                multihopPairs: try multihopPairs.layerPairs()
            )
            let run: CaptureRun
            do {
                run = try capture.job(label: "run").run(
                    in: output,
                    analyzers: instances,
                    analysisSeed: analysisSeed,
                    jsonl: jsonl
                )
            } catch let failure as CaptureFailure {
                Console.warn(
                    "trace so far: \(failure.files.trace) (\(failure.traceTotals)); analyze it with `moe-routing analyze \(failure.files.trace)`"
                )
                try CaptureExit.fail(failure.error)
            }
            try emit(run.result, format: format, output: output)
            Console.warn("trace: \(run.files.trace) (\(run.outcome.traceTotals)); outputs: \(run.files.outputs)")
            if let stop = run.interruption { Console.warn(stop.notice) }
            try CaptureExit.exitIfInterrupted(run.outcome)
            if !run.result.failures.isEmpty { throw ExitCode(3) }
        }
    }
}
