// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingEnvironment
import MoERoutingTestKit
import PythonRuntime

/// Shared set-up for the environment tests: the project root, the venv, and one interpreter
/// started once for the whole (parallel) test process, never finalised.
enum TestPython {
    /// The package root: the directory holding Package.swift above this file.
    static let projectRoot: String =
        TestPaths.packageRoot(from: #filePath)?.path ?? FileManager.default.currentDirectoryPath

    /// The venv the tests use: MOE_ROUTING_VENV, else <root>/.venv.
    static let environment: PythonEnvironment = {
        if let path = ProcessInfo.processInfo.environment[MoERoutingVenv.environmentVariable], !path.isEmpty {
            return PythonEnvironment(path: path)
        }
        return PythonEnvironment(path: projectRoot + "/.venv")
    }()

    /// Whether the interpreter runs on the venv and numpy imports; prints why not otherwise.
    static let available: Bool = {
        do {
            try Python.initialize(environment: environment)
            try Python.withGIL { gil throws in _ = try gil.import("numpy") }
            return true
        } catch {
            return TestRequirements.unavailable("the Python tests need the venv with numpy", error)
        }
    }()

    /// Whether vLLM is installed in the venv (checked on disk, without importing it).
    static let hasVLLM: Bool = {
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
    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "moe-environment-tests-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A directory that looks like a venv made by Python `version` (`bin/python` is an empty file).
    static func fakeVenv(version: String) throws -> PythonEnvironment {
        let path = try temporaryDirectory("venv")
        try FileManager.default.createDirectory(atPath: path + "/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path + "/bin/python", contents: Data())
        let config = "home = /usr/bin\ninclude-system-site-packages = false\nversion = \(version)\n"
        try config.write(toFile: path + "/pyvenv.cfg", atomically: true, encoding: .utf8)
        return PythonEnvironment(path: path)
    }
}
