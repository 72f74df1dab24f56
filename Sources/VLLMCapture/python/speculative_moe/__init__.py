# speculative-moe
# SPDX-License-Identifier: Apache-2.0
"""The Python side of speculative-moe's in-process vLLM routing capture.

Modules:
- ``tiny_model``: generates the tiny Mixtral-architecture model used for CPU runs and tests.
- ``capture``: the routing hook installed on vLLM's MoE router at run time (no vLLM file edited).
- ``engine``: the in-process engine driver: datasets, vLLM start-up, the generation loop.

The Swift host (module VLLMCapture) imports this package from its resource bundle; every module
also runs in a plain ``python`` with the project's venv, which is how it is tested on its own.
"""

import threading

__all__ = ["tiny_model", "capture", "engine", "import_lock"]

import_lock = threading.RLock()
"""Held while this package first imports torch, transformers or vLLM, starts an engine, or writes
a tiny model. When two threads import the same cycle of modules at once, Python's per-module
import locks break the deadlock by handing one of them a partially initialised module ("concurrent
circular import"): ``module 'transformers' has no attribute 'MixtralConfig'``, or ``cannot import
name 'AutoModelForCausalLM'``. The Swift host calls in from several threads (its tests run in
parallel), so every such entry point takes this one lock first. Reentrant: an entry point may call
another."""
