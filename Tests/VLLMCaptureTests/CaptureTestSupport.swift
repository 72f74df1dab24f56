// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingEnvironment
import MoERoutingTestKit
import PythonRuntime
import VLLMCapture

/// Shared set-up for the capture tests: the project root, the venv, the embedded interpreter
/// (started once per test process, never finalised), the tiny model, and one vLLM engine shared
/// by every engine test (vLLM in-process is heavy: about 7 s to import, 15 s to start).
enum CaptureTestEnvironment {
    /// The package root: the directory holding Package.swift above this file.
    static let projectRoot: String =
        TestPaths.packageRoot(from: #filePath)?.path ?? FileManager.default.currentDirectoryPath

    /// ../shared/data relative to the project root, when present.
    static let sharedData: String? = {
        let path = URL(fileURLWithPath: projectRoot + "/../shared/data").standardized.path
        return FileManager.default.fileExists(atPath: path + "/humaneval.jsonl") ? path : nil
    }()

    /// The venv: MOE_ROUTING_VENV, else <root>/.venv.
    static let environment: PythonEnvironment = {
        if let path = ProcessInfo.processInfo.environment[MoERoutingVenv.environmentVariable], !path.isEmpty {
            return PythonEnvironment(path: path)
        }
        return PythonEnvironment(path: projectRoot + "/.venv")
    }()

    /// Whether the interpreter runs on the venv with the package importable; prints why not otherwise.
    static let pythonAvailable: Bool = {
        do {
            try CapturePythonPackage.prepare(environment: environment)
            try Python.withGIL { gil in _ = try gil.import("numpy") }
            return true
        } catch {
            return TestRequirements.unavailable("the capture tests need the project venv", error)
        }
    }()

    /// Whether vLLM and transformers are installed in the venv (checked on disk, without importing).
    static let vllmAvailable: Bool = {
        guard pythonAvailable else { return false }  // true under TestRequirements.pythonRequired
        let lib = environment.path + "/lib"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []
        let found = versions.contains {
            FileManager.default.fileExists(atPath: "\(lib)/\($0)/site-packages/vllm/__init__.py")
                && FileManager.default.fileExists(atPath: "\(lib)/\($0)/site-packages/transformers/__init__.py")
        }
        if !found {
            return TestRequirements.unavailable(
                "the capture tests",
                because: "vLLM or transformers is not installed in \(environment.path)"
            )
        }
        return found
    }()

    /// The tiny model, generated on first use under <root>/models/tiny-mixtral.
    static let tinyModel: Result<String, any Error> = Result {
        let path = projectRoot + "/models/tiny-mixtral"
        try CapturePythonPackage.ensureTinyModel(at: path)
        return path
    }

    /// Prompts per chunk in the shared engine: long prompts are split, so chunked prefill runs.
    static let chunkTokens = 32

    /// The engine every engine test uses: the tiny model in float32, chunked prefill on with
    /// small chunks, fixed-length greedy generation.
    static let engine: Result<VLLMEngine, any Error> = Result {
        var c = EngineConfiguration(model: try tinyModel.get())
        c.dtype = "float32"
        c.maxModelLength = 512
        c.maxConcurrentSequences = 8
        c.maxBatchedTokens = chunkTokens
        c.chunkedPrefill = true
        c.maxTokens = 24
        c.ignoreEOS = true
        return try VLLMEngine(configuration: c)
    }

    /// A few prompts of clearly different lengths, from the shared data when present, else from
    /// the package's built-in samples, plus a short one.
    static func problems() throws -> [Problem] {
        var out: [Problem] = []
        let he = try DatasetSpec(
            name: "humaneval",
            file: sharedData.map { $0 + "/humaneval.jsonl" } ?? CapturePythonPackage.samplePath("humaneval"),
            numProblems: 2
        )
        let gsm = try DatasetSpec(
            name: "gsm8k",
            file: sharedData.map { $0 + "/gsm8k_test.jsonl" } ?? CapturePythonPackage.samplePath("gsm8k"),
            numProblems: 1
        )
        out += try CapturePythonPackage.loadProblems(he)
        out += try CapturePythonPackage.loadProblems(gsm)
        out.append(Problem(domain: "short", problemID: 0, prompt: "def add(a, b):"))
        return out
    }

    /// A fresh temporary directory.
    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "moe-capture-tests-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Collects everything a capture run hands out.
final class CollectingObserver: CaptureObserver {
    var finished: [Int: RequestRouting] = [:]
    var partial: [Int: RequestRouting] = [:]
    var outputs: [Int: GenerationOutput] = [:]
    var timings: [StepTiming] = []
    var progressCalls = 0
    /// Stop (return true from progress) at this call, if set.
    var stopAtProgressCall: Int?
    /// Throw from requestFinished for this request, if set.
    var failOnRequest: Int?
    /// Also dispatch each block here.
    var dispatcher: AnalysisDispatcher?

    struct Failure: Error, CustomStringConvertible {
        var description: String { "observer failed on purpose" }
    }

    func requestFinished(_ routing: RequestRouting, output: GenerationOutput?) throws {
        if let output {
            if failOnRequest == routing.index { throw Failure() }
            finished[routing.index] = routing
            outputs[routing.index] = output
        } else {
            partial[routing.index] = routing
        }
        if routing.block.tokenCount > 0 { try dispatcher?.dispatch(routing.block) }
    }

    func stepEnded(_ timing: StepTiming) throws { timings.append(timing) }

    func progress(_ progress: CaptureProgress) -> Bool {
        progressCalls += 1
        if let stop = stopAtProgressCall, progressCalls >= stop { return true }
        return false
    }
}
