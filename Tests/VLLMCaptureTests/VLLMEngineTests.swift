// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import PythonRuntime
import Testing
import TransitionAnalyzer
import VLLMCapture

/// End-to-end capture on the tiny model with vLLM in this process. One engine, shared; the suite
/// is serialised because vLLM runs one generation at a time.
@Suite(
    .serialized,
    .enabled(if: CaptureTestEnvironment.vllmAvailable, "needs the project venv with vLLM (scripts/setup-python.sh)")
)
struct VLLMEngineTests {
    /// Every (request, position, layer) of prompt plus generated tokens (the last one excepted)
    /// is present exactly once with the right token and phase; a prompt's routing batched equals
    /// its routing alone; transformers' own Mixtral agrees on the expert sets and weights.
    @Test func capturedRoutingIsCompleteAttributedAndMatchesAnIndependentReference() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = try CaptureTestEnvironment.problems()
        let shape = engine.shape
        #expect(shape.layers == 4 && shape.experts == 8 && shape.topK == 2)
        // Mixtral: renormalised softmax top-k, no shared experts, every decoder layer routes.
        let routing = engine.description.routing
        #expect(routing.weightKind == "softmax-renormalised" && routing.weightScale == 1)
        #expect(routing.sharedExperts == 0 && routing.moeLayers == [0, 1, 2, 3] && routing.denseLayers.isEmpty)

        // Live: a binary trace writer and a transition analyzer fed while generation runs.
        let dir = try CaptureTestEnvironment.temporaryDirectory("e2e")
        let tracePath = dir + "/trace.moetrace"
        let writer = try BinaryTraceWriter(path: tracePath, shape: shape, settings: engine.configuration.settings)
        let transition = TransitionAnalyzer(folds: 2, nullReplicates: 2)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([transition]), sinks: [writer])
        try dispatcher.begin(AnalysisContext(shape: shape))
        let observer = CollectingObserver()
        observer.dispatcher = dispatcher
        let summary = try engine.capture(problems, observer: observer)
        try writer.close()

        #expect(summary.outputs.count == problems.count)
        #expect(observer.finished.count == problems.count)
        #expect(observer.partial.isEmpty)
        #expect(summary.hook["unattributed_rows"] == 0)
        #expect(summary.hook["padding_rows"] == 0)
        // Prompts of different lengths, at least one split into chunks.
        let promptLengths = (0..<problems.count).compactMap { observer.outputs[$0]?.promptTokenIDs.count }
        #expect(Set(promptLengths).count == problems.count)
        #expect(promptLengths.contains { $0 > CaptureTestEnvironment.chunkTokens })

        var cells = 0
        for i in 0..<problems.count {
            guard let output = observer.outputs[i], let routing = observer.finished[i] else {
                Issue.record("request \(i) has no output")
                continue
            }
            let sequence = output.promptTokenIDs + output.tokenIDs
            let expected = sequence.count - 1
            let b = routing.block
            #expect(routing.expectedPositions == expected)
            #expect(routing.unroutedPositions.isEmpty)
            #expect(b.position == (0..<Int32(expected)).map { $0 }, "request \(i): each position once, in order")
            #expect(b.tokenID == Array(sequence.prefix(expected)), "request \(i): token ids are prompt + generated")
            #expect(b.phase == (0..<expected).map { $0 < output.promptTokenIDs.count ? .prefill : .decode })
            #expect(b.problemID.allSatisfy { $0 == problems[i].problemID })
            #expect(b.domain.allSatisfy { b.domains[Int($0)] == problems[i].domain })
            #expect(b.present.allSatisfy { $0 }, "request \(i): every layer of every position")
            cells += b.recordCount
        }
        let expectedCells = (0..<problems.count).reduce(0) { n, i in
            n + ((observer.outputs[i].map { $0.promptTokenIDs.count + $0.tokenIDs.count - 1 }) ?? 0) * shape.layers
        }
        #expect(cells == expectedCells)
        #expect(summary.expectedPositions * shape.layers == expectedCells)

        // The trace on disk holds the same blocks; the analyzer saw them live.
        let reader = try BinaryTraceReader(path: tracePath)
        var onDisk: [RoutingBlock] = []
        while let block = try reader.nextBlock() { onDisk.append(block) }
        #expect(reader.isComplete)
        #expect(onDisk.reduce(0) { $0 + $1.recordCount } == expectedCells)
        #expect(dispatcher.statistics.records == expectedCells)
        let report = try transition.finish()
        #expect(report.analyzer == "transition")

        // Batched equals alone (the longest prompt, so chunk boundaries differ).
        let longest = promptLengths.firstIndex(of: promptLengths.max() ?? 0) ?? 0
        let alone = CollectingObserver()
        _ = try engine.capture([problems[longest]], observer: alone)
        let a = try #require(alone.finished[0]?.block)
        let batched = try #require(observer.finished[longest]?.block)
        #expect(alone.outputs[0]?.tokenIDs == observer.outputs[longest]?.tokenIDs)
        #expect(a.position == batched.position)
        #expect(a.ids == batched.ids, "expert ids batched and alone")
        let aloneDiff = zip(a.weights, batched.weights).map { abs($0 - $1) }.max() ?? 0
        print("batched vs alone: \(a.recordCount) cells, identical expert ids, max weight difference \(aloneDiff)")
        #expect(aloneDiff <= 1e-5)

        // transformers' MixtralForCausalLM on the same weights, output_router_logits, softmax, top-k, renormalise.
        let sequences = (0..<problems.count).map { i -> [Int] in
            let o = observer.outputs[i]!
            return (o.promptTokenIDs + o.tokenIDs.dropLast()).map(Int.init)
        }
        let reference = try referenceRouting(
            model: try CaptureTestEnvironment.tinyModel.get(),
            sequences: sequences,
            shape: shape
        )
        var agree = 0
        var total = 0
        var maxDiff: Float = 0
        for i in 0..<problems.count {
            let b = observer.finished[i]!.block
            let (ids, weights) = reference[i]
            for t in 0..<b.tokenCount {
                for l in 0..<shape.layers {
                    total += 1
                    let base = (t * shape.layers + l) * shape.topK
                    let mine = Set((0..<shape.topK).map { b.expert(token: t, layer: l, slot: $0) })
                    let theirs = Set((0..<shape.topK).map { Int(ids[base + $0]) })
                    guard mine == theirs else { continue }
                    agree += 1
                    for s in 0..<shape.topK {
                        // Both ordered by weight, highest first.
                        maxDiff = max(maxDiff, abs(b.weight(token: t, layer: l, slot: s) - weights[base + s]))
                    }
                }
            }
        }
        let share = Double(agree) / Double(max(total, 1))
        print(
            "reference agreement: \(agree)/\(total) (token, layer) expert sets (\(String(format: "%.4f", share * 100))%), max weight difference \(maxDiff)"
        )
        #expect(total == expectedCells)
        #expect(share >= 0.999)
        #expect(maxDiff <= 1e-4)

        // The hook is gone after the run.
        let wrapped = try Python.withGIL { gil in
            try gil.evaluate(
                "hasattr(__import__('vllm.model_executor.layers.fused_moe.router.fused_moe_router', fromlist=['x']).FusedMoERouter.select_experts, '__wrapped__')"
            ).convert(to: Bool.self)
        }
        #expect(!wrapped)
    }

    /// Timing and router logits: per-layer times with routing inside the MoE layer, entropy
    /// within [0, ln E], margins within [0, 1].
    @Test func timingAndRouterLogitsAreCollected() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = Array(try CaptureTestEnvironment.problems().prefix(2))
        let observer = CollectingObserver()
        let summary = try engine.capture(
            problems,
            options: CaptureOptions(routerLogits: true, timing: true),
            observer: observer
        )
        let timing = try #require(summary.timing)
        #expect(timing.steps == observer.timings.count)
        #expect(timing.steps > 0)
        #expect(timing.rows == summary.assembly.rows)
        for l in 0..<engine.shape.layers {
            #expect(timing.routingNanoseconds[l] > 0)
            #expect(timing.moeNanoseconds[l] > timing.routingNanoseconds[l])
            #expect(timing.routingShare[l] > 0 && timing.routingShare[l] < 1)
        }
        // Every token carries the step that routed it; the tokens of a step are as many as the
        // step's timing record says it processed (no rows were dropped in this run).
        var tokensPerStep: [Int: Int] = [:]
        for i in 0..<problems.count {
            let steps = try #require(observer.finished[i]?.block.step, "request \(i) has a step column")
            for s in steps { tokensPerStep[Int(s), default: 0] += 1 }
            #expect(steps == steps.sorted(), "request \(i): steps increase with position")
        }
        #expect(
            tokensPerStep == Dictionary(uniqueKeysWithValues: observer.timings.map { (Int($0.step), Int($0.rows)) })
        )
        let logits = try #require(summary.routerLogits)
        for l in 0..<engine.shape.layers {
            #expect(logits.rows[l] == summary.assembly.rows)
            let h = logits.entropySum[l] / Double(logits.rows[l])
            let m = logits.marginSum[l] / Double(logits.rows[l])
            #expect(h >= 0 && h <= log(8.0) + 1e-9)
            #expect(m >= 0 && m <= 1)
        }
    }

    /// The per-step gather path (designed for GPUs: device staging, one host copy per step) gives
    /// exactly the routing of the per-layer path.
    @Test func perStepGatherMatchesPerLayerHandOver() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = Array(try CaptureTestEnvironment.problems().prefix(3))
        let perLayer = CollectingObserver()
        _ = try engine.capture(
            problems,
            options: CaptureOptions(routerLogits: true, gather: .perLayer),
            observer: perLayer
        )
        let perStep = CollectingObserver()
        let summary = try engine.capture(
            problems,
            options: CaptureOptions(routerLogits: true, gather: .perStep),
            observer: perStep
        )
        #expect(summary.routerLogits?.rows.allSatisfy { $0 == summary.assembly.rows } == true)
        for i in 0..<problems.count {
            let a = try #require(perLayer.finished[i]?.block)
            let b = try #require(perStep.finished[i]?.block)
            #expect(a == b, "request \(i)")
            #expect(b.present.allSatisfy { $0 })
        }
    }

    /// Stopping mid-run (as Ctrl-C does) hands unfinished requests over as they stand, leaves a
    /// readable trace, and leaves the engine reusable.
    @Test func stoppingMidRunFlushesPartialRoutingAndKeepsTheEngineUsable() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = try CaptureTestEnvironment.problems()
        let dir = try CaptureTestEnvironment.temporaryDirectory("stop")
        let writer = try BinaryTraceWriter(path: dir + "/partial.moetrace", shape: engine.shape)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [writer])
        try dispatcher.begin(AnalysisContext(shape: engine.shape))
        let observer = CollectingObserver()
        observer.dispatcher = dispatcher
        observer.stopAtProgressCall = 6
        let stopped = try engine.capture(problems, observer: observer)
        #expect(stopped.interrupted)
        try writer.close(interruptedAfter: stopped.outputs.count, of: problems.count)
        #expect(!observer.partial.isEmpty)
        #expect(
            stopped.partialRequests.map(\.index)
                == observer.partial.keys.filter { observer.partial[$0]!.block.tokenCount > 0 }.sorted()
        )
        #expect(stopped.partialRequests.allSatisfy { $0.tokens == observer.partial[$0.index]?.block.tokenCount })
        #expect(stopped.outputs.count + stopped.partialRequests.count <= problems.count)
        let reader = try BinaryTraceReader(path: dir + "/partial.moetrace")
        var records = 0
        while let block = try reader.nextBlock() { records += block.recordCount }
        #expect(reader.isComplete)
        #expect(reader.closure == .interrupted(completed: stopped.outputs.count, total: problems.count))
        #expect(records > 0)
        #expect(records == dispatcher.statistics.records)

        // A failing observer stops the run with its own error.
        let failing = CollectingObserver()
        failing.failOnRequest = 0
        #expect(throws: CollectingObserver.Failure.self) { _ = try engine.capture(problems, observer: failing) }

        // The engine still works.
        let again = CollectingObserver()
        let summary = try engine.capture(Array(problems.prefix(1)), observer: again)
        #expect(summary.outputs.count == 1)
        #expect(again.finished[0]?.unroutedPositions.isEmpty == true)
    }

    /// Ctrl-C (a stop request) ends a run at the next step with a summary marked interrupted.
    @Test func aStopRequestInterruptsTheRun() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = Array(try CaptureTestEnvironment.problems().prefix(2))
        CaptureInterruption.reset()
        #expect(!CaptureInterruption.isRequested)
        CaptureInterruption.request()
        #expect(CaptureInterruption.isRequested)
        defer { CaptureInterruption.reset() }
        let observer = CollectingObserver()
        let stopped = try engine.capture(problems, observer: observer)
        #expect(stopped.interrupted)
        #expect(stopped.requested == 2)
        #expect(stopped.outputs.isEmpty)
        #expect(stopped.partialRequests.isEmpty)
        #expect(observer.finished.isEmpty)
        CaptureInterruption.reset()
        #expect(try engine.capture(problems, observer: CollectingObserver()).outputs.count == 2)
    }

    /// A Python exception reaches Swift with its type, message and traceback.
    @Test func pythonErrorsCarryTheirTraceback() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let long = Problem(domain: "x", problemID: 0, prompt: String(repeating: "word ", count: 2000))
        do {
            _ = try engine.capture([long], observer: CollectingObserver())
            Issue.record("a prompt longer than max_model_len was accepted")
        } catch let error as CaptureError {
            #expect(error.description.contains("max-model-len"))
            #expect(error.traceback.contains("Traceback"))
            #expect(error.traceback.contains("engine.py"))
        }
    }

    /// Plain generation (the overhead baseline) gives the same tokens as a capture run.
    @Test func generationWithoutTheHookMatchesCapture() throws {
        let engine = try CaptureTestEnvironment.engine.get()
        let problems = Array(try CaptureTestEnvironment.problems().prefix(2))
        let plain = try engine.generate(problems)
        let observer = CollectingObserver()
        let captured = try engine.capture(problems, observer: observer)
        #expect(plain.outputs.map(\.tokenIDs) == captured.outputs.map(\.tokenIDs))
        #expect(plain.outputs.allSatisfy { $0.tokenIDs.count == engine.configuration.maxTokens })
        #expect(plain.seconds > 0)
    }
}

/// Routing of `sequences` by transformers' own Mixtral: per sequence, ids and weights [T][L][k],
/// ordered by weight.
private func referenceRouting(model: String, sequences: [[Int]], shape: ModelShape) throws -> [([Int32], [Float])] {
    try Python.withGIL { gil in
        let reference = try gil.import("speculative_moe.reference")
        let results = try reference.attribute("reference_routing").call(model, sequences)
        return try results.elements().map { r in
            let ids = try r.item("ids").withBuffer(of: Int32.self) { b in
                try b.requireShape([nil, shape.layers, shape.topK])
                return Array(b.elements)
            }
            let weights = try r.item("weights").withBuffer(of: Float.self) { Array($0.elements) }
            return (ids, weights)
        }
    }
}
