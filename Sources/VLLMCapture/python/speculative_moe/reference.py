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

__all__ = ["reference_routing"]


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
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
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
