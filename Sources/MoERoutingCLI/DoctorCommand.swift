// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERoutingEnvironment

extension MoERoutingCommand {
    /// `moe-routing doctor`: can this machine capture routing in-process?
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the embedded Python, the venv, torch and vLLM.",
            discussion: """
                Prints one line per check ("ok" or "FAIL"), and under each failure one line on how \
                to fix it: the embedded libpython (path, version), the venv (path, Python version), \
                the interpreter start-up, torch (version, device), vLLM (version), and whether vLLM \
                can run its engine in this process. Exits with status 1 when a check fails, that is \
                when `moe-routing collect` could not run. Importing vLLM takes several seconds.

                The venv is, in order: --venv, MOE_ROUTING_VENV, .venv in the checkout when run \
                from inside one, else the per-user default \
                ${XDG_DATA_HOME:-~/.local/share}/speculative-moe/venv (made by `moe-routing setup`).

                Examples:
                  moe-routing doctor
                  moe-routing doctor --venv /data/moe-venv
                """
        )

        @Option(
            help: ArgumentHelp(
                "The venv to check (default: MOE_ROUTING_VENV, else .venv in the checkout, else the per-user venv).",
                valueName: "path"
            )
        )
        var venv: String?

        @Flag(help: "Skip the vLLM checks (they import vLLM, the slow part).")
        var skipVllm = false

        func run() throws {
            let checks = PythonDoctor.run(venvPath: venv, includeVLLM: !skipVllm)
            print(PythonDoctor.render(checks))
            if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
        }
    }
}
