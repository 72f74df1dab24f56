// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation
import PythonRuntime

/// How the in-process vLLM engine is started and how it decodes.
///
/// Defaults suit profiling: eager mode (the hook's cheapest path; under vLLM's graph compilation
/// routing arrives through a custom op instead, see ``enforceEager``), prefix caching off (cached prompt tokens are never routed), greedy decoding, 256 new tokens.
///
/// ```swift
/// var config = EngineConfiguration(model: "models/tiny-mixtral")
/// config.dtype = "float32"
/// config.maxTokens = 64
/// ```
public struct EngineConfiguration: Sendable, Hashable {
    /// A model directory or a hub name.
    public var model: String
    /// `auto`, `float32`, `bfloat16`, `float16`.
    public var dtype: String = "auto"
    /// A quantization method (`awq`, `fp8`, ...), or `nil`.
    public var quantization: String?
    /// A tokenizer other than the model's, or `nil`.
    public var tokenizer: String?
    /// The longest sequence (prompt plus generated tokens). `nil` (the default): the smaller of
    /// the model's own limit (vLLM's rule: the smallest length key of its config.json) and what
    /// the prompts need (the longest prompt plus ``maxTokens``), when the engine is given the
    /// prompts, else the model's limit. A value over the model's limit is refused before vLLM starts.
    public var maxModelLength: Int?
    /// The most sequences decoded at once.
    public var maxConcurrentSequences: Int = 16
    /// The most tokens one engine step may process (smaller values split long prompts into
    /// chunks when chunked prefill is on); `nil` takes vLLM's default.
    public var maxBatchedTokens: Int?
    /// Chunked prefill on or off; `nil` takes vLLM's default.
    public var chunkedPrefill: Bool?
    /// Prefix caching (off by default: cached prompt tokens are never routed).
    public var prefixCaching: Bool = false
    /// Eager mode (on by default). Off, vLLM compiles the model and the hook works through a
    /// custom op registered before the engine is built (no per-layer timing then; on a GPU, CUDA
    /// graphs are turned off so that the op runs on every step).
    public var enforceEager: Bool = true
    /// `cpu`, `cuda`, or `nil` for vLLM's choice.
    public var device: String?
    /// The engine's seed; sampled decoding also seeds request `i` with `seed + i`.
    public var seed: Int = 0
    /// KV-cache size in GiB on the CPU (`VLLM_CPU_KVCACHE_SPACE`); `nil`: 1 GiB unless the
    /// variable is set.
    public var kvCacheGiB: Double?
    /// Fraction of GPU memory vLLM may use; `nil` takes vLLM's default.
    public var gpuMemoryUtilization: Double?
    /// Let the model's own Python code run (some hub models need it).
    public var trustRemoteCode: Bool = false
    /// New tokens per request.
    public var maxTokens: Int = 256
    /// 0 for greedy decoding; above 0, sampled with this temperature.
    public var temperature: Double = 0
    /// Nucleus sampling's p when sampling.
    public var topP: Double = 1
    /// Keep generating after the end-of-sequence token (fixed-length runs).
    public var ignoreEOS: Bool = false

    /// A configuration for `model` with the defaults.
    public init(model: String) {
        self.model = model
    }

    /// Checks the numbers.
    ///
    /// - Throws: ``CaptureError/invalidOption(_:)`` naming the option and its allowed range.
    public func validate() throws {
        func bad(_ m: String) -> CaptureError { .invalidOption(m) }
        guard !model.isEmpty else { throw bad("--model must not be empty") }
        guard maxTokens >= 1 else { throw bad("--max-tokens must be a positive integer, got \(maxTokens)") }
        guard maxConcurrentSequences >= 1 else {
            throw bad("--max-num-seqs must be a positive integer, got \(maxConcurrentSequences)")
        }
        if let m = maxModelLength, m < 2 { throw bad("--max-model-len must be an integer of 2 or more, got \(m)") }
        if let m = maxBatchedTokens, m < 1 {
            throw bad("--max-num-batched-tokens must be a positive integer, got \(m)")
        }
        guard temperature >= 0, temperature.isFinite else {
            throw bad("--temperature must be 0 or more, got \(temperature)")
        }
        guard topP > 0, topP <= 1 else { throw bad("--top-p must be within (0, 1], got \(topP)") }
        if let k = kvCacheGiB, !(k > 0) { throw bad("--kv-cache-gib must be above 0, got \(k)") }
        if let g = gpuMemoryUtilization, !(g > 0 && g <= 1) {
            throw bad("--gpu-memory-utilization must be within (0, 1], got \(g)")
        }
    }

    /// Why `model` cannot be loaded here, said before vLLM starts (one line naming the value and
    /// the fix), or `nil` when it can: a directory, or a Hugging Face repo id (`org/name`)
    /// already in the local hub cache. moe-routing never downloads models: a repo id that is
    /// not cached is refused, and so is a path that does not exist.
    ///
    /// ```swift
    /// EngineConfiguration.modelLocationProblem("./does-not-exist")
    /// // "--model ./does-not-exist: no such directory (/work/does-not-exist); give the directory holding the model's config.json"
    /// ```
    public static func modelLocationProblem(
        _ model: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        let fm = FileManager.default
        let expanded = (model as NSString).expandingTildeInPath
        let absolute = URL(fileURLWithPath: expanded).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: expanded, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return nil }
            return
                "--model \(model): \(absolute) is a file, not a model directory; give the directory holding the model's config.json"
        }
        let pathLike =
            model.hasPrefix("/") || model.hasPrefix("./") || model.hasPrefix("../") || model.hasPrefix("~")
            || model == "." || model == ".."
        let parts = model.split(separator: "/", omittingEmptySubsequences: false)
        let repoLike =
            !pathLike && parts.count == 2
            && parts.allSatisfy { part in
                !part.isEmpty && part.first != "."
                    && part.allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) }
            }
        guard repoLike else {
            return
                "--model \(model): no such directory (\(absolute)); give the directory holding the model's config.json"
        }
        if fm.fileExists(atPath: hubCache(environment) + "/models--" + parts.joined(separator: "--")) { return nil }
        return
            "--model \(model): no such directory (\(absolute)), and as a Hugging Face repo id it is not in the local hub cache; "
            + "downloads from the model hub are off (moe-routing never downloads models): give a local model directory "
            + "(download it first elsewhere, e.g. `huggingface-cli download \(model) --local-dir models/\(parts[1])`)"
    }

    /// The Hugging Face hub cache: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub or
    /// ~/.cache/huggingface/hub.
    static func hubCache(_ environment: [String: String]) -> String {
        if let c = environment["HF_HUB_CACHE"], !c.isEmpty { return c }
        if let h = environment["HF_HOME"], !h.isEmpty { return h + "/hub" }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return x + "/huggingface/hub" }
        return NSHomeDirectory() + "/.cache/huggingface/hub"
    }

    /// The options as `engine.*` strings, for trace headers and reports.
    public var settings: [String: String] {
        var s: [String: String] = [
            "engine.model": model, "engine.dtype": dtype, "engine.max_num_seqs": String(maxConcurrentSequences),
            "engine.prefix_caching": String(prefixCaching), "engine.enforce_eager": String(enforceEager),
            "engine.seed": String(seed), "engine.max_tokens": String(maxTokens),
            "engine.decoding": temperature > 0 ? "sampled(temperature=\(temperature), top_p=\(topP))" : "greedy",
            "engine.ignore_eos": String(ignoreEOS),
        ]
        if let quantization { s["engine.quantization"] = quantization }
        if let tokenizer { s["engine.tokenizer"] = tokenizer }
        if let maxModelLength { s["engine.max_model_len"] = String(maxModelLength) }
        if let maxBatchedTokens { s["engine.max_num_batched_tokens"] = String(maxBatchedTokens) }
        if let chunkedPrefill { s["engine.chunked_prefill"] = String(chunkedPrefill) }
        if let device { s["engine.device"] = device }
        if let kvCacheGiB { s["engine.kv_cache_gib"] = String(kvCacheGiB) }
        return s
    }

    /// Keyword arguments of the Python `EngineOptions`.
    var pythonKeywords: [(String, any PythonConvertible)] {
        [
            ("model", model), ("dtype", dtype), ("quantization", quantization), ("tokenizer", tokenizer),
            ("max_model_len", maxModelLength), ("max_num_seqs", maxConcurrentSequences),
            ("max_num_batched_tokens", maxBatchedTokens), ("enable_chunked_prefill", chunkedPrefill),
            ("enable_prefix_caching", prefixCaching), ("enforce_eager", enforceEager), ("device", device),
            ("seed", seed), ("kv_cache_gib", kvCacheGiB), ("gpu_memory_utilization", gpuMemoryUtilization),
            ("trust_remote_code", trustRemoteCode), ("max_tokens", maxTokens), ("temperature", temperature),
            ("top_p", topP), ("ignore_eos", ignoreEOS),
        ]
    }
}
