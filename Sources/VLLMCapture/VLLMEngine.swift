// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The in-process vLLM engine seen from Swift: start-up, plain generation, and capture runs whose
// routing arrives through Swift functions registered with the embedded interpreter.

import Foundation
public import MoERouting
import MoERoutingTraces
import PythonRuntime
import Synchronization

/// One vLLM engine running inside this process on the embedded interpreter.
///
/// Start it once (vLLM's import and first start take seconds), then run ``capture(_:options:observer:)``
/// or ``generate(_:)`` as often as needed. One engine call runs at a time per process (a
/// process-wide lock serialises them); call from outside any ``Python/withGIL(_:)`` scope.
///
/// ```swift
/// try CapturePythonPackage.prepare(environment: PythonEnvironment.locate())
/// let engine = try VLLMEngine(configuration: EngineConfiguration(model: "models/tiny-mixtral"))
/// let summary = try engine.capture(problems, options: CaptureOptions(), observer: recorder)
/// ```
public final class VLLMEngine: @unchecked Sendable {
    /// What the engine was started with.
    public let configuration: EngineConfiguration
    /// The model's routing shape and facts for trace headers.
    public let description: EngineDescription
    private let engine: PythonObject

    /// Serialises engine calls process-wide: vLLM in-process is one heavy, stateful object.
    private static let gate = Mutex<Void>(())
    private static let runCounter = Atomic<Int>(0)

    /// Starts vLLM in this process (call ``CapturePythonPackage/prepare(environment:verbose:)`` first).
    ///
    /// - Parameters:
    ///   - configuration: how the engine starts and decodes.
    ///   - prompts: the prompts the engine will be given, when known: without a
    ///     ``EngineConfiguration/maxModelLength``, they size it (the longest prompt plus
    ///     ``EngineConfiguration/maxTokens``, at most the model's limit).
    /// - Throws: ``CaptureError/invalidOption(_:)`` for bad options (a `--max-model-len` over the
    ///   model's limit among them, said before vLLM starts), ``CaptureError/python(_:during:)``
    ///   when vLLM fails to start (the error carries its traceback).
    public init(configuration: EngineConfiguration, prompts: [String]? = nil) throws {
        try configuration.validate()
        self.configuration = configuration
        let (engine, description) = try Self.gate.withLock { _ in
            try Python.withGIL { gil -> (PythonObject, EngineDescription) in
                let module = try CapturePythonPackage.module(gil, "engine")
                do {
                    let options = try module.attribute("EngineOptions").call(
                        arguments: [],
                        keywords: configuration.pythonKeywords
                    )
                    let engine = try module.attribute("Engine").call(
                        arguments: [options],
                        keywords: [("prompts", prompts)]
                    )
                    let info = try engine.callMethod("describe")
                    return (engine, try Self.describe(info, engine: engine, model: configuration.model))
                } catch let error as PythonError where error.typeName.hasSuffix("MaxModelLengthError") {
                    throw CaptureError.invalidOption(error.message)
                } catch let error as PythonError {
                    throw CaptureError.python(error, during: "starting vLLM on \(configuration.model)")
                }
            }
        }
        self.engine = engine
        self.description = description
    }

    private static func describe(_ info: PythonObject, engine: PythonObject, model: String) throws -> EngineDescription
    {
        let layers = try info.item("moe_layers").convert(to: Int.self)
        let experts = try info.item("experts").convert(to: Int?.self)
        let topK = try info.item("top_k").convert(to: Int?.self)
        guard layers > 0, let experts, let topK else {
            throw CaptureError.inconsistentCapture(
                "\(model) has \(layers) MoE layers with a router (experts \(experts.map(String.init) ?? "?"), top-k \(topK.map(String.init) ?? "?")): not a Mixture-of-Experts model the hook can capture"
            )
        }
        let name = URL(fileURLWithPath: model).lastPathComponent
        let shape: ModelShape
        do {
            shape = try ModelShape(layers: layers, experts: experts, topK: topK, name: name.isEmpty ? model : name)
        } catch {
            throw CaptureError.inconsistentCapture("the model's routing shape is unusable: \(error)")
        }
        let layerNumbers = try info.item("layer_numbers").convert(to: [Int].self)
        let facts = try info.item("routing")
        let scoreName = try facts.item("weight_kind").convert(to: String.self)
        let renormalised = scoreName.hasSuffix("-renormalised")
        guard let score = RoutingConvention.Score(rawValue: renormalised ? String(scoreName.dropLast(13)) : scoreName)
        else {
            throw CaptureError.inconsistentCapture(
                "\(model): the router's score function '\(scoreName)' is not softmax or sigmoid; the capture cannot say what its weights are"
            )
        }
        let routing = RoutingConvention(
            score: score,
            renormalised: renormalised,
            weightScale: try facts.item("weight_scale").convert(to: Double.self),
            routedScalingFactor: try facts.item("routed_scaling_factor").convert(to: Double.self),
            expertSelection: try facts.item("expert_selection").convert(to: String.self),
            sharedExperts: try facts.item("shared_experts").convert(to: Int.self),
            sharedExpertGate: try facts.item("shared_expert_gate").convert(to: String.self),
            decoderLayers: try facts.item("decoder_layers").convert(to: Int.self),
            moeLayers: layerNumbers
        )
        return EngineDescription(
            shape: shape,
            layerNames: try info.item("layer_names").convert(to: [String].self),
            layerNumbers: layerNumbers,
            vllmVersion: try info.item("vllm_version").convert(to: String.self),
            routingAPI: try info.item("routing_api").convert(to: String.self),
            architecture: try info.item("architecture").convert(to: String.self),
            dtype: try info.item("dtype").convert(to: String.self),
            requestedDtype: try info.item("requested_dtype").convert(to: String.self),
            maxModelLength: try info.item("max_model_len").convert(to: Int.self),
            maxModelLengthSource: try info.item("max_model_len_source").convert(to: String.self),
            modelLengthLimit: try info.item("model_length_limit").convert(to: Int?.self),
            routing: routing,
            importSeconds: try engine.attribute("import_seconds").convert(to: Double.self),
            startSeconds: try engine.attribute("start_seconds").convert(to: Double.self)
        )
    }

    /// The model's routing shape.
    public var shape: ModelShape { description.shape }

    // MARK: - Plain generation

    /// Generates for `problems` without the hook (the capture-overhead baseline).
    ///
    /// - Returns: the outputs in problem order, the generation's wall time and this process's CPU
    ///   time over the same span, in seconds.
    public func generate(
        _ problems: [Problem]
    ) throws -> (outputs: [GenerationOutput], seconds: Double, cpuSeconds: Double) {
        try Self.gate.withLock { _ in
            try Python.withGIL { gil in
                do {
                    let result = try engine.callMethod("generate", try Self.pythonProblems(problems))
                    let seconds = try result.item("seconds").convert(to: Double.self)
                    let cpuSeconds = try result.item("cpu_seconds").convert(to: Double.self)
                    var outputs: [GenerationOutput] = []
                    for record in try result.item("outputs").elements() {
                        let i = try record.item("index").convert(to: Int.self)
                        guard i >= 0, i < problems.count else { continue }
                        outputs.append(
                            GenerationOutput(
                                index: i,
                                problem: problems[i],
                                promptTokenIDs: try record.item("prompt_token_ids").convert(to: [Int32].self),
                                tokenIDs: try record.item("token_ids").convert(to: [Int32].self),
                                text: try record.item("text").convert(to: String.self),
                                finishReason: try record.item("finish_reason").convert(to: String.self)
                            )
                        )
                    }
                    return (outputs, seconds, cpuSeconds)
                } catch let error as PythonError {
                    throw CaptureError.python(error, during: "generation")
                }
            }
        }
    }

    static func pythonProblems(_ problems: [Problem]) throws -> PythonObject {
        try problems.map {
            ["domain": $0.domain, "problem_id": String($0.problemID), "prompt": $0.prompt, "source_id": $0.sourceID]
        }.pythonObject()
    }

    // MARK: - Capture

    /// Generates for `problems`, all submitted together, with the routing hook installed for
    /// this call: every routing decision reaches `observer` as per-request blocks while
    /// generation runs.
    ///
    /// A stop request (SIGINT or SIGTERM through ``CaptureInterruption``, or a `true` from the
    /// observer's `progress`) takes effect before the next engine step: the step in flight
    /// finishes, the requests still running are aborted and handed to the observer as they stand
    /// (partial routing, no output), and the summary of what was captured comes back with
    /// ``CaptureSummary/interrupted`` set and the partial requests in
    /// ``CaptureSummary/partialRequests``. On a Python exception or a failing observer the
    /// running requests are handed over the same way and the error is thrown. Either way the
    /// engine is left reusable.
    ///
    /// - Throws: ``CaptureError/python(_:during:)`` (with the traceback),
    ///   ``CaptureError/inconsistentCapture(_:)`` or the observer's error.
    public func capture(
        _ problems: [Problem],
        options: CaptureOptions = CaptureOptions(),
        observer: any CaptureObserver
    )
        throws -> CaptureSummary
    {
        try Self.gate.withLock { _ in
            try Python.withGIL { gil in try runCapture(gil, problems, options, observer) }
        }
    }

    private func runCapture(
        _ gil: borrowing PythonGIL,
        _ problems: [Problem],
        _ options: CaptureOptions,
        _ observer: any CaptureObserver
    ) throws -> CaptureSummary {
        let state = CaptureRunState(
            shape: shape,
            problems: problems,
            options: options,
            observer: observer,
            maxTokens: configuration.maxTokens
        )
        let run = Self.runCounter.add(1, ordering: .relaxed).newValue
        let moduleName = "_speculative_moe_host"
        let sink = try gil.evaluate("__import__('types').SimpleNamespace()")
        var defined: [String] = []
        func define(_ name: String, _ body: @escaping PythonFunction.Body) throws {
            let unique = "\(name)_\(run)"
            let function = try gil.defineFunction(module: moduleName, name: unique, body)
            defined.append(unique)
            try sink.setAttribute(name, to: function)
        }
        try define("on_begin") { _ in nil }
        try define("on_step") { args in state.guarded { try state.onStep(args) } }
        try define("on_layer") { args in state.guarded { try state.onLayer(args) } }
        try define("on_step_end") { args in state.guarded { try state.onStepEnd(args) } }
        try define("on_request_finished") { args in state.guarded { try state.onRequestFinished(args) } }
        try define("on_progress") { _ in try state.shouldStop().pythonObject() }
        defer {
            // Drop the functions (and with them the closures holding the state).
            if let host = try? gil.import(moduleName), let delattr = try? gil.builtins().attribute("delattr") {
                for name in defined { _ = try? delattr.call(host, name) }
            }
        }

        state.start()
        let result: PythonObject
        do {
            result = try engine.callMethod(
                "generate",
                try Self.pythonProblems(problems),
                keywords: [
                    "sink": sink, "router_logits": options.routerLogits, "timing": options.timing,
                    "gather": options.gather.rawValue,
                ]
            )
        } catch let error as PythonError {
            state.flushPartial()
            if let failure = state.failure { throw failure }
            if error.typeName.hasSuffix("CaptureInterrupted") || CaptureInterruption.isRequested {
                // Stopped on request: what was captured is the result.
                return state.summary(seconds: state.elapsed, cpuSeconds: state.cpuElapsed, hook: [:], interrupted: true)
            }
            throw CaptureError.python(error, during: "generation")
        }
        if let failure = state.failure {
            state.flushPartial()
            throw failure
        }
        var hook: [String: Int] = [:]
        if let stats = try? result.item("stats").convert(to: [String: Int].self) { hook = stats }
        return state.summary(
            seconds: (try? result.item("seconds").convert(to: Double.self)) ?? state.elapsed,
            cpuSeconds: (try? result.item("cpu_seconds").convert(to: Double.self)) ?? 0,
            hook: hook
        )
    }
}

/// The Swift side of one capture run: the assembler, counters and the observer. Touched only by
/// the generating thread, under the GIL, hence `@unchecked Sendable`.
final class CaptureRunState: @unchecked Sendable {
    let assembler: RoutingAssembler
    let options: CaptureOptions
    let observer: any CaptureObserver
    let problems: [Problem]
    let maxTokens: Int
    let k: Int
    let experts: Int
    private(set) var failure: (any Error)?
    private var outputs: [GenerationOutput?]
    private var unrouted: [Int: [ClosedRange<Int32>]] = [:]
    private var expectedPositions = 0
    private var timing: LayerTimingTotals?
    private var logits: RouterLogitStatistics?
    private var started = ContinuousClock.now
    private var startedCPU = 0.0
    /// Requests handed over unfinished: request index -> tokens routed.
    private var partial: [Int: Int] = [:]
    private var finishedCount = 0
    private var generatedFinished = 0
    /// Decode rows routed per request (generated tokens fed back so far).
    private var decodeRowsInFlight: [Int]
    private var decodeRows = 0
    private var stepRows = 0
    /// Generated tokens the unfinished requests may still produce, at most: kept up to date per
    /// row, so a progress report costs the same for 10 problems as for 10,000.
    private var remainingBudget: Int
    private var positionScratch: [Int32] = []
    private var prefillScratch: [UInt8] = []

    init(shape: ModelShape, problems: [Problem], options: CaptureOptions, observer: any CaptureObserver, maxTokens: Int)
    {
        self.assembler = RoutingAssembler(shape: shape, problems: problems)
        self.options = options
        self.observer = observer
        self.problems = problems
        self.maxTokens = maxTokens
        self.k = shape.topK
        self.experts = shape.experts
        self.outputs = Array(repeating: nil, count: problems.count)
        self.decodeRowsInFlight = Array(repeating: 0, count: problems.count)
        self.remainingBudget = problems.count * max(0, maxTokens)
        if options.timing { timing = LayerTimingTotals(layers: shape.layers) }
        if options.routerLogits { logits = RouterLogitStatistics(layers: shape.layers) }
    }

    func start() {
        started = ContinuousClock.now
        startedCPU = Self.processCPUSeconds()
    }

    /// This process's CPU time since ``start()``, in seconds.
    var cpuElapsed: Double { Self.processCPUSeconds() - startedCPU }

    private static func processCPUSeconds() -> Double {
        var ts = timespec()
        _ = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    var elapsed: Double {
        let d = ContinuousClock.now - started
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Runs a callback body; the first error is kept (and stops the run at the next step)
    /// instead of being raised inside vLLM's forward pass.
    func guarded(_ body: () throws -> Void) -> PythonObject? {
        guard failure == nil else { return nil }
        do {
            try body()
        } catch {
            failure = error
        }
        return nil
    }

    func shouldStop() -> Bool {
        if failure != nil || CaptureInterruption.isRequested { return true }
        let progress = CaptureProgress(
            finished: finishedCount,
            total: problems.count,
            generatedTokens: decodeRows + finishedCount,
            routedRows: assembler.statistics.rows,
            seconds: elapsed,
            remainingTokenBudget: max(0, remainingBudget)
        )
        return observer.progress(progress)
    }

    // MARK: Callbacks

    /// `on_step(step, run_index i32[T], positions i64[T], token_ids i32[T], prompt_lengths i64[T])`:
    /// a row is prefill when its position is below its request's prompt length.
    func onStep(_ args: PythonArguments) throws {
        try args.requireCount(5)
        let step = try args.value(at: 0, as: Int.self)
        try args.withBuffer(at: 1, of: Int32.self) { runIndex in
            try args.withBuffer(at: 2, of: Int64.self) { positions64 in
                try args.withBuffer(at: 3, of: Int32.self) { tokens in
                    try args.withBuffer(at: 4, of: Int64.self) { promptLengths in
                        let rows = runIndex.count
                        guard positions64.count == rows, promptLengths.count == rows else {
                            throw CaptureError.inconsistentCapture(
                                "step attribution columns differ in length: \(rows) requests, \(positions64.count) positions, \(promptLengths.count) prompt lengths"
                            )
                        }
                        positionScratch.removeAll(keepingCapacity: true)
                        prefillScratch.removeAll(keepingCapacity: true)
                        for r in 0..<rows {
                            let p = positions64[r]
                            guard let p32 = Int32(exactly: p), p32 >= 0 else {
                                throw CaptureError.inconsistentCapture(
                                    "row \(r) of a step has position \(p), outside 0...\(Int32.max)"
                                )
                            }
                            positionScratch.append(p32)
                            let isPrefill = p < promptLengths[r]
                            prefillScratch.append(isPrefill ? 1 : 0)
                            if !isPrefill { countDecodeRow(of: Int(runIndex[r])) }
                        }
                        try positionScratch.withUnsafeBufferPointer { positions in
                            try prefillScratch.withUnsafeBufferPointer { prefill in
                                try assembler.beginStep(
                                    step: step,
                                    runIndex: runIndex.elements,
                                    positions: positions,
                                    tokenIDs: tokens.elements,
                                    prefill: prefill
                                )
                            }
                        }
                        stepRows = rows
                    }
                }
            }
        }
    }

    /// One more generated token fed back for request `i`: the remaining token budget shrinks
    /// while the request is under its limit.
    private func countDecodeRow(of i: Int) {
        decodeRows += 1
        guard i >= 0, i < decodeRowsInFlight.count else { return }
        decodeRowsInFlight[i] += 1
        if outputs[i] == nil, decodeRowsInFlight[i] <= maxTokens { remainingBudget -= 1 }
    }

    func onLayer(_ args: PythonArguments) throws {
        try args.requireCount(4)
        let layer = try args.value(at: 0, as: Int.self)
        let k = self.k
        try args.withBuffer(at: 1, of: Int32.self) { ids in
            if ids.rank != 2 || ids.shape[1] != k { try ids.requireShape([nil, k]) }
            try args.withBuffer(at: 2, of: Float.self) { weights in
                if weights.rank != 2 || weights.shape[1] != k { try weights.requireShape([nil, k]) }
                try assembler.addLayer(layer, ids: ids.elements, weights: weights.elements)
            }
        }
        if logits != nil, !(try args.object(at: 3)).isNone {
            let e = experts
            try args.withBuffer(at: 3, of: Float.self) { buffer in
                try buffer.requireShape([nil, e])
                logits?.add(layer: layer, logits: buffer.elements, experts: e, topK: k)
            }
        }
    }

    func onStepEnd(_ args: PythonArguments) throws {
        try args.requireCount(3)
        assembler.endStep()
        guard timing != nil, !(try args.object(at: 1)).isNone, !(try args.object(at: 2)).isNone else { return }
        let step = try args.value(at: 0, as: Int.self)
        let routing = try args.withBuffer(at: 1, of: Int64.self) { Array($0.elements) }
        let moe = try args.withBuffer(at: 2, of: Int64.self) { Array($0.elements) }
        let t = StepTiming(
            step: Int64(step),
            rows: Int32(clamping: stepRows),
            routingNanoseconds: routing,
            moeNanoseconds: moe
        )
        timing?.add(t)
        try observer.stepEnded(t)
    }

    func onRequestFinished(_ args: PythonArguments) throws {
        try args.requireCount(5)
        let index = try args.value(at: 0, as: Int.self)
        let prompt = try args.value(at: 1, as: [Int32].self)
        let generated = try args.value(at: 2, as: [Int32].self)
        let text = try args.value(at: 3, as: String.self)
        let reason = try args.value(at: 4, as: String.self)
        let routing = try assembler.finishRequest(index, promptLength: prompt.count, generatedCount: generated.count)
        let output = GenerationOutput(
            index: index,
            problem: problems[index],
            promptTokenIDs: prompt,
            tokenIDs: generated,
            text: text,
            finishReason: reason
        )
        if outputs[index] == nil { remainingBudget -= max(0, maxTokens - decodeRowsInFlight[index]) }
        outputs[index] = output
        finishedCount += 1
        expectedPositions += routing.expectedPositions
        if !routing.unroutedPositions.isEmpty { unrouted[index] = routing.unroutedPositions }
        try observer.requestFinished(routing, output: output)
    }

    /// Hands the requests still running to the observer as they stand.
    func flushPartial() {
        for routing in assembler.drainUnfinished() {
            if routing.block.tokenCount > 0 { partial[routing.index] = routing.block.tokenCount }
            do {
                try observer.requestFinished(routing, output: nil)
            } catch {
                if failure == nil { failure = error }
            }
        }
    }

    func summary(seconds: Double, cpuSeconds: Double, hook: [String: Int], interrupted: Bool = false) -> CaptureSummary
    {
        let done = outputs.compactMap { $0 }
        var s = CaptureSummary(
            outputs: done,
            assembly: assembler.statistics,
            hook: hook,
            seconds: seconds,
            cpuSeconds: cpuSeconds,
            promptTokens: done.reduce(0) { $0 + $1.promptTokenIDs.count },
            generatedTokens: done.reduce(0) { $0 + $1.tokenIDs.count },
            expectedPositions: expectedPositions,
            unroutedPositions: unrouted,
            timing: timing,
            routerLogits: logits
        )
        s.requested = problems.count
        s.interrupted = interrupted
        s.partialRequests = partial.keys.sorted().map {
            CaptureSummary.PartialRequest(index: $0, problem: problems[$0], tokens: partial[$0] ?? 0)
        }
        return s
    }
}
