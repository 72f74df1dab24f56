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

__all__ = ["tiny_model", "capture", "engine"]
