// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation
import PythonRuntime

/// Creates or updates `moe-routing`'s venv (behind `moe-routing setup`) by running the set-up
/// script that ships with the tool (``SetupFiles``), on the venv ``MoERoutingVenv`` finds.
/// Touches no Python in this process; works inside a checkout and outside one.
///
/// ```swift
/// let plan = try PythonSetup.plan(venvPath: options.venv, gpu: false)
/// print(plan.summary)          // what --dry-run prints
/// let status = try PythonSetup.run(plan)
/// ```
public enum PythonSetup {
    /// What a set-up run will do: the venv (and why that one), the script, the command line.
    public struct Plan: Sendable, Hashable {
        /// The venv the script creates or updates.
        public var venv: MoERoutingVenv.Location
        /// The shipped `setup-python.sh`.
        public var script: String
        /// The script and its arguments, run with `/bin/bash`.
        public var arguments: [String]

        /// Three lines: `venv: PATH (RULE)`, `script: PATH`, `command: /bin/bash ...`.
        public var summary: String {
            """
            venv: \(venv.environment.path) (\(venv.source))
            script: \(script)
            command: /bin/bash \(arguments.joined(separator: " "))
            """
        }
    }

    /// The checkout's entry point, `<root>/scripts/setup-python.sh` (it execs the shipped copy
    /// in `Sources/MoERoutingEnvironment/setup/`).
    public static func scriptPath(projectRoot: String) -> String {
        projectRoot + "/scripts/setup-python.sh"
    }

    /// The script's command line (for display and tests).
    public static func arguments(script: String, venvPath: String?, gpu: Bool, force: Bool) -> [String] {
        var arguments = [script]
        if let venvPath, !venvPath.isEmpty { arguments += ["--venv", venvPath] }
        if gpu { arguments.append("--gpu") }
        if force { arguments.append("--force") }
        return arguments
    }

    /// Finds the venv and the shipped script, and checks that the script's files are there;
    /// changes nothing.
    ///
    /// - Parameters:
    ///   - venvPath: `--venv PATH`; else the order of ``MoERoutingVenv``.
    ///   - gpu: install the CUDA build of vLLM.
    ///   - force: run pip even when the venv's stamp says it is up to date.
    ///   - setupDirectories: where to look for the shipped files (``SetupFiles/candidates(executablePath:)``).
    /// - Throws: ``MoERoutingEnvironmentError/setupScriptMissing(searched:)`` or
    ///   ``MoERoutingEnvironmentError/noUserDataDirectory``.
    public static func plan(
        venvPath: String? = nil,
        gpu: Bool = false,
        force: Bool = false,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first,
        setupDirectories: [String]? = nil
    ) throws -> Plan {
        let directory = try SetupFiles.locate(
            in: setupDirectories ?? SetupFiles.candidates(executablePath: executablePath)
        )
        let venv = try MoERoutingVenv.locate(
            explicitPath: venvPath,
            environment: environment,
            currentDirectory: currentDirectory,
            executablePath: executablePath
        )
        let script = directory + "/" + SetupFiles.scriptName
        return Plan(
            venv: venv,
            script: script,
            arguments: arguments(script: script, venvPath: venv.environment.path, gpu: gpu, force: force)
        )
    }

    /// Runs the plan's script with `/bin/bash` in the current directory; its output goes straight
    /// to this process's standard output and error, line by line as it prints.
    ///
    /// - Returns: the script's exit status (0 on success; 128 + the signal when killed).
    /// - Throws: an error launching bash.
    public static func run(_ plan: Plan) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = plan.arguments
        // Standard output and error are inherited: the script's output streams as it comes.
        try process.run()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return 128 + process.terminationStatus }
        return process.terminationStatus
    }
}
