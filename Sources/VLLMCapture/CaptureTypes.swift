// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Values a capture run hands out: the engine's description, generated outputs, step timings,
// progress, router-logit statistics and the run summary; and the observer protocol.

import Foundation
public import MoERouting
public import MoERoutingTraces

/// What the started engine says about the model: its routing shape and where routing happens.
public struct EngineDescription: Sendable, Equatable {
    /// MoE layers (L), experts (E), top-k (k); the name is the model directory's base name.
    public var shape: ModelShape
    /// The MoE layers' module names in the model (`model.layers.3.block_sparse_moe.experts`).
    public var layerNames: [String]
    /// The decoder layer number of each MoE layer (trace layer `i` is decoder layer `layerNumbers[i]`).
    public var layerNumbers: [Int]
    /// vLLM's version.
    public var vllmVersion: String
    /// `router` (``FusedMoERouter.select_experts``) or `legacy` (``FusedMoE.select_experts``).
    public var routingAPI: String
    /// The model's architecture (`MixtralForCausalLM`).
    public var architecture: String
    /// The dtype vLLM runs the model in (`float32`, `bfloat16`, ...): with `--dtype auto` vLLM
    /// picks it (on the CPU a float32 model runs in bfloat16).
    public var dtype: String
    /// The dtype asked for (``EngineConfiguration/dtype``, `auto` by default).
    public var requestedDtype: String = "auto"
    /// The longest sequence the engine takes (prompt plus generated tokens).
    public var maxModelLength: Int = 0
    /// Where ``maxModelLength`` came from: `given` (the user's), `prompts` (what the prompts
    /// need, below the model's limit) or `model` (the model's own limit).
    public var maxModelLengthSource: String = "given"
    /// The model's own sequence limit by vLLM's rule, when it could be derived before the start.
    public var modelLengthLimit: Int?
    /// What the captured weights are (score, renormalisation, scale), the shared experts, and
    /// the decoder layer of each trace layer, as vLLM's router for this model says.
    public var routing: RoutingConvention
    /// Seconds spent importing vLLM.
    public var importSeconds: Double
    /// Seconds spent starting the engine (`LLM(...)`).
    public var startSeconds: Double

    /// Settings for trace headers: `capture.*` facts, the routing convention's among them.
    public var settings: [String: String] {
        [
            "engine": "vllm", "capture.vllm_version": vllmVersion, "capture.routing_api": routingAPI,
            "capture.architecture": architecture, "capture.dtype": dtype,
            "capture.layer_numbers": layerNumbers.map(String.init).joined(separator: ","),
            "capture.requested_dtype": requestedDtype,
            "capture.max_model_len": String(maxModelLength),
            "capture.max_model_len_source": maxModelLengthSource,
        ].merging(modelLengthLimit.map { ["capture.model_length_limit": String($0)] } ?? [:]) { a, _ in a }
            .merging(routing.settings) { engine, _ in engine }
    }

    /// One line for standard error: the dtype the engine chose and its max model length, with
    /// where each came from.
    ///
    /// ```swift
    /// description.engineChoices  // "dtype bfloat16 (asked: auto), max model length 300 (what the prompts need; the model allows 2048)"
    /// ```
    public var engineChoices: String {
        let source: String
        switch maxModelLengthSource {
        case "prompts": source = "what the prompts need"
        case "model": source = "the model's own limit"
        default: source = "--max-model-len"
        }
        let limit = modelLengthLimit.map { $0 != maxModelLength ? "; the model allows \($0)" : "" } ?? ""
        return "dtype \(dtype) (asked: \(requestedDtype)), max model length \(maxModelLength) (\(source)\(limit))"
    }
}

/// One request's generated text and tokens.
public struct GenerationOutput: Sendable, Equatable, Codable {
    /// The request's index in the run.
    public var index: Int
    /// The problem it answered.
    public var problem: Problem
    /// The prompt's token ids.
    public var promptTokenIDs: [Int32]
    /// The generated token ids.
    public var tokenIDs: [Int32]
    /// The generated text.
    public var text: String
    /// Why generation stopped: `length`, `stop`, ...
    public var finishReason: String

    /// Creates an output.
    public init(
        index: Int,
        problem: Problem,
        promptTokenIDs: [Int32],
        tokenIDs: [Int32],
        text: String,
        finishReason: String
    ) {
        self.index = index
        self.problem = problem
        self.promptTokenIDs = promptTokenIDs
        self.tokenIDs = tokenIDs
        self.text = text
        self.finishReason = finishReason
    }
}

/// Wall time of routing and of the whole MoE layer, per MoE layer, in one engine step: the
/// record a `.moetrace` keeps in its layer-timings chunks (the MoE layer's time excludes the
/// hook's own work).
public typealias StepTiming = LayerTimingRecord

/// Totals of ``StepTiming`` per layer: the same totals a `.moetrace` reader sums from the trace's
/// layer-timings chunks.
public typealias LayerTimingTotals = TraceTimingTotals

/// Per-layer statistics of the router's full distribution (collected with router logits on):
/// mean entropy of the softmax over all E experts (nats), and mean margin between the k-th and
/// (k+1)-th highest probability.
public struct RouterLogitStatistics: Sendable, Equatable {
    /// Rows counted per layer.
    public var rows: [Int]
    /// Sum of entropies per layer.
    public var entropySum: [Double]
    /// Sum of margins per layer.
    public var marginSum: [Double]

    /// Zero statistics for `layers` layers.
    public init(layers: Int) {
        rows = Array(repeating: 0, count: layers)
        entropySum = Array(repeating: 0, count: layers)
        marginSum = Array(repeating: 0, count: layers)
    }

    /// Adds `count` rows of `experts` logits each for `layer`.
    public mutating func add(layer: Int, logits: UnsafeBufferPointer<Float>, experts: Int, topK: Int) {
        guard layer >= 0, layer < rows.count, experts > 0 else { return }
        let count = logits.count / experts
        var probs = [Double](repeating: 0, count: experts)
        for r in 0..<count {
            let row = UnsafeBufferPointer(rebasing: logits[(r * experts)..<((r + 1) * experts)])
            let m = Double(row.max() ?? 0)
            var z = 0.0
            for e in 0..<experts {
                probs[e] = exp(Double(row[e]) - m)
                z += probs[e]
            }
            var h = 0.0
            for e in 0..<experts {
                probs[e] /= z
                if probs[e] > 0 { h -= probs[e] * log(probs[e]) }
            }
            probs.sort(by: >)
            entropySum[layer] += h
            marginSum[layer] += topK < experts ? probs[topK - 1] - probs[topK] : probs[topK - 1]
            rows[layer] += 1
        }
    }

    /// For reports: per layer mean entropy and margin.
    public var reportValue: ReportValue {
        .array(
            (0..<rows.count).map { l in
                .object([
                    .init("layer", .int(l)),
                    .init("rows", .int(rows[l])),
                    .init("mean_entropy_nats", .double(rows[l] > 0 ? entropySum[l] / Double(rows[l]) : 0)),
                    .init("mean_margin_k_k1", .double(rows[l] > 0 ? marginSum[l] / Double(rows[l]) : 0)),
                ])
            }
        )
    }
}

/// Where a run stands, handed to the observer before every engine step.
public struct CaptureProgress: Sendable, Equatable {
    /// Requests finished.
    public var finished: Int
    /// Requests in the run.
    public var total: Int
    /// Tokens generated so far (fed-back tokens plus each finished request's last one).
    public var generatedTokens: Int
    /// Routing rows (tokens) attributed so far.
    public var routedRows: Int
    /// Seconds since generation began.
    public var seconds: Double
    /// The most tokens the unfinished requests may still generate.
    public var remainingTokenBudget: Int

    /// Creates a progress value.
    public init(
        finished: Int,
        total: Int,
        generatedTokens: Int,
        routedRows: Int,
        seconds: Double,
        remainingTokenBudget: Int
    ) {
        self.finished = finished
        self.total = total
        self.generatedTokens = generatedTokens
        self.routedRows = routedRows
        self.seconds = seconds
        self.remainingTokenBudget = remainingTokenBudget
    }

    /// Generated tokens per second.
    public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }
    /// Routing rows per second.
    public var rowsPerSecond: Double { seconds > 0 ? Double(routedRows) / seconds : 0 }
    /// Seconds left at the current token rate if every request runs to its token limit (an upper
    /// bound: requests that stop early finish sooner); `nil` before any token.
    public var estimatedSecondsLeft: Double? {
        tokensPerSecond > 0 ? Double(remainingTokenBudget) / tokensPerSecond : nil
    }
}

/// What to capture besides ids and weights.
public struct CaptureOptions: Sendable, Equatable {
    /// How a step's layer batches travel to the host.
    public enum Gather: String, Sendable, Equatable {
        /// Per layer on the CPU, per step on any other device.
        case automatic = "auto"
        /// Each layer's batch is handed over during its `select_experts` call (zero-copy on the CPU).
        case perLayer = "layer"
        /// Each layer's batch is copied into device staging tensors, and one host copy per step
        /// feeds every layer after the forward pass (no stream synchronisation per layer on a GPU).
        case perStep = "step"
    }

    /// Also receive the router logits over all E experts (for entropy and margin statistics).
    public var routerLogits: Bool
    /// Time routing and the MoE layer per step and layer (synchronising the device off the CPU).
    public var timing: Bool
    /// How layer batches reach the host.
    public var gather: Gather

    /// Creates options.
    public init(routerLogits: Bool = false, timing: Bool = false, gather: Gather = .automatic) {
        self.routerLogits = routerLogits
        self.timing = timing
        self.gather = gather
    }
}

/// What a finished capture run did.
public struct CaptureSummary: Sendable {
    /// The run's outputs, by request index.
    public var outputs: [GenerationOutput]
    /// What the assembler saw and dropped.
    public var assembly: AssemblyStatistics
    /// The hook's own counters (steps, layer calls, unattributed calls and rows, padding rows).
    public var hook: [String: Int]
    /// Seconds of generation (requests submitted to last finished).
    public var seconds: Double
    /// This process's CPU time over the same span (all threads), in seconds.
    public var cpuSeconds: Double
    /// Prompt tokens over all requests.
    public var promptTokens: Int
    /// Generated tokens over all requests.
    public var generatedTokens: Int
    /// Positions that should have been routed, over all requests.
    public var expectedPositions: Int
    /// Positions not routed (prefix cache hits), per request index with any.
    public var unroutedPositions: [Int: [ClosedRange<Int32>]]
    /// Timing totals, when timing was on.
    public var timing: LayerTimingTotals?
    /// Router-logit statistics, when router logits were on.
    public var routerLogits: RouterLogitStatistics?
    /// Problems the run was given (``outputs`` holds the finished ones).
    public var requested = 0
    /// Whether the run stopped early on request (SIGINT or SIGTERM through
    /// ``CaptureInterruption``, or the observer's `progress`): ``outputs`` holds the problems
    /// that finished, ``partialRequests`` those cut short. The hook's counters (``hook``) are
    /// not available then.
    public var interrupted = false
    /// Requests running when the run stopped whose routing so far was handed to the observer
    /// (their tokens are in the trace, their routing is partial), in request order.
    public var partialRequests: [PartialRequest] = []

    /// A request cut short by an interruption: which problem, and how many tokens were routed.
    public struct PartialRequest: Sendable, Equatable {
        /// `{"domain", "problem_id", "source_id", "tokens"}`, for `run.json`.
        public var reportValue: ReportValue {
            [
                "domain": .string(problem.domain), "problem_id": .int(Int(problem.problemID)),
                "source_id": .string(problem.sourceID), "tokens": .int(tokens),
            ]
        }

        /// The request's index in the run.
        public var index: Int
        /// Its problem.
        public var problem: Problem
        /// Tokens whose routing was captured before the stop.
        public var tokens: Int
    }

    /// Seconds spent in the hook's own work during generation: attribution, handing batches to
    /// Swift, assembling blocks, and everything the observer did (trace writing, live analysis).
    public var hookSeconds: Double { Double(hook["hook_ns"] ?? 0) / 1e9 }

    /// The hook's self-timed cost relative to generation without it: hook time over the rest of
    /// the wall time (0.03 means generation took about 3% longer than it would have without capture).
    public var hookOverhead: Double { seconds > hookSeconds ? hookSeconds / (seconds - hookSeconds) : 0 }

    /// For reports (`run.json`).
    public var reportValue: ReportValue {
        var members: [ReportValue.Member] = [
            .init("requests", .int(outputs.count)),
            .init("seconds", .double(seconds)),
            .init("cpu_seconds", .double(cpuSeconds)),
            .init("hook_seconds", .double(hookSeconds)),
            .init("hook_overhead", .double(hookOverhead)),
            .init("prompt_tokens", .int(promptTokens)),
            .init("generated_tokens", .int(generatedTokens)),
            .init("tokens_per_second", .double(seconds > 0 ? Double(generatedTokens) / seconds : 0)),
            .init("expected_positions", .int(expectedPositions)),
            .init("routed_rows", .int(assembly.rows)),
            .init(
                "dropped_rows",
                .object([
                    .init("unknown_request", .int(assembly.unknownRequestRows)),
                    .init("recomputed", .int(assembly.recomputedRows)),
                    .init("after_finish", .int(assembly.rowsAfterFinish)),
                    .init("unattributed", .int(hook["unattributed_rows"] ?? 0)),
                    .init("padding", .int(hook["padding_rows"] ?? 0)),
                ])
            ),
            .init("incomplete_steps", .int(assembly.incompleteSteps)),
            .init(
                "unrouted_positions",
                .array(
                    unroutedPositions.keys.sorted().map { i in
                        let p = outputs.first { $0.index == i }?.problem
                        return .object([
                            .init("domain", .string(p?.domain ?? "")),
                            .init("problem_id", .int(Int(p?.problemID ?? -1))),
                            .init(
                                "positions",
                                .array(
                                    (unroutedPositions[i] ?? []).map {
                                        $0.lowerBound == $0.upperBound
                                            ? .string("\($0.lowerBound)") : .string("\($0.lowerBound)-\($0.upperBound)")
                                    }
                                )
                            ),
                        ])
                    }
                )
            ),
        ]
        if let timing { members.append(.init("timing", timing.reportValue)) }
        if let routerLogits { members.append(.init("router_logits", routerLogits.reportValue)) }
        if interrupted {
            members.append(.init("interrupted", .bool(true)))
            members.append(.init("partial_requests", .array(partialRequests.map(\.reportValue))))
        }
        return .object(members)
    }
}

/// Receives a capture run's results as they happen. Called on the generating thread, holding
/// the GIL: do Swift work only (dispatch blocks, write files), never Python.
public protocol CaptureObserver: AnyObject {
    /// A request's routing, when it finishes (`output` set), or, for requests still running when
    /// a run stops early, what was captured of it (`output` nil).
    func requestFinished(_ routing: RequestRouting, output: GenerationOutput?) throws
    /// One step's timings (only with ``CaptureOptions/timing``).
    func stepEnded(_ timing: StepTiming) throws
    /// Progress, before every engine step; return `true` to stop the run.
    func progress(_ progress: CaptureProgress) -> Bool
}

extension CaptureObserver {
    public func stepEnded(_ timing: StepTiming) throws {}
    public func progress(_ progress: CaptureProgress) -> Bool { false }
}
