// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTestKit
public import PythonRuntime

/// Shared set-up for the Python and environment tests (PythonRuntimeTests,
/// MoERoutingEnvironmentTests): the project root, the venv, and one interpreter started once for
/// the whole (parallel) test process, never finalised.
public enum TestPython {
    /// The package root: the directory holding Package.swift above this file.
    public static let projectRoot: String =
        TestPaths.packageRoot(from: #filePath)?.path ?? FileManager.default.currentDirectoryPath

    /// The venv the tests use: MOE_ROUTING_VENV, else <root>/.venv (the runtime itself never
    /// searches for a venv).
    public static let environment: PythonEnvironment = {
        if let path = ProcessInfo.processInfo.environment["MOE_ROUTING_VENV"], !path.isEmpty {
            return PythonEnvironment(path: path)
        }
        return PythonEnvironment(path: projectRoot + "/.venv")
    }()

    /// Whether the interpreter runs on the venv and numpy imports; prints why not otherwise.
    public static let available: Bool = {
        do {
            try Python.initialize(environment: environment)
            try Python.withGIL { gil throws in _ = try gil.import("numpy") }
            return true
        } catch {
            return TestRequirements.unavailable("the Python tests need the venv with numpy", error)
        }
    }()

    /// Whether vLLM is installed in the venv (checked on disk, without importing it).
    public static let hasVLLM: Bool = {
        let lib = environment.path + "/lib"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []
        let found = versions.contains {
            FileManager.default.fileExists(atPath: "\(lib)/\($0)/site-packages/vllm/__init__.py")
        }
        if !found {
            return TestRequirements.unavailable("vLLM tests", because: "vLLM is not installed in \(environment.path)")
        }
        return found
    }()

    /// A fresh temporary directory.
    public static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "moe-python-tests-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A directory that looks like a venv made by Python `version` (`bin/python` is an empty file).
    public static func fakeVenv(version: String) throws -> PythonEnvironment {
        let path = try temporaryDirectory("venv")
        try FileManager.default.createDirectory(atPath: path + "/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path + "/bin/python", contents: Data())
        let config = "home = /usr/bin\ninclude-system-site-packages = false\nversion = \(version)\n"
        try config.write(toFile: path + "/pyvenv.cfg", atomically: true, encoding: .utf8)
        return PythonEnvironment(path: path)
    }
}
