# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""Generates the tiny Mixtral-architecture model that CPU runs and tests use.

The model has random weights drawn with a fixed seed (vocabulary 1024, hidden 128, intermediate
256, 4 layers, 4 heads, 2 key/value heads, 8 experts, top-2, float32: 3.6M parameters, about
14 MB) and a byte-level BPE tokenizer trained here on a small built-in corpus of code and
arithmetic text, padded to the model's vocabulary so every id decodes. The router (gate) weights
are drawn with a standard deviation of 0.5 instead of the default 0.02 so routing is decisive
(no near-ties) and reproducible across dtypes.

Generation is idempotent: a directory that already holds a model made from the same
configuration (same hash in ``speculative_moe_tiny.json``) is left alone.

    python -m speculative_moe.tiny_model [DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from . import import_lock

#: Bumped whenever the generator changes what it writes for the same configuration.
GENERATOR_VERSION = 1

#: The stamp file written last: its presence with a matching hash means the model is complete.
STAMP_FILE = "speculative_moe_tiny.json"

#: The model configuration (MixtralConfig keyword arguments).
TINY_CONFIG = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "max_position_embeddings": 2048,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}

#: Seed of the weights, and the gate weights' standard deviation.
SEED = 20240607
GATE_STD = 0.5

# The other architectures share the Mixtral model's vocabulary, widths, heads and tokenizer.
_COMMON = {
    "vocab_size": 1024,
    "hidden_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}

#: Every architecture the generator makes: the transformers configuration and model classes and
#: their keyword arguments. Each has 4 decoder layers and 8 routed experts, top-2, float32, and
#: the routing feature that tells it apart (comments). Hidden and intermediate sizes are
#: multiples of 32 and head dims 32 or 64, as vLLM's CPU kernels need.
# The tiny DeepSeek-V2 and V3 share their layout: multi-head latent attention (kv_lora_rank 512 +
# rope 64: the 576-wide latent cache is the only size vLLM's CPU MLA kernel takes), a dense first
# layer (first_k_dense_replace), one shared expert beside 8 routed ones, top-2.
_DEEPSEEK_COMMON = {
    "num_hidden_layers": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 256,
    "moe_intermediate_size": 128,
    "n_routed_experts": 8,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 512,
    "q_lora_rank": None,
    "qk_nope_head_dim": 64,
    "qk_rope_head_dim": 64,
    "v_head_dim": 64,
}

ARCHITECTURES: dict[str, dict] = {
    "mixtral": {"config": "MixtralConfig", "model": "MixtralForCausalLM", "kwargs": TINY_CONFIG},
    # A dense first decoder layer (mlp_only_layers): 3 MoE layers, decoder layers 1-3.
    "qwen3-moe": {
        "config": "Qwen3MoeConfig",
        "model": "Qwen3MoeForCausalLM",
        "kwargs": {
            **_COMMON,
            "num_hidden_layers": 4,
            "head_dim": 32,
            "intermediate_size": 256,
            "moe_intermediate_size": 128,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "norm_topk_prob": True,
            "decoder_sparse_step": 1,
            "mlp_only_layers": [0],
        },
    },
    # One shared expert beside the routed ones, gated by its own sigmoid; top-k not renormalised.
    "qwen2-moe": {
        "config": "Qwen2MoeConfig",
        "model": "Qwen2MoeForCausalLM",
        "kwargs": {
            **_COMMON,
            "num_hidden_layers": 4,
            "intermediate_size": 256,
            "moe_intermediate_size": 128,
            "shared_expert_intermediate_size": 256,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "norm_topk_prob": False,
        },
    },
    # norm_topk_prob = false: the weights are the softmax probabilities of the chosen experts.
    "olmoe": {
        "config": "OlmoeConfig",
        "model": "OlmoeForCausalLM",
        "kwargs": {
            **_COMMON,
            "num_hidden_layers": 4,
            "intermediate_size": 128,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "norm_topk_prob": False,
        },
    },
    # The shared DeepSeek layout; group-limited greedy top-k over softmax scores, routed scaling
    # factor 2.
    "deepseek-v2": {
        "config": "DeepseekV2Config",
        "model": "DeepseekV2ForCausalLM",
        "kwargs": {
            **_COMMON,
            **_DEEPSEEK_COMMON,
            "topk_method": "group_limited_greedy",
            "n_group": 2,
            "topk_group": 1,
            "routed_scaling_factor": 2.0,
            "norm_topk_prob": False,
            "scoring_func": "softmax",
        },
    },
    # Sigmoid scores, e_score_correction_bias steering the choice (noaux_tc), grouped top-k
    # (4 groups, 2 kept), renormalised, routed scaling factor 2.5; a dense first layer.
    "deepseek-v3": {
        "config": "DeepseekV3Config",
        "model": "DeepseekV3ForCausalLM",
        "kwargs": {
            **_COMMON,
            **_DEEPSEEK_COMMON,
            "topk_method": "noaux_tc",
            "n_group": 4,
            "topk_group": 2,
            "routed_scaling_factor": 2.5,
            "norm_topk_prob": True,
            "scoring_func": "sigmoid",
            "num_nextn_predict_layers": 0,
        },
    },
    # Router with a bias; softmax over the top-k logits; alternating sliding/full attention.
    "gpt-oss": {
        "config": "GptOssConfig",
        "model": "GptOssForCausalLM",
        "kwargs": {
            **_COMMON,
            "num_hidden_layers": 4,
            "head_dim": 64,
            "intermediate_size": 128,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "sliding_window": 128,
            "layer_types": ["sliding_attention", "full_attention"] * 2,
        },
    },
}

#: Standard deviation of DeepSeek-V3's random e_score_correction_bias: large enough that the bias
#: changes the choice for some tokens, so a capture that ignored it would be caught.
BIAS_STD = 0.2

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]

# A small corpus of code and arithmetic text: enough for the BPE merges to be meaningful on
# HumanEval and GSM8K prompts. Not a language model's training data: the weights are random.
_CORPUS = [
    'def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n    return a + b\n',
    "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n"
    "            if idx != idx2:\n                distance = abs(elem - elem2)\n"
    "                if distance < threshold:\n                    return True\n    return False\n",
    "def separate_paren_groups(paren_string: str) -> List[str]:\n    result = []\n    current_string = []\n"
    "    current_depth = 0\n    for c in paren_string:\n        if c == '(':\n            current_depth += 1\n"
    "            current_string.append(c)\n        elif c == ')':\n            current_depth -= 1\n"
    "            current_string.append(c)\n            if current_depth == 0:\n"
    "                result.append(''.join(current_string))\n                current_string.clear()\n    return result\n",
    "class Solution:\n    def __init__(self, values):\n        self.values = list(values)\n\n"
    "    def total(self):\n        return sum(self.values)\n\n    def mean(self):\n"
    "        if not self.values:\n            raise ValueError('empty')\n        return self.total() / len(self.values)\n",
    "import math\n\n\ndef is_prime(n):\n    if n < 2:\n        return False\n    for k in range(2, int(math.sqrt(n)) + 1):\n"
    "        if n % k == 0:\n            return False\n    return True\n\n\nprint([x for x in range(100) if is_prime(x)])\n",
    "def fib(n: int) -> int:\n    \"\"\"Return n-th Fibonacci number.\n    >>> fib(10)\n    55\n    \"\"\"\n"
    "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\n"
    "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in April and May.\n#### 72\n",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?\nWeng earns 12/60 = $0.2 per minute. Working 50 minutes, she earned 0.2 x 50 = $10.\n#### 10\n",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
    "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents. "
    "How much more money does Betty need to buy the wallet?\n"
    "In the beginning, Betty has only 100 / 2 = $50. Betty's grandparents gave her 15 * 2 = $30. "
    "This means, Betty needs 100 - 50 - 30 - 15 = $5 more.\n#### 5\n",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year? "
    "He writes each friend 3*2=6 pages a week. So he writes 6*2=12 pages every week. "
    "That means he writes 12*52=624 pages a year.\n#### 624\n",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take? "
    "It takes 2/2=1 bolt of white fiber. So the total amount of fabric is 2+1=3 bolts of fabric.\n#### 3\n",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?\n",
    "Question: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot? "
    "Answer: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n",
    "The quick brown fox jumps over the lazy dog. Write a function that returns the number of words in a "
    "sentence, the longest word, and the list of words sorted by length then alphabetically.\n",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 25 30 40 50 60 70 80 90 100 1000 "
    "+ - * / = < > <= >= == != ( ) [ ] { } : ; , . ' \" # @ % $ & | ^ ~ ` \\ \t\n",
]


def _architecture(arch: str) -> dict:
    spec = ARCHITECTURES.get(arch)
    if spec is None:
        raise ValueError(f"unknown tiny-model architecture '{arch}': use one of {', '.join(ARCHITECTURES)}")
    return spec


def config_hash(arch: str = "mixtral") -> str:
    """A hash of everything that determines the generated files (the Mixtral one unchanged since
    generator version 1, so existing tiny-mixtral directories stay current)."""
    spec = _architecture(arch)
    fields = {
        "config": spec["kwargs"],
        "seed": SEED,
        "gate_std": GATE_STD,
        "special": SPECIAL_TOKENS,
        "corpus": hashlib.sha256("\x00".join(_CORPUS).encode()).hexdigest(),
        "generator": GENERATOR_VERSION,
    }
    if arch != "mixtral":
        fields["architecture"] = arch
        fields["bias_std"] = BIAS_STD
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def default_model_dir(project_root: str | None = None, arch: str = "mixtral") -> str:
    """``<project root>/models/tiny-<arch>`` (the project root holds Package.swift)."""
    _architecture(arch)
    root = project_root
    if root is None:
        here = os.path.dirname(os.path.abspath(__file__))
        probe = here
        while probe != os.path.dirname(probe):
            if os.path.exists(os.path.join(probe, "Package.swift")):
                root = probe
                break
            probe = os.path.dirname(probe)
        if root is None:
            root = os.getcwd()
    return os.path.join(root, "models", f"tiny-{arch}")


def is_current(path: str, arch: str = "mixtral") -> bool:
    """Whether ``path`` holds a complete ``arch`` model made from the current configuration."""
    stamp = os.path.join(path, STAMP_FILE)
    try:
        with open(stamp, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    if info.get("config_hash") != config_hash(arch):
        return False
    needed = ["config.json", "tokenizer.json", "tokenizer_config.json"]
    if not all(os.path.exists(os.path.join(path, n)) for n in needed):
        return False
    return any(n.endswith(".safetensors") for n in os.listdir(path))


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    have = tok.get_vocab_size()
    if have < vocab_size:
        # Pad so every id the model can emit decodes to something.
        tok.add_tokens([f"<|pad_{i}|>" for i in range(vocab_size - have)])
    if tok.get_vocab_size() != vocab_size:
        raise RuntimeError(f"tokenizer has {tok.get_vocab_size()} tokens, expected {vocab_size}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )


def generate(path: str, force: bool = False, arch: str = "mixtral") -> dict:
    """Writes the tiny ``arch`` model into ``path`` unless a current one is there.

    Returns ``{"path", "created", "config_hash", "architecture"}``.
    """
    spec = _architecture(arch)
    # One writer at a time (a second caller for the same path then finds it current), and
    # transformers' lazy classes resolved by one thread at a time (see ``import_lock``).
    with import_lock:
        return _generate_locked(spec, os.path.abspath(path), force, arch)


def _generate_locked(spec: dict, path: str, force: bool, arch: str) -> dict:
    if not force and is_current(path, arch):
        return {"path": path, "created": False, "config_hash": config_hash(arch), "architecture": arch}
    import torch
    import transformers

    os.makedirs(path, exist_ok=True)
    stamp = os.path.join(path, STAMP_FILE)
    if os.path.exists(stamp):
        os.remove(stamp)  # an interrupted rewrite must not look complete

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(SEED)
        config = getattr(transformers, spec["config"])(**spec["kwargs"], torch_dtype="float32")
        model = getattr(transformers, spec["model"])(config).to(torch.float32)
        gen = torch.Generator().manual_seed(SEED + 1)
        with torch.no_grad():
            for layer in model.model.layers:
                gate = _gate_of(layer)
                if gate is None:
                    continue  # a dense layer
                gate.weight.copy_(torch.randn(gate.weight.shape, generator=gen) * GATE_STD)
                bias = getattr(gate, "e_score_correction_bias", None)
                if bias is not None:
                    bias.copy_(torch.randn(bias.shape, generator=gen) * BIAS_STD)
        model.eval()
        model.save_pretrained(path, safe_serialization=True)
    finally:
        torch.random.set_rng_state(state)
    tokenizer = _train_tokenizer(spec["kwargs"]["vocab_size"])
    tokenizer.save_pretrained(path)
    with open(stamp, "w", encoding="utf-8") as f:
        json.dump(
            {
                "config_hash": config_hash(arch),
                "config": spec["kwargs"],
                "seed": SEED,
                "gate_std": GATE_STD,
                **({} if arch == "mixtral" else {"architecture": arch}),
            },
            f,
            indent=2,
            sort_keys=True,
        )
        f.write("\n")
    return {"path": path, "created": True, "config_hash": config_hash(arch), "architecture": arch}


def _gate_of(layer):
    """The router of a transformers MoE decoder layer (the module holding the [E, hidden] gate
    weight: ``mlp.gate`` in 4.x and 5.x, ``block_sparse_moe.gate`` in older Mixtral code,
    ``mlp.router`` in gpt-oss), or ``None`` for a dense layer."""
    for name in ("mlp", "block_sparse_moe"):
        moe = getattr(layer, name, None)
        if moe is None:
            continue
        for gate_name in ("gate", "router"):
            gate = getattr(moe, gate_name, None)
            if gate is not None and hasattr(gate, "weight"):
                return gate
    if any(hasattr(getattr(layer, n, None), "gate_proj") for n in ("mlp",)):
        return None
    raise RuntimeError("cannot find the router gate of a decoder layer in this transformers version")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a tiny random Mixture-of-Experts model.")
    parser.add_argument("path", nargs="?", default=None, help="output directory (default: <project>/models/tiny-<arch>)")
    parser.add_argument("--arch", default="mixtral", choices=sorted(ARCHITECTURES), help="architecture (default: mixtral)")
    parser.add_argument("--force", action="store_true", help="rewrite even when a current model is there")
    args = parser.parse_args(argv)
    result = generate(args.path or default_model_dir(arch=args.arch), force=args.force, arch=args.arch)
    verb = "generated" if result["created"] else "up to date"
    print(f"tiny {args.arch} model {verb}: {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
