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
                to: files, jsonl: jsonl, analyzers: [], alsoWrites: [files.summary])
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

/// Engine, dataset and capture options shared by `collect` and `run`.
struct CaptureCommandOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Model directory, or a Hugging Face repo id already in the local hub cache (nothing is downloaded; default: the tiny model, generated under models/tiny-mixtral when absent).",
        valueName: "path"))
    var model: String?

    @Option(help: ArgumentHelp(
        "Dataset: humaneval or gsm8k (from a local JSONL copy: humaneval=PATH), or jsonl:PATH; repeat for several domains (default: the built-in samples of both).",
        valueName: "name[=path]"))
    var dataset: [String] = []

    @Option(name: .customLong("prompt-field"), help: ArgumentHelp("The prompt field of jsonl:PATH datasets (default: prompt).", valueName: "name"))
    var promptField: String?

    // Numbers are parsed `.unconditional`ly, so that a negative value reaches validate()
    // ("must be a positive integer") instead of reading as an option ("Missing value").
    @Option(name: .customLong("num-problems"), parsing: .unconditional, help: "Problems to take from each dataset, a positive integer (default: all).")
    var numProblems: Int?

    @Option(parsing: .unconditional, help: "Problems to skip at the start of each dataset.")
    var offset: Int = 0

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "New tokens per problem.")
    var maxTokens: Int = 256

    @Option(help: "Model dtype: auto, float32, bfloat16, float16.")
    var dtype: String = "auto"

    @Option(help: "Quantization method (awq, fp8, ...).")
    var quantization: String?

    @Option(help: "A tokenizer other than the model's.")
    var tokenizer: String?

    @Option(name: .customLong("max-model-len"), parsing: .unconditional, help: "Longest sequence, prompt plus new tokens.")
    var maxModelLength: Int = 2048

    @Option(name: .customLong("max-num-seqs"), parsing: .unconditional, help: "Most sequences decoded at once.")
    var maxConcurrentSequences: Int = 16

    @Option(name: .customLong("max-num-batched-tokens"), parsing: .unconditional, help: "Most tokens per engine step (small values chunk long prompts).")
    var maxBatchedTokens: Int?

    @Flag(inversion: .prefixedNo, help: "Chunked prefill (default: vLLM's choice).")
    var chunkedPrefill: Bool?

    @Flag(name: .customLong("prefix-caching"), help: "Turn prefix caching on (cached prompt positions are never routed; the report lists them).")
    var prefixCaching = false

    @Flag(help: "Run under vLLM's graph compilation instead of eager mode (routing arrives through a custom op; slower start-up, no --timing).")
    var compile = false

    @Option(help: "Device: cpu or cuda (default: vLLM's choice).")
    var device: String?

    @Option(parsing: .unconditional, help: "Engine seed; sampled decoding seeds problem i with seed + i.")
    var seed: Int = 0

    @Option(parsing: .unconditional, help: "0 for greedy decoding; above 0, sample with this temperature.")
    var temperature: Double = 0

    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Nucleus sampling's p (with --temperature).")
    var topP: Double = 1

    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past the end-of-sequence token.")
    var ignoreEOS = false

    @Option(name: .customLong("kv-cache-gib"), parsing: .unconditional, help: "CPU KV-cache size in GiB (default 1, or VLLM_CPU_KVCACHE_SPACE).")
    var kvCacheGiB: Double?

    @Option(name: .customLong("gpu-memory-utilization"), parsing: .unconditional, help: "Fraction of GPU memory vLLM may use.")
    var gpuMemoryUtilization: Double?

    @Flag(name: .customLong("trust-remote-code"), help: "Let the model's own Python code run.")
    var trustRemoteCode = false

    @Flag(name: .customLong("router-logits"), help: "Also capture router logits over all experts (entropy and k/k+1 margin per layer in run.json).")
    var routerLogits = false

    @Flag(help: "Time routing and the whole MoE layer per step and layer (kept in the trace, and in <trace>.timings.jsonl; shares in run.json).")
    var timing = false

    @Option(help: ArgumentHelp("The Python venv (default: MOE_ROUTING_VENV, else .venv in the project).", valueName: "path"))
    var venv: String?

    @Flag(help: "Show vLLM's INFO log.")
    var verbose = false

    @Flag(name: .customLong("no-progress"), help: "Print no progress lines.")
    var noProgress = false

    func validate() throws {
        do {
            try job(label: "").validate()
        } catch let error as CaptureError {
            throw ValidationError(error.description)
        }
    }

    /// The capture job these options describe.
    func job(label: String) -> CaptureJob {
        var job = CaptureJob(
            model: model,
            datasets: DatasetSelection(dataset, promptField: promptField, numProblems: numProblems, offset: offset),
            options: CaptureOptions(routerLogits: routerLogits, timing: timing), label: label)
        job.engine.dtype = dtype
        job.engine.quantization = quantization
        job.engine.tokenizer = tokenizer
        job.engine.maxModelLength = maxModelLength
        job.engine.maxConcurrentSequences = maxConcurrentSequences
        job.engine.maxBatchedTokens = maxBatchedTokens
        job.engine.chunkedPrefill = chunkedPrefill
        job.engine.prefixCaching = prefixCaching
        job.engine.enforceEager = !compile
        job.engine.device = device
        job.engine.seed = seed
        job.engine.kvCacheGiB = kvCacheGiB
        job.engine.gpuMemoryUtilization = gpuMemoryUtilization
        job.engine.trustRemoteCode = trustRemoteCode
        job.engine.maxTokens = maxTokens
        job.engine.temperature = temperature
        job.engine.topP = topP
        job.engine.ignoreEOS = ignoreEOS
        job.venv = venv
        job.verbose = verbose
        job.showsProgress = !noProgress
        return job
    }
}
