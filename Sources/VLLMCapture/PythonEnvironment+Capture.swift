// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The venv a capture runs on, reachable from `import VLLMCapture` alone.

public import Foundation
import MoERoutingEnvironment
public import PythonRuntime

extension PythonEnvironment {
    /// The venv a capture runs on: `MoERoutingVenv.locate(...)`'s, in its documented order
    /// (`--venv`, `MOE_ROUTING_VENV`, the checkout's `.venv`, the per-user default).
    ///
    /// ```swift
    /// try CapturePythonPackage.prepare(environment: PythonEnvironment.locate(explicitPath: options.venv))
    /// ```
    ///
    /// - Throws: `MoERoutingEnvironmentError.noUserDataDirectory` when the per-user default is
    ///   needed but neither `XDG_DATA_HOME` nor `HOME` is set.
    public static func locate(
        explicitPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> PythonEnvironment {
        try MoERoutingVenv.locate(
            explicitPath: explicitPath,
            environment: environment,
            currentDirectory: currentDirectory,
            executablePath: executablePath
        ).environment
    }
}
