// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Runs `scripts/setup-python.sh`, which creates or updates the managed venv (behind
/// `moe-routing setup`). Touches no Python in this process.
///
/// ```swift
/// let status = try PythonSetup.run(venvPath: options.venv, gpu: false)
/// ```
public enum PythonSetup {
    /// The script's path inside a project root.
    public static func scriptPath(projectRoot: String) -> String {
        projectRoot + "/scripts/setup-python.sh"
    }

    /// The command line that ``run(projectRoot:venvPath:gpu:force:)`` executes (for display and
    /// tests).
    public static func arguments(script: String, venvPath: String?, gpu: Bool, force: Bool) -> [String] {
        var arguments = [script]
        if let venvPath, !venvPath.isEmpty { arguments += ["--venv", venvPath] }
        if gpu { arguments.append("--gpu") }
        if force { arguments.append("--force") }
        return arguments
    }

    /// Runs the setup script with `/bin/bash`; its output goes straight to this process's
    /// standard output and error, line by line as it prints.
    ///
    /// - Parameters:
    ///   - projectRoot: the project root; found from the current directory (or the executable)
    ///     when `nil`.
    ///   - venvPath: `--venv PATH` (relative paths are taken from the current directory); the
    ///     script's default (`MOE_ROUTING_VENV`, else `<root>/.venv`) when `nil`.
    ///   - gpu: install the CUDA build of vLLM.
    ///   - force: run pip even when the venv's stamp says it is up to date.
    /// - Returns: the script's exit status (0 on success).
    /// - Throws: ``PythonRuntimeError/projectRootNotFound(searchedFrom:)``,
    ///   ``PythonRuntimeError/setupScriptMissing(path:)``, or an error launching bash.
    public static func run(projectRoot: String? = nil, venvPath: String? = nil, gpu: Bool = false, force: Bool = false)
        throws -> Int32
    {
        let root = try projectRoot ?? PythonEnvironment.projectRoot()
        let script = scriptPath(projectRoot: root)
        guard FileManager.default.fileExists(atPath: script) else {
            throw PythonRuntimeError.setupScriptMissing(path: script)
        }
        let venv = venvPath.map {
            PythonEnvironment.absolute($0, relativeTo: FileManager.default.currentDirectoryPath)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments(script: script, venvPath: venv, gpu: gpu, force: force)
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        // Standard output and error are inherited: the script's output streams as it comes.
        try process.run()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return 128 + process.terminationStatus }
        return process.terminationStatus
    }
}
