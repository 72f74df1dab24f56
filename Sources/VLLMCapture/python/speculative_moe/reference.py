# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""An independent reference for captured routing: transformers' own Mixtral implementation.

``reference_routing(model_dir, sequences)`` runs ``MixtralForCausalLM`` with
``output_router_logits=True`` on each full token sequence (prompt plus generated tokens, the last
generated token excluded since it is never fed back), then softmax, top-k and renormalisation,
exactly as Mixtral routes. It shares nothing with vLLM but the weights on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["reference_routing"]


def reference_routing(model_dir: str, sequences: list[list[int]], top_k: int | None = None, dtype: str = "float32") -> list[dict[str, Any]]:
    """For each sequence, ``{"ids": int32 [T, L, k], "weights": float32 [T, L, k]}`` with each
    cell's experts ordered by weight, highest first."""
    import torch
    from transformers import MixtralForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch_dtype = getattr(torch, dtype)
    model = MixtralForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
    model.eval()
    k = top_k or int(model.config.num_experts_per_tok)
    results = []
    with torch.inference_mode():
        for seq in sequences:
            ids = torch.tensor([list(seq)], dtype=torch.long)
            out = model(ids, output_router_logits=True, use_cache=False)
            per_layer = []
            for logits in out.router_logits:
                logits = logits.reshape(len(seq), -1).float()
                probs = torch.softmax(logits, dim=-1)
                w, e = torch.topk(probs, k, dim=-1, sorted=True)
                w = w / w.sum(dim=-1, keepdim=True)
                per_layer.append((e.to(torch.int32), w.to(torch.float32)))
            ids_arr = np.stack([e.numpy() for e, _ in per_layer], axis=1)
            w_arr = np.stack([w.numpy() for _, w in per_layer], axis=1)
            results.append({"ids": np.ascontiguousarray(ids_arr), "weights": np.ascontiguousarray(w_arr)})
    return results
