// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERoutingPipeline
import VLLMCapture

/// Engine, dataset and capture options shared by `collect` and `run`.
struct CaptureCommandOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Model directory, or a Hugging Face repo id already in the local hub cache (nothing is downloaded; default: the tiny model, generated under models/tiny-mixtral when absent).",
            valueName: "path"
        )
    )
    var model: String?

    @Option(
        help: ArgumentHelp(
            "Architecture of the tiny default model when no --model is named: mixtral, qwen3-moe, qwen2-moe, olmoe, deepseek-v2, deepseek-v3 or gpt-oss (generated under models/tiny-<arch>; default mixtral).",
            valueName: "arch"
        )
    )
    var arch: String?

    @Option(
        help: ArgumentHelp(
            "Dataset: humaneval or gsm8k (from a local JSONL copy: humaneval=PATH), or jsonl:PATH; repeat for several domains (default: the built-in samples of both).",
            valueName: "name[=path]"
        )
    )
    var dataset: [String] = []

    @Option(help: ArgumentHelp("The prompt field of jsonl:PATH datasets (default: prompt).", valueName: "name"))
    var promptField: String?

    // Numbers are parsed `.unconditional`ly, so that a negative value reaches validate()
    // ("must be a positive integer") instead of reading as an option ("Missing value").
    @Option(parsing: .unconditional, help: "Problems to take from each dataset, a positive integer (default: all).")
    var numProblems: Int?

    @Option(parsing: .unconditional, help: "Problems to skip at the start of each dataset.")
    var offset: Int = 0

    @Option(parsing: .unconditional, help: "New tokens per problem.")
    var maxTokens: Int = 256

    @Option(help: "Model dtype: auto, float32, bfloat16, float16.")
    var dtype: String = "auto"

    @Option(help: "Quantization method (awq, fp8, ...).")
    var quantization: String?

    @Option(help: "A tokenizer other than the model's.")
    var tokenizer: String?

    @Option(
        parsing: .unconditional,
        help:
            "Longest sequence, prompt plus new tokens (default: the longest prompt plus --max-tokens, at most the model's own limit)."
    )
    var maxModelLen: Int?

    @Option(name: .customLong("max-num-seqs"), parsing: .unconditional, help: "Most sequences decoded at once.")
    var maxConcurrentSequences: Int = 16

    @Option(parsing: .unconditional, help: "Most tokens per engine step (small values chunk long prompts).")
    var maxNumBatchedTokens: Int?

    @Flag(inversion: .prefixedNo, help: "Chunked prefill (default: vLLM's choice).")
    var chunkedPrefill: Bool?

    @Flag(help: "Turn prefix caching on (cached prompt positions are never routed; the report lists them).")
    var prefixCaching = false

    @Flag(
        help:
            "Run under vLLM's graph compilation instead of eager mode (routing arrives through a custom op; slower start-up, no --timing)."
    )
    var compile = false

    @Option(help: "Device: cpu or cuda (default: vLLM's choice).")
    var device: String?

    @Option(parsing: .unconditional, help: "Engine seed; sampled decoding seeds problem i with seed + i.")
    var seed: Int = 0

    @Option(parsing: .unconditional, help: "0 for greedy decoding; above 0, sample with this temperature.")
    var temperature: Double = 0

    @Option(parsing: .unconditional, help: "Nucleus sampling's p (with --temperature).")
    var topP: Double = 1

    @Flag(help: "Keep generating past the end-of-sequence token.")
    var ignoreEOS = false

    @Option(
        name: .customLong("kv-cache-gib"),
        parsing: .unconditional,
        help: "CPU KV-cache size in GiB (default 1, or VLLM_CPU_KVCACHE_SPACE)."
    )
    var kvCacheGiB: Double?

    @Option(parsing: .unconditional, help: "Fraction of GPU memory vLLM may use.")
    var gpuMemoryUtilization: Double?

    @Flag(help: "Let the model's own Python code run.")
    var trustRemoteCode = false

    @Flag(help: "Also capture router logits over all experts (entropy and k/k+1 margin per layer in run.json).")
    var routerLogits = false

    @Flag(
        help:
            "Time routing and the whole MoE layer per step and layer (kept in the trace, and in <trace>.timings.jsonl; shares in run.json)."
    )
    var timing = false

    @Option(
        help: ArgumentHelp(
            "The Python venv (default: MOE_ROUTING_VENV, else .venv in the checkout, else the per-user venv).",
            valueName: "path"
        )
    )
    var venv: String?

    @Flag(help: "Show vLLM's INFO log.")
    var verbose = false

    @Flag(help: "Print no progress lines.")
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
            options: CaptureOptions(routerLogits: routerLogits, timing: timing),
            label: label
        )
        job.tinyArchitecture = arch
        job.engine.dtype = dtype
        job.engine.quantization = quantization
        job.engine.tokenizer = tokenizer
        job.engine.maxModelLength = maxModelLen
        job.engine.maxConcurrentSequences = maxConcurrentSequences
        job.engine.maxBatchedTokens = maxNumBatchedTokens
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
