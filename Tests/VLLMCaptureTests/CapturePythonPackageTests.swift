// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import Testing
import VLLMCapture

/// The package's datasets and sample files through the Swift API (needs the venv, not vLLM).
@Suite(.enabled(if: CaptureTestEnvironment.pythonAvailable, "needs the project venv (scripts/setup-python.sh)"))
struct CapturePythonPackageTests {
    @Test func locatesThePackageAndItsSamples() throws {
        let dir = try CapturePythonPackage.locate()
        #expect(FileManager.default.fileExists(atPath: dir + "/speculative_moe/capture.py"))
        let problems = try CapturePythonPackage.loadProblems(
            DatasetSpec(name: "humaneval", file: try CapturePythonPackage.samplePath("humaneval"))
        )
        #expect(problems.count == 4)
        #expect(problems.map(\.problemID) == [0, 1, 2, 3])
        #expect(problems[0].sourceID == "HumanEval/0")
        #expect(problems[0].prompt.hasPrefix("from typing import List"))
        #expect(throws: CaptureError.self) { try CapturePythonPackage.samplePath("mbpp") }
    }

    /// The Swift list of `--arch` values is the generator's list; the Mixtral model keeps the
    /// configuration hash it had, so existing tiny-mixtral directories stay current.
    @Test func tinyArchitecturesMatchTheGenerator() throws {
        let (generated, mixtralHash, dirs) = try Python.withGIL { gil in
            let tiny = try gil.import("speculative_moe.tiny_model")
            let names = try gil.evaluate(
                "sorted(__import__('speculative_moe.tiny_model', fromlist=['x']).ARCHITECTURES)"
            )
            .convert(to: [String].self)
            let hash = try tiny.attribute("config_hash").call().convert(to: String.self)
            let dirs = try CapturePythonPackage.tinyArchitectures.map {
                try tiny.attribute("default_model_dir").call(arguments: ["/root"], keywords: [("arch", $0)])
                    .convert(to: String.self)
            }
            return (names, hash, dirs)
        }
        #expect(Set(generated) == Set(CapturePythonPackage.tinyArchitectures))
        // sha256 of generator version 1's Mixtral configuration (before the other architectures).
        #expect(mixtralHash == Self.mixtralConfigHash)
        #expect(dirs == CapturePythonPackage.tinyArchitectures.map { "/root/models/tiny-\($0)" })
        #expect(
            CapturePythonPackage.defaultTinyModelPath(architecture: "olmoe").hasSuffix("/models/tiny-olmoe")
        )
        #expect(throws: CaptureError.self) {
            try CapturePythonPackage.ensureTinyModel(at: NSTemporaryDirectory() + "never", architecture: "llama")
        }
    }

    /// `routing_facts` reads what the weights are from vLLM's router attributes (stand-ins here:
    /// no vLLM needed) and the model configuration.
    @Test func routingFactsFollowTheRouterAndTheConfiguration() throws {
        let facts = try Python.withGIL { gil -> [[String: String]] in
            let scope = try gil.run(Self.routingFactsSource)
            return try ["olmoe", "v3", "scaled", "qwen2"].map { name in
                let d = try gil.evaluate("{k: str(v) for k, v in \(name).items()}", globals: scope)
                return try d.convert(to: [String: String].self)
            }
        }
        #expect(facts[0]["weight_kind"] == "softmax")
        #expect(facts[0]["dense_layers"] == "[]" && facts[0]["shared_experts"] == "0")
        #expect(facts[1]["weight_kind"] == "sigmoid-renormalised")
        #expect(facts[1]["weight_scale"] == "1.0" && facts[1]["routed_scaling_factor"] == "2.5")
        #expect(facts[1]["expert_selection"] == "grouped top-k (8 groups, keep 4), correction bias")
        #expect(facts[1]["shared_experts"] == "1" && facts[1]["shared_expert_gate"] == "none")
        #expect(facts[1]["decoder_layers"] == "6" && facts[1]["dense_layers"] == "[0, 1, 2]")
        #expect(facts[2]["weight_kind"] == "softmax-renormalised" && facts[2]["weight_scale"] == "16.0")
        #expect(facts[2]["expert_selection"] == "top-k")
        #expect(facts[3]["shared_experts"] == "1" && facts[3]["shared_expert_gate"] == "sigmoid")
    }

    static let routingFactsSource = """
        from types import SimpleNamespace as N
        from speculative_moe.capture import routing_facts
        def table(router, numbers):
            return [(f"model.layers.{n}.mlp.experts", N(router=router)) for n in numbers]
        olmoe = routing_facts(table(N(scoring_func="softmax", renormalize=False), [0, 1]), N(num_hidden_layers=2))
        v3_router = N(scoring_func="sigmoid", renormalize=True, routed_scaling_factor=1.0, use_grouped_topk=True,
                      num_expert_group=8, topk_group=4, e_score_correction_bias=object())
        v3 = routing_facts(table(v3_router, [3, 4, 5]), N(num_hidden_layers=6, n_shared_experts=1, routed_scaling_factor=2.5))
        scaled = routing_facts(table(N(renormalize=True, routed_scaling_factor=16.0, use_grouped_topk=True,
                                       num_expert_group=1, topk_group=1), [1]), N(num_hidden_layers=2, routed_scaling_factor=16.0))
        qwen2 = routing_facts(table(N(renormalize=False), [0]), N(num_hidden_layers=1, shared_expert_intermediate_size=64))
        """

    static let mixtralConfigHash = "1575e65f6dd58582d3ec439813af3a726b2480a5846c2b430046ae1b27e34b19"

    @Test func slicesKeepDatasetIndicesAsProblemIDs() throws {
        let path = try writeJSONL(
            "slices",
            [#"{"q": "zero"}"#, #"{"q": "one"}"#, "", #"{"q": "two"}"#, #"{"q": "three"}"#]
        )
        let problems = try CapturePythonPackage.loadProblems(
            DatasetSpec(name: "jsonl:" + path, promptField: "q", numProblems: 2, offset: 1)
        )
        #expect(problems.map(\.prompt) == ["one", "two"])
        #expect(problems.map(\.problemID) == [1, 2])
        #expect(problems.allSatisfy { $0.domain == "slices" })
        let gsm = try CapturePythonPackage.loadProblems(
            DatasetSpec(name: "gsm8k", file: try CapturePythonPackage.samplePath("gsm8k"), numProblems: 1, offset: 2)
        )
        #expect(gsm.map(\.problemID) == [2])
        #expect(gsm[0].sourceID == "gsm8k/2")
        #expect(gsm[0].prompt.contains("?"))
    }

    @Test func badDatasetsNameFileLineAndField() throws {
        let missing = NSTemporaryDirectory() + "no-such-\(UUID().uuidString).jsonl"
        #expect(throws: CaptureError.self) {
            try CapturePythonPackage.loadProblems(DatasetSpec(name: "jsonl:" + missing))
        }
        let broken = try writeJSONL("broken", [#"{"prompt": "fine"}"#, #"{"prompt": "#])
        do {
            _ = try CapturePythonPackage.loadProblems(DatasetSpec(name: "jsonl:" + broken))
            Issue.record("a broken line was accepted")
        } catch let error as CaptureError {
            #expect(error.description.contains("\(broken):2"))
            #expect(error.description.contains("not valid JSON"))
        }
        let noField = try writeJSONL("nofield", [#"{"text": "x"}"#])
        do {
            _ = try CapturePythonPackage.loadProblems(DatasetSpec(name: "jsonl:" + noField))
            Issue.record("a missing field was accepted")
        } catch let error as CaptureError {
            #expect(error.description.contains("\(noField):1"))
            #expect(error.description.contains("'prompt'"))
            #expect(error.description.contains("--prompt-field"))
            #expect(error.description.contains("text"))
        }
    }

    private func writeJSONL(_ name: String, _ lines: [String]) throws -> String {
        let dir = try CaptureTestEnvironment.temporaryDirectory("datasets")
        let path = dir + "/\(name).jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Tiny-model generation from several threads at once (needs transformers and torch).
@Suite(
    .enabled(if: CaptureTestEnvironment.vllmAvailable, "needs the venv with transformers (scripts/setup-python.sh)")
)
struct TinyModelConcurrencyTests {
    /// Two threads asking for one new tiny model at once write it once: the second waits on the
    /// package's `import_lock` and then finds it current. The same lock keeps the threads'
    /// first imports of transformers apart (a concurrent circular import hands one thread a
    /// half-initialised module: "module 'transformers' has no attribute 'MixtralConfig'").
    @Test func concurrentCallersWriteOneModelOnce() async throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("tiny-concurrent")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<2 {
                group.addTask { try CapturePythonPackage.ensureTinyModel(at: dir) }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(created.filter { $0 }.count == 1 && created.count == 2)
        #expect(FileManager.default.fileExists(atPath: dir + "/speculative_moe_tiny.json"))
        #expect(try CapturePythonPackage.ensureTinyModel(at: dir) == false)
    }
}

/// The hook's logic on stand-ins for vLLM's classes (torch only): the choice between the router
/// API and the legacy `FusedMoE.select_experts`, layer attribution by the current MoE layer,
/// padding rows, dummy runs, and removal. The real vLLM path is covered by VLLMEngineTests.
@Suite(
    .enabled(if: CaptureTestEnvironment.vllmAvailable, "needs the project venv with torch (scripts/setup-python.sh)")
)
struct CaptureHookTests {
    @Test func routingAPIIsChosenByWhatExists() throws {
        let result = try runPython(
            """
            from speculative_moe.capture import find_routing_api, CaptureUnsupported, ROUTER_MODULE, LEGACY_MODULE
            import types
            class FusedMoERouter:
                def select_experts(self, h, l): pass
            class FusedMoE:
                @staticmethod
                def select_experts(h, l): pass
            def importer(available):
                def imp(name):
                    if name not in available: raise ImportError(name)
                    return available[name]
                return imp
            router_mod = types.SimpleNamespace(FusedMoERouter=FusedMoERouter)
            legacy_mod = types.SimpleNamespace(FusedMoE=FusedMoE)
            both = find_routing_api(importer({ROUTER_MODULE: router_mod, LEGACY_MODULE: legacy_mod}))
            legacy = find_routing_api(importer({LEGACY_MODULE: legacy_mod}))
            try:
                find_routing_api(importer({}))
                neither = "accepted"
            except CaptureUnsupported as e:
                neither = str(e)
            result = (both[0], legacy[0], neither)
            """
        )
        let (both, legacy, neither) = try Python.withGIL { _ in
            try result.tuple(as: String.self, String.self, String.self)
        }
        #expect(both == "router")
        #expect(legacy == "legacy")
        #expect(neither.contains("FusedMoERouter.select_experts") && neither.contains("FusedMoE.select_experts"))
    }

    /// Under graph compilation the routing op numbers layers by their order within a step;
    /// an engine compiled without the op, and timing, are refused with the way out.
    @Test func compiledModeNumbersLayersInStepOrderAndRefusesWhatItCannotDo() throws {
        let result = try runPython(
            """
            import types, torch, numpy as np
            import speculative_moe.capture as cap
            from speculative_moe.capture import RoutingCapture, CaptureUnsupported, ROUTER_MODULE

            class FusedMoERouter:
                def select_experts(self, hidden_states, router_logits):
                    w, i = torch.topk(torch.softmax(router_logits, -1), 2, dim=-1)
                    return w / w.sum(-1, keepdim=True), i.to(torch.int32)

            class Layer(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.router = FusedMoERouter()
                def forward(self, h):
                    return h

            class Model(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = torch.nn.ModuleList([torch.nn.Module() for _ in range(3)])
                    for layer in self.layers:
                        layer.experts = Layer()

            class Runner:
                def __init__(self):
                    self.model = Model()
                    self.device = "cpu"
                    self.vllm_config = types.SimpleNamespace(model_config=types.SimpleNamespace(enforce_eager=False))
                    self.input_batch = types.SimpleNamespace(num_reqs=1, req_ids=["a-1"], num_prompt_tokens=np.array([2]))
                    self.query_start_loc = torch.tensor([0, 2], dtype=torch.int32)
                    self.positions = torch.tensor([0, 1], dtype=torch.int64)
                    self.input_ids = torch.tensor([7, 8], dtype=torch.int32)
                def get_model(self):
                    return self.model
                def _prepare_inputs(self, scheduler_output):
                    return None
                def execute_model(self, scheduler_output, calls):
                    self._prepare_inputs(scheduler_output)
                    g = torch.Generator().manual_seed(0)
                    for _ in range(calls):   # what the compiled graph's op calls do
                        w, i = FusedMoERouter().select_experts(None, torch.randn(2, 8, generator=g))
                        cap._COMPILED["active"]._on_compiled_routing(w, i, None)

            class Sink:
                def __init__(self):
                    self.layers = []
                def on_step(self, *args): pass
                def on_layer(self, layer, ids, weights, logits):
                    self.layers.append(layer)
                def on_step_end(self, *args): pass

            router_mod = types.SimpleNamespace(FusedMoERouter=FusedMoERouter)
            def imp(name):
                if name == ROUTER_MODULE:
                    return router_mod
                raise ImportError(name)
            saved = cap._COMPILED["op"]
            out = {}
            try:
                cap._COMPILED["op"] = None
                try:
                    RoutingCapture(Sink(), {}, import_module=imp).install(runner=Runner())
                    out["unprepared"] = "accepted"
                except CaptureUnsupported as e:
                    out["unprepared"] = str(e)
                cap._COMPILED["op"] = object()   # as if prepare_compiled_capture() had run
                try:
                    RoutingCapture(Sink(), {}, timing=True, import_module=imp).install(runner=Runner())
                    out["timing"] = "accepted"
                except CaptureUnsupported as e:
                    out["timing"] = str(e)
                sink, runner = Sink(), Runner()
                original = FusedMoERouter.__dict__["select_experts"]
                c = RoutingCapture(sink, {"a-1": 0}, import_module=imp).install(runner=runner)
                out["class_untouched"] = FusedMoERouter.__dict__["select_experts"] is original and c.compiled
                runner.execute_model(types.SimpleNamespace(total_num_scheduled_tokens=2), 3)
                runner.execute_model(types.SimpleNamespace(total_num_scheduled_tokens=2), 3)
                out["layers"] = list(sink.layers)
                try:
                    runner.execute_model(types.SimpleNamespace(total_num_scheduled_tokens=2), 4)
                    out["too_many"] = "accepted"
                except RuntimeError as e:
                    out["too_many"] = str(e)
                c.remove()
                out["inactive_after_remove"] = cap._COMPILED["active"] is None
            finally:
                cap._COMPILED["op"] = saved
                cap._COMPILED["active"] = None
            result = out
            """
        )
        try Python.withGIL { _ in
            let unprepared = try result.item("unprepared").convert(to: String.self)
            #expect(unprepared.contains("prepare_compiled_capture()"))
            #expect(try result.item("timing").convert(to: String.self).contains("timing needs eager mode"))
            #expect(try result.item("class_untouched").convert(to: Bool.self))
            #expect(try result.item("layers").convert(to: [Int].self) == [0, 1, 2, 0, 1, 2])
            #expect(try result.item("too_many").convert(to: String.self).contains("more than the model's 3 MoE layers"))
            #expect(try result.item("inactive_after_remove").convert(to: Bool.self))
        }
    }

    @Test func legacyHookAttributesRowsDropsPaddingAndDummyRunsAndIsRemovable() throws {
        let result = try runPython(
            """
            import types, torch, numpy as np
            from speculative_moe.capture import RoutingCapture, LEGACY_MODULE

            class FusedMoE(torch.nn.Module):
                # Old vLLM: a static select_experts; the layer calls it from forward.
                @staticmethod
                def select_experts(hidden_states, router_logits, top_k=2):
                    w, i = torch.topk(torch.softmax(router_logits, -1), top_k, dim=-1)
                    return w / w.sum(-1, keepdim=True), i.to(torch.int32)
                def __init__(self, seed):
                    super().__init__()
                    self.seed = seed
                def forward(self, h):
                    g = torch.Generator().manual_seed(self.seed)
                    logits = torch.randn(h.shape[0], 8, generator=g)
                    FusedMoE.select_experts(h, logits)
                    return h

            class Model(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = torch.nn.ModuleList([torch.nn.Module() for _ in range(3)])
                    for n, layer in enumerate(self.layers):
                        layer.experts = FusedMoE(n)
                def forward(self, rows):
                    h = torch.zeros(rows, 4)
                    for layer in self.layers:
                        h = layer.experts(h)
                    return h

            class Buffer:
                def __init__(self, values, dtype):
                    self.cpu = torch.tensor(values, dtype=dtype)
                    self.gpu = self.cpu
                    self.np = self.cpu.numpy()

            class Runner:
                # Two requests; rows are padded to 8 as with CUDA graphs.
                def __init__(self):
                    self.model = Model()
                    self.device = "cpu"
                    self.input_batch = types.SimpleNamespace(num_reqs=2, req_ids=["a-1", "b-2"], num_prompt_tokens=np.array([3, 1]))
                    self.query_start_loc = Buffer([0, 3, 5, 5], torch.int32)
                    self.positions = torch.tensor([0, 1, 2, 1, 2, 0, 0, 0], dtype=torch.int64)
                    self.input_ids = Buffer([10, 11, 12, 20, 21, 0, 0, 0], torch.int32)
                def get_model(self):
                    return self.model
                def _prepare_inputs(self, scheduler_output, num_scheduled):
                    return None
                def execute_model(self, scheduler_output):
                    self._prepare_inputs(scheduler_output, None)
                    self.model(8)
                def dummy_run(self):
                    self.model(4)

            class Sink:
                def __init__(self):
                    self.steps, self.layers, self.ends = [], [], []
                def on_step(self, step, run_index, positions, token_ids, prompt_lengths):
                    assert run_index.dtype == np.int32 and positions.dtype == np.int64 and token_ids.dtype == np.int32
                    assert prompt_lengths.dtype == np.int64
                    self.steps.append((run_index.tolist(), positions.tolist(), token_ids.tolist(), prompt_lengths.tolist()))
                def on_layer(self, layer, ids, weights, logits):
                    assert ids.dtype == np.int32 and weights.dtype == np.float32 and ids.flags.c_contiguous
                    self.layers.append((layer, ids.shape[0]))
                def on_step_end(self, step, routing_ns, moe_ns):
                    self.ends.append((step, routing_ns is None))

            legacy_mod = types.SimpleNamespace(FusedMoE=FusedMoE)
            def imp(name):
                if name == LEGACY_MODULE:
                    return legacy_mod
                raise ImportError(name)
            original = FusedMoE.__dict__["select_experts"]
            runner = Runner()
            sink = Sink()
            cap = RoutingCapture(sink, {"a-1": 0, "b-2": 1}, import_module=imp).install(runner=runner)
            runner.dummy_run()                      # warm-up: no layout, dropped and counted
            runner.execute_model(types.SimpleNamespace(total_num_scheduled_tokens=5))
            cap.remove()
            runner.execute_model(types.SimpleNamespace(total_num_scheduled_tokens=5))   # after removal: nothing
            restored = FusedMoE.__dict__["select_experts"] is original and "execute_model" not in runner.__dict__
            result = (sink.steps, sink.layers, sink.ends, cap.stats, restored, cap.api, cap.layer_names)
            """
        )
        try Python.withGIL { _ in
            let steps = try result.item(0).elements()
            #expect(steps.count == 1)
            let (ri, pos, tok, promptLengths) = try steps[0].tuple(as: [Int].self, [Int].self, [Int].self, [Int].self)
            #expect(ri == [0, 0, 0, 1, 1])
            #expect(pos == [0, 1, 2, 1, 2])
            #expect(tok == [10, 11, 12, 20, 21])
            #expect(promptLengths == [3, 3, 3, 1, 1])
            // Prefill rows: position below the prompt length.
            #expect(zip(pos, promptLengths).map { $0 < $1 } == [true, true, true, false, false])
            let layers = try result.item(1).elements().map { try $0.tuple(as: Int.self, Int.self) }
            #expect(layers.map(\.0) == [0, 1, 2])
            #expect(layers.allSatisfy { $0.1 == 5 })
            let stats = try result.item(3).convert(to: [String: Int].self)
            #expect(stats["unattributed_calls"] == 3)
            #expect(stats["unattributed_rows"] == 12)
            #expect(stats["padding_rows"] == 9)
            #expect(stats["steps"] == 1)
            #expect(try result.item(4).convert(to: Bool.self))
            #expect(try result.item(5).convert(to: String.self) == "legacy")
            #expect(
                try result.item(6).convert(to: [String].self) == [
                    "layers.0.experts", "layers.1.experts", "layers.2.experts",
                ]
            )
            #expect(try result.item(2).elements().count == 1)
        }
    }

    /// Runs `source` in fresh globals and returns its `result`.
    private func runPython(_ source: String) throws -> PythonObject {
        try Python.withGIL { gil in
            let globals = try gil.run(source)
            return try globals.item("result")
        }
    }
}
