// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Finds the `speculative_moe` Python package shipped as this module's resource, and prepares the
// embedded interpreter to import it.

public import Foundation
import MoERoutingEnvironment
public import PythonRuntime

/// The `speculative_moe` Python package (the hook, the engine driver, the tiny-model generator),
/// shipped in this module's resource bundle, and the one-time set-up of the embedded interpreter.
///
/// ```swift
/// try CapturePythonPackage.prepare(environment: PythonEnvironment.locate())
/// let problems = try CapturePythonPackage.loadProblems(DatasetSpec(name: "gsm8k", file: "gsm8k.jsonl"))
/// ```
public enum CapturePythonPackage {
    /// The environment variable that overrides where the package is looked for (the directory
    /// that holds `speculative_moe/`).
    public static let environmentVariable = "MOE_ROUTING_PYTHON_PATH"
    /// The resource bundle's directory name next to the executable.
    static let bundleName = "speculative-moe_VLLMCapture.resources"

    /// The directories searched, in order: `MOE_ROUTING_PYTHON_PATH`, the resource bundle beside
    /// the main executable, then the source tree this module was built from.
    public static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var out: [String] = []
        if let p = environment[environmentVariable], !p.isEmpty { out.append(p) }
        out.append(Bundle.main.bundleURL.appendingPathComponent(bundleName).appendingPathComponent("python").path)
        if let exe = CommandLine.arguments.first, exe.contains("/") {
            let dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            out.append(dir.appendingPathComponent(bundleName).appendingPathComponent("python").path)
        }
        out.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("python").path)
        return out
    }

    /// The directory holding `speculative_moe/`.
    ///
    /// - Throws: ``CaptureError/packageMissing(searched:)`` naming every place searched.
    public static func locate() throws -> String {
        let all = candidates()
        for dir in all where FileManager.default.fileExists(atPath: dir + "/speculative_moe/__init__.py") {
            return dir
        }
        throw CaptureError.packageMissing(searched: all)
    }

    /// Starts the interpreter on `environment` (idempotent), puts the package on `sys.path`, and
    /// sets quiet defaults for vLLM and transformers before they are imported: vLLM's log goes to
    /// standard error at WARNING level (INFO when `verbose`), progress bars off. Variables the
    /// user already set win.
    ///
    /// - Throws: `MoERoutingEnvironmentError` (venv missing or mismatched, with how to set it
    ///   up), ``PythonRuntimeError``, ``CaptureError``.
    public static func prepare(environment: PythonEnvironment, verbose: Bool = false) throws {
        let directory = try locate()
        try MoERoutingVenv.startPython(on: environment)
        try Python.withGIL { gil in
            let globals = try gil.newGlobals()
            try globals.setItem("package_dir", to: directory)
            try globals.setItem("verbose", to: verbose)
            do {
                try gil.run(
                    """
                    import os, sys
                    if package_dir not in sys.path:
                        sys.path.insert(0, package_dir)
                    import speculative_moe.engine as _engine
                    _engine.configure_environment(verbose=verbose)
                    """,
                    globals: globals,
                    filename: "<speculative-moe bootstrap>"
                )
            } catch let error as PythonError {
                throw CaptureError.python(error, during: "loading the speculative_moe package from \(directory)")
            }
        }
    }

    /// Imports a module of the package (call ``prepare(environment:verbose:)`` first).
    static func module(_ gil: borrowing PythonGIL, _ name: String) throws -> PythonObject {
        do {
            return try gil.import("speculative_moe.\(name)")
        } catch let error as PythonError {
            throw CaptureError.python(error, during: "importing speculative_moe.\(name)")
        }
    }

    // MARK: - Datasets and the tiny model

    /// Loads a dataset's problems (through the Python package: local JSONL files, or the hub
    /// when the `datasets` package and network are there).
    ///
    /// - Throws: ``CaptureError/invalidOption(_:)`` for a missing file, bad line or missing
    ///   field (the message names file, line and field), ``CaptureError/python(_:during:)`` otherwise.
    public static func loadProblems(_ spec: DatasetSpec) throws -> [Problem] {
        try Python.withGIL { gil in
            let engine = try module(gil, "engine")
            let rows: PythonObject
            do {
                rows = try engine.attribute("load_problems").call(
                    arguments: [spec.name],
                    keywords: [
                        ("dataset_file", spec.file), ("prompt_field", spec.promptField),
                        ("num_problems", spec.numProblems), ("offset", spec.offset),
                    ]
                )
            } catch let error as PythonError {
                if error.typeName.hasSuffix("DatasetError") { throw CaptureError.invalidOption(error.message) }
                throw CaptureError.python(error, during: "loading dataset \(spec.name)")
            }
            var out: [Problem] = []
            for row in try rows.elements() {
                out.append(
                    Problem(
                        domain: try row.item("domain").convert(to: String.self),
                        problemID: try row.item("problem_id").convert(to: Int64.self),
                        prompt: try row.item("prompt").convert(to: String.self),
                        sourceID: try row.item("source_id").convert(to: String.self)
                    )
                )
            }
            return out
        }
    }

    /// The path of a built-in four-problem sample of `humaneval` or `gsm8k` shipped with the package.
    public static func samplePath(_ dataset: String) throws -> String {
        let path = try locate() + "/speculative_moe/data/\(dataset)_sample.jsonl"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CaptureError.invalidOption("no built-in sample for '\(dataset)' (looked for \(path))")
        }
        return path
    }

    /// The architectures of the tiny default models (`moe-routing run --arch`), in the order
    /// the help lists them: each is generated locally with random weights (no download) by
    /// `speculative_moe.tiny_model` and verified against transformers by the capture tests.
    public static let tinyArchitectures = [
        "mixtral", "qwen3-moe", "qwen2-moe", "olmoe", "deepseek-v2", "deepseek-v3", "gpt-oss",
    ]

    /// Generates the tiny model of `architecture` (one of ``tinyArchitectures``; default the
    /// Mixtral one) at `path` unless a current one is there (same configuration hash). Returns
    /// whether it was written.
    @discardableResult
    public static func ensureTinyModel(at path: String, architecture: String = "mixtral") throws -> Bool {
        guard tinyArchitectures.contains(architecture) else {
            throw CaptureError.invalidOption(
                "--arch \(architecture) is not a tiny model architecture: use one of \(tinyArchitectures.joined(separator: ", "))"
            )
        }
        return try Python.withGIL { gil in
            let tiny = try module(gil, "tiny_model")
            do {
                let result = try tiny.attribute("generate").call(
                    arguments: [path],
                    keywords: [("arch", architecture)]
                )
                return try result.item("created").convert(to: Bool.self)
            } catch let error as PythonError {
                throw CaptureError.python(error, during: "generating the tiny \(architecture) model at \(path)")
            }
        }
    }

    /// The default location of the tiny model of `architecture`: `<project root>/models/tiny-<arch>`,
    /// or `models/tiny-<arch>` in the current directory outside a project checkout.
    public static func defaultTinyModelPath(architecture: String = "mixtral") -> String {
        let currentDirectory = FileManager.default.currentDirectoryPath
        let root =
            ProjectCheckout.find(currentDirectory: currentDirectory, executablePath: CommandLine.arguments.first)
            ?? currentDirectory
        return root + "/models/tiny-\(architecture)"
    }
}
