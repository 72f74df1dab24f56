// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import PythonRuntime

extension MoERoutingCommand {
    /// `moe-routing setup`: creates or updates the managed Python venv (scripts/setup-python.sh).
    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update the project's Python environment (vLLM, torch, numpy).",
            discussion: """
                Runs scripts/setup-python.sh from the project root and streams its output: installs \
                the Debian packages python3-dev and python3-venv if missing (as root), makes a venv \
                with /usr/bin/python3 (the Python whose libpython moe-routing embeds), installs the \
                pinned packages of python/requirements-cpu.txt (or requirements-gpu.txt with --gpu), \
                and checks that torch and vllm import. A second run changes nothing and takes seconds.

                Examples:
                  moe-routing setup
                  moe-routing setup --venv /data/moe-venv --gpu
                """
        )

        @Option(
            help: ArgumentHelp(
                "Where the venv lives (default: MOE_ROUTING_VENV, else .venv in the project).", valueName: "path"))
        var venv: String?

        @Flag(help: "Install the CUDA build of vLLM (python/requirements-gpu.txt).")
        var gpu = false

        @Flag(help: "Run pip even when the venv is up to date.")
        var force = false

        func run() throws {
            let status = try PythonSetup.run(venvPath: venv, gpu: gpu, force: force)
            if status != 0 { throw ExitCode(status) }
        }
    }
}
