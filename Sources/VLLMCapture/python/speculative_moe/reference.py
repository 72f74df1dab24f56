# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""An independent reference for captured routing: transformers' own implementation of the model.

``reference_routing(model_dir, sequences)`` loads the model with transformers
(``AutoModelForCausalLM``: Mixtral, Qwen3-MoE, Qwen2-MoE, OLMoE, DeepSeek-V2/V3, gpt-oss), runs it
on each full token sequence (prompt plus generated tokens, the last generated token excluded
since it is never fed back) and records what each decoder layer's router module returns: its
chosen experts and their weights, computed by transformers' code for that architecture (softmax
or sigmoid scores, grouped top-k, correction bias, renormalisation, routed scaling factor). It
shares nothing with vLLM but the weights on disk. Dense decoder layers (no router) route nothing
and are left out, so reference layer ``i`` is the model's ``i``-th MoE layer, as in a trace.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import import_lock

__all__ = ["check_on_vllm_logits", "reference_routing", "routing_from_logits"]


def _routers(model: Any) -> list[tuple[int, Any]]:
    """``(decoder layer number, router module)`` of every MoE decoder layer, in order."""
    from .tiny_model import _gate_of

    out = []
    for number, layer in enumerate(model.model.layers):
        gate = _gate_of(layer)
        if gate is not None:
            out.append((number, gate))
    return out


def reference_routing(
    model_dir: str, sequences: list[list[int]], top_k: int | None = None, dtype: str = "float32"
) -> list[dict[str, Any]]:
    """For each sequence, ``{"ids": int32 [T, L, k], "weights": float32 [T, L, k],
    "decoder_layers": [int], "routed_scaling_factor": float}``: each cell's experts ordered by
    weight, highest first; the weights as transformers computes them (for DeepSeek, times the
    routed scaling factor). ``top_k`` is accepted for compatibility and must match the model's."""
    with import_lock:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch_dtype = getattr(torch, dtype)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)  # imports the model's module
    model.eval()
    k = int(model.config.num_experts_per_tok)
    if top_k is not None and int(top_k) != k:
        raise ValueError(f"top_k {top_k} differs from the model's num_experts_per_tok {k}")
    scale = float(getattr(model.config, "routed_scaling_factor", 1.0) or 1.0)
    routers = _routers(model)
    calls: list[tuple[Any, Any]] = []

    def record(_module, _inputs, output):
        if not (isinstance(output, tuple) and len(output) == 3):
            raise RuntimeError(
                "this transformers version's router does not return (logits, weights, experts); "
                "transformers 5 or later is needed for the reference"
            )
        calls.append((output[2], output[1]))

    handles = [gate.register_forward_hook(record) for _, gate in routers]
    results = []
    try:
        with torch.inference_mode():
            for seq in sequences:
                calls.clear()
                ids = torch.tensor([list(seq)], dtype=torch.long)
                model(ids, use_cache=False)
                if len(calls) != len(routers):
                    raise RuntimeError(f"{len(calls)} router calls for {len(routers)} MoE layers")
                per_layer = []
                for experts, weights in calls:
                    experts = experts.reshape(len(seq), k).long()
                    weights = weights.reshape(len(seq), -1).float()
                    if weights.shape[1] != k:  # a dense [T, E] score matrix: take the chosen ones
                        weights = weights.gather(1, experts)
                    order = torch.argsort(weights, dim=-1, descending=True, stable=True)
                    per_layer.append((experts.gather(1, order).to(torch.int32), weights.gather(1, order)))
                ids_arr = np.stack([e.numpy() for e, _ in per_layer], axis=1)
                w_arr = np.stack([w.numpy() for _, w in per_layer], axis=1)
                results.append(
                    {
                        "ids": np.ascontiguousarray(ids_arr),
                        "weights": np.ascontiguousarray(w_arr, dtype=np.float32),
                        "decoder_layers": [n for n, _ in routers],
                        "routed_scaling_factor": scale,
                    }
                )
    finally:
        for h in handles:
            h.remove()
    return results


def routing_from_logits(model_dir: str, logits: Any) -> dict[str, Any]:
    """transformers' routing of given router logits: ``logits`` float32 [T, L, E] (one row per
    token, one slice per MoE layer); returns ``{"ids": int32 [T, L, k], "weights": float32
    [T, L, k]}`` ordered by weight, as transformers' router modules compute them (scaling factor
    included). Each router is fed the logits through an identity gate, so its own code (softmax
    or sigmoid, grouped top-k, correction bias, renormalisation, scaling) makes the choice."""
    with import_lock:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)  # imports the model's module
    model.eval()
    routers = [gate for _, gate in _routers(model)]
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 3 or logits.shape[1] != len(routers):
        raise ValueError(f"logits have shape {logits.shape}, expected [T, {len(routers)}, E]")
    ids, weights = [], []
    with torch.inference_mode():
        for layer, gate in enumerate(routers):
            experts = gate.weight.shape[0]
            gate.hidden_dim = experts
            gate.weight = torch.nn.Parameter(torch.eye(experts), requires_grad=False)
            if getattr(gate, "bias", None) is not None:
                gate.bias = torch.nn.Parameter(torch.zeros(experts), requires_grad=False)
            _, w, e = gate(torch.from_numpy(np.ascontiguousarray(logits[:, layer, :])))
            w = w.float()
            if w.shape[1] != e.shape[1]:
                w = w.gather(1, e.long())
            order = torch.argsort(w, dim=-1, descending=True, stable=True)
            ids.append(e.long().gather(1, order).to(torch.int32).numpy())
            weights.append(w.gather(1, order).numpy())
    return {"ids": np.ascontiguousarray(np.stack(ids, axis=1)), "weights": np.ascontiguousarray(np.stack(weights, axis=1))}


def check_on_vllm_logits(model_dir: str, max_tokens: int = 8) -> dict[str, Any]:
    """Runs vLLM on ``model_dir`` (float32, in this process) with the routing hook capturing
    router logits, then compares each captured (token, layer) with :func:`routing_from_logits`
    on vLLM's own logits: the routing step alone, independent of how the two implementations
    compute the hidden states. Returns ``{"cells", "agree", "max_weight_difference",
    "routed_scaling_factor", "weight_scale"}`` (weights compared on transformers' scale)."""
    from . import engine as engine_module

    engine_module.configure_environment(verbose=False)
    eng = engine_module.Engine(
        engine_module.EngineOptions(model=model_dir, dtype="float32", max_model_len=512, max_tokens=max_tokens, ignore_eos=True)
    )
    facts = eng.describe()["routing"]

    class Sink:
        def __init__(self):
            self.rows: Any = None
            self.cells: list[tuple[Any, Any, Any, int]] = []

        def on_step(self, step, run_index, positions, token_ids, prompt_lengths):
            self.rows = len(positions)

        def on_layer(self, layer, ids, weights, logits):
            self.cells.append((ids.copy(), weights.copy(), logits.copy(), layer))

        def on_step_end(self, *args):
            pass

        def on_request_finished(self, *args):
            pass

    sink = Sink()
    problems = [
        {"domain": "code", "problem_id": 0, "prompt": "def add(a, b):\n    return a + b\n", "source_id": "code/0"},
        {"domain": "math", "problem_id": 1, "prompt": "Natalia sold clips to 48 of her friends in April", "source_id": "math/1"},
    ]
    eng.generate(problems, sink=sink, router_logits=True)
    layers = max(layer for *_, layer in sink.cells) + 1
    ids = np.concatenate([c[0] for c in sink.cells])
    weights = np.concatenate([c[1] for c in sink.cells])
    logits = np.concatenate([c[2] for c in sink.cells])
    layer_of_row = np.concatenate([np.full(len(c[0]), c[3]) for c in sink.cells])
    # Feed every row through every layer's router and keep the row's own layer.
    stacked = np.repeat(logits[:, None, :], layers, axis=1)
    ref = routing_from_logits(model_dir, stacked)
    to_reference = float(facts["routed_scaling_factor"]) / float(facts["weight_scale"])
    agree, max_diff = 0, 0.0
    for r in range(len(ids)):
        layer = int(layer_of_row[r])
        order = np.argsort(-weights[r], kind="stable")
        if set(ids[r].tolist()) == set(ref["ids"][r, layer].tolist()):
            agree += 1
            diff = np.abs(weights[r][order] * to_reference - ref["weights"][r, layer])
            max_diff = max(max_diff, float(diff.max()))
    return {
        "cells": int(len(ids)),
        "agree": agree,
        "max_weight_difference": max_diff,
        "routed_scaling_factor": float(facts["routed_scaling_factor"]),
        "weight_scale": float(facts["weight_scale"]),
    }


if __name__ == "__main__":
    import json
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "check-on-vllm-logits":
        print("usage: python -m speculative_moe.reference check-on-vllm-logits MODEL_DIR", file=sys.stderr)
        sys.exit(2)
    print("RESULT " + json.dumps(check_on_vllm_logits(sys.argv[2])))
