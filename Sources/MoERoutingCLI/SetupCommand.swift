// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERoutingEnvironment

extension MoERoutingCommand {
    /// `moe-routing setup`: creates or updates the managed Python venv with the set-up script
    /// that ships with the tool.
    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update moe-routing's Python environment (vLLM, torch, numpy).",
            discussion: """
                Runs the set-up script that ships with moe-routing (beside the binary, in \
                speculative-moe_MoERoutingEnvironment.resources/setup/; from a checkout \
                scripts/setup-python.sh runs the same file) and streams its output: installs the \
                Debian packages python3-dev, python3-venv and pkg-config if missing (as root or \
                with sudo), makes a venv with /usr/bin/python3 (the Python whose libpython \
                moe-routing embeds), installs the pinned packages of requirements-cpu.txt (or \
                requirements-gpu.txt with --gpu), and checks that torch and vllm import. A second \
                run changes nothing and takes seconds. Works outside a checkout too.

                The venv is, in order: --venv, MOE_ROUTING_VENV, .venv in the checkout when run \
                from inside one, else the per-user default \
                ${XDG_DATA_HOME:-~/.local/share}/speculative-moe/venv. --dry-run prints the venv, \
                the rule that chose it and the script, and changes nothing.

                Examples:
                  moe-routing setup
                  moe-routing setup --venv /data/moe-venv --gpu
                  moe-routing setup --dry-run
                """
        )

        @Option(
            help: ArgumentHelp(
                "Where the venv lives (default: MOE_ROUTING_VENV, else .venv in the checkout, else the per-user venv).",
                valueName: "path"
            )
        )
        var venv: String?

        @Flag(help: "Install the CUDA build of vLLM (requirements-gpu.txt).")
        var gpu = false

        @Flag(help: "Run pip even when the venv is up to date.")
        var force = false

        @Flag(help: "Print the venv, why that one, and the script that would run; change nothing.")
        var dryRun = false

        func run() throws {
            let plan = try PythonSetup.plan(venvPath: venv, gpu: gpu, force: force)
            if dryRun {
                print(plan.summary)
                return
            }
            let status = try PythonSetup.run(plan)
            if status != 0 { throw ExitCode(status) }
        }
    }
}
