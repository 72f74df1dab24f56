// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingPipeline
import MoERoutingTraces
import VLLMCapture

extension MoERoutingCommand {
    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run vLLM in this process on a dataset and write every routing decision to a trace.",
            discussion: """
                vLLM runs inside moe-routing on the embedded Python (the venv made by `moe-routing \
                setup`); a hook on its MoE router hands every routing decision to Swift while the \
                problems, all submitted together, are generated. Writes the binary trace (--output), \
                the generated outputs beside it (<trace>.outputs.jsonl), the run's counts, dropped \
                rows, unrouted positions, timing shares and router-logit statistics \
                (<trace>.capture.json), with --jsonl a seed-format JSONL trace (<trace>.jsonl), and \
                with --timing per-step routing and MoE-layer times (<trace>.timings.jsonl). With no --model, the tiny Mixtral-architecture model is \
                generated under models/tiny-mixtral; with no --dataset, four built-in HumanEval and \
                four GSM8K prompts are used. Ctrl-C (SIGINT) or SIGTERM stops after the engine \
                step in flight: the trace is closed marked interrupted (unfinished problems' \
                routing so far kept), <trace>.capture.json says "interrupted", and the exit code \
                is 130 (143 after SIGTERM); a second signal quits at once, leaving the trace \
                readable up to its last complete chunk.

                Examples:
                  moe-routing collect --output out/tiny.moetrace
                  moe-routing collect --model /models/Mixtral-8x7B-v0.1-AWQ --quantization awq \\
                      --dataset humaneval=../shared/data/humaneval.jsonl \\
                      --num-problems 20 --output out/humaneval.moetrace --jsonl
                """
        )

        @OptionGroup var capture: CaptureCommandOptions

        @Option(help: ArgumentHelp("The binary trace to write (.moetrace).", valueName: "path"))
        var output: String = "out/collect/trace.moetrace"

        @Flag(help: "Also write the routing as seed-format JSONL (<trace without extension>.jsonl).")
        var jsonl = false

        func run() throws {
            let files = CaptureFiles(trace: output)
            let outcome = try capture.job(label: "collect").capture(
                to: files,
                jsonl: jsonl,
                analyzers: [],
                alsoWrites: [files.summary]
            )
            if let facts = CaptureJob.collectFacts(outcome, files: files) {
                if let stop = outcome.interruption { Console.warn(stop.notice) }
                try AtomicOutputFile.write(Array((facts.jsonString(indent: 2) + "\n").utf8), to: files.summary)
                Console.warn("summary: \(files.summary)")
            }
            Console.warn("trace: \(files.trace) (\(outcome.traceTotals))")
            Console.warn("outputs: \(files.outputs)")
            if jsonl { Console.warn("jsonl: \(files.jsonl)") }
            if capture.timing { Console.warn("timings: \(files.timings)") }
            if let error = outcome.error { try CaptureExit.fail(error) }
            try CaptureExit.exitIfInterrupted(outcome)
        }
    }
}
