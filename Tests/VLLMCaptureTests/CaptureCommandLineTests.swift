// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing
import VLLMCapture

/// The capture commands' options, errors and help, checked through the built tool before any
/// Python or vLLM starts (fast), and the model-location check behind `--model`.
@Suite(.enabled(if: ToolProcess.isBuilt || ToolProcess.requiredByCI, "needs the built moe-routing tool"))
struct CaptureCommandLineTests {
    /// A usage error: exit 2, one `Error:` line holding `message`, and vLLM never started.
    func expectUsageError(_ arguments: [String], _ message: String, environment: [String: String] = [:]) throws {
        try #require(ToolProcess.isBuilt, "\(ToolProcess.path) is not built")
        let r = try ToolProcess.run(arguments, environment: environment, timeout: 60)
        #expect(r.status == 2, "\(arguments): \(r.stderr)")
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("Error: ") && first.contains(message), "\(arguments): \(r.stderr)")
        #expect(!r.stderr.contains("starting vLLM"))
        #expect(!r.stderr.contains("Missing value"))
    }

    @Test func aModelPathThatDoesNotExistIsNamedBeforeVLLMStarts() throws {
        try expectUsageError(["run", "--model", "./does-not-exist"], "--model ./does-not-exist: no such directory (")
        try expectUsageError(
            ["collect", "--model", "/nowhere/model"],
            "--model /nowhere/model: no such directory (/nowhere/model)"
        )
        let r = try ToolProcess.run(["run", "--model", "./does-not-exist"], timeout: 60)
        #expect(!r.stderr.contains("Repo id"), "no Hugging Face repo-id validation text: \(r.stderr)")
    }

    @Test func archPicksATinyModelAndIsCheckedBeforeVLLMStarts() throws {
        try expectUsageError(
            ["run", "--arch", "llama"],
            "--arch llama is not a tiny model architecture: use one of mixtral, qwen3-moe, qwen2-moe, olmoe, deepseek-v2, deepseek-v3, gpt-oss"
        )
        try expectUsageError(
            ["collect", "--arch", "olmoe", "--model", "/nowhere/model"],
            "--arch olmoe picks a tiny default model, but --model names one: drop one of them"
        )
    }

    @Test func aRepoIDThatIsNotLocalSaysDownloadsAreOff() throws {
        let cache = try CaptureTestEnvironment.temporaryDirectory("hub")
        try expectUsageError(
            ["run", "--model", "someorg/some-model"],
            "not in the local hub cache; downloads from the model hub are off",
            environment: ["HF_HUB_CACHE": cache]
        )
        let r = try ToolProcess.run(["run", "--model", "someorg/some-model"], environment: ["HF_HUB_CACHE": cache])
        #expect(r.stderr.contains("give a local model directory"))
    }

    @Test func modelLocationsAreCheckedOnDisk() throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("models")
        let env = ["HF_HUB_CACHE": dir + "/hub"]
        try FileManager.default.createDirectory(
            atPath: dir + "/hub/models--org--cached",
            withIntermediateDirectories: true
        )
        try FileManager.default.createDirectory(atPath: dir + "/local", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8)))
        #expect(EngineConfiguration.modelLocationProblem(dir + "/local", environment: env) == nil)
        #expect(EngineConfiguration.modelLocationProblem("org/cached", environment: env) == nil)
        #expect(
            EngineConfiguration.modelLocationProblem(dir + "/file", environment: env)?.contains(
                "is a file, not a model directory"
            ) == true
        )
        #expect(
            EngineConfiguration.modelLocationProblem("org/missing", environment: env)?.contains(
                "downloads from the model hub are off"
            ) == true
        )
        #expect(
            EngineConfiguration.modelLocationProblem("./org/missing", environment: env)?.contains("no such directory")
                == true
        )
        #expect(EngineConfiguration.modelLocationProblem("./org/missing", environment: env)?.contains("hub") == false)
        #expect(
            EngineConfiguration.modelLocationProblem(
                "org/missing",
                environment: ["HF_HOME": dir]
            )?.contains("not in the local hub cache") == true
        )
    }

    @Test(arguments: [
        (["--num-problems", "-1"], "--num-problems must be a positive integer, got -1"),
        (["--num-problems", "0"], "--num-problems must be a positive integer, got 0"),
        (["--max-tokens", "0"], "--max-tokens must be a positive integer, got 0"),
        (["--max-tokens", "-5"], "--max-tokens must be a positive integer, got -5"),
        (["--max-num-seqs", "-2"], "--max-num-seqs must be a positive integer, got -2"),
        (["--offset", "-1"], "--offset must be 0 or more, got -1"),
    ])
    func numbersOutOfRangeAreUsageErrors(arguments: [String], message: String) throws {
        try expectUsageError(["run"] + arguments, message)
    }

    @Test func usageErrorsExit2AcrossCommands() throws {
        try expectUsageError(["inspect", "t.moetrace", "--no-such-option"], "Unknown option '--no-such-option'")
        try expectUsageError(["analyze"], "give at least one trace file")
        try expectUsageError(["demo", "--dependence", "2"], "--dependence must be within 0...1")
    }

    @Test func datasetsAreGivenAsNameEqualsPath() throws {
        try expectUsageError(["run", "--dataset-file", "x.jsonl"], "Unknown option '--dataset-file'")
        try expectUsageError(["run", "--dataset", "mbpp=x.jsonl"], "NAME=PATH takes NAME humaneval or gsm8k")
        try expectUsageError(["run", "--dataset", "humaneval="], "give the file after '='")
        // Accepted: the next check (the model) is what stops these.
        for datasets in [["humaneval=data/he.jsonl", "gsm8k"], ["jsonl:a=b.jsonl"], ["gsm8k=x.jsonl"]] {
            try expectUsageError(
                ["run", "--model", "./no-model"] + datasets.flatMap { ["--dataset", $0] },
                "--model ./no-model: no such directory"
            )
        }
    }

    @Test func helpListsEveryFileWrittenAndTheDocumentedSpellings() throws {
        try #require(ToolProcess.isBuilt)
        let run = try ToolProcess.run(["run", "--help"]).stdout
        for file in [
            "trace.moetrace", "outputs.jsonl", "report.html", "report.json", "report.md", "report.txt", "run.json",
            "trace.jsonl", "timings.jsonl",
        ] {
            #expect(run.contains(file), "run --help omits \(file)")
        }
        #expect(
            run.contains("--dataset <name[=path]>")
                && run.contains("--dataset humaneval=../shared/data/humaneval.jsonl")
        )
        #expect(run.contains("--analysis-seed") && !run.contains("--dataset-file"))
        #expect(run.contains("exit code is 130 (143 after") && run.contains("SIGTERM"))
        let demo = try ToolProcess.run(["demo", "--help"]).stdout
        for file in ["demo.moetrace", "report.html", "report.json", "report.md", "report.txt", "run.json"] {
            #expect(demo.contains(file), "demo --help omits \(file)")
        }
        #expect(demo.contains("--analysis-seed"))
        let analyze = try ToolProcess.run(["analyze", "--help"]).stdout
        #expect(analyze.contains("--analysis-seed") && !analyze.contains("--seed "))
        let collect = try ToolProcess.run(["collect", "--help"]).stdout
        #expect(collect.contains("--dataset humaneval=") && !collect.contains("--dataset-file"))
    }

    @Test func theAnalysisSeedHasOneName() throws {
        try #require(ToolProcess.isBuilt)
        let dir = try CaptureTestEnvironment.temporaryDirectory("seed")
        let demo = try ToolProcess.run([
            "demo", "--output", dir, "--problems", "2", "--tokens", "20", "--analysis-seed", "11",
        ])
        #expect(demo.status == 0, "\(demo.stderr)")
        let analyze = try ToolProcess.run(
            [
                "analyze", dir + "/demo.moetrace", "--analysis-seed", "9", "--analyzer", "transition", "--output",
                dir + "/a",
            ])
        #expect(analyze.status == 0, "\(analyze.stderr)")
        let run = try String(contentsOfFile: dir + "/a/run.json", encoding: .utf8)
        // The seed is a JSON number, as in the plugin ABI's context and the analyzers' reports.
        #expect(run.contains("\"seed\": 9,\n"))
        #expect(!run.contains(#""seed": "9""#))
        let report = try ReportValue.parse(json: String(contentsOfFile: dir + "/a/report.json", encoding: .utf8))
        #expect(report["transition"]?["seed"] == .int(9))
        try expectUsageError(["analyze", dir + "/demo.moetrace", "--seed", "9"], "Unknown option '--seed'")
    }

    @Test func docsUseTheOptionNamesTheToolKnows() throws {
        let root = CaptureTestEnvironment.projectRoot
        for file in ["README.md", "docs/capture.md", "docs/analyzers.md", "docs/report.md", "docs/trace-format.md"] {
            guard let text = try? String(contentsOfFile: root + "/" + file, encoding: .utf8) else { continue }
            #expect(!text.contains("--dataset-file"), "\(file) mentions --dataset-file")
            #expect(!text.contains("analyze") || !text.contains(" --seed "), "\(file) uses analyze --seed")
        }
    }

    /// `inspect` says how a trace ended: closed, interrupted after N of M, or cut off.
    @Test func inspectSaysHowATraceEnded() throws {
        try #require(ToolProcess.isBuilt)
        let dir = try CaptureTestEnvironment.temporaryDirectory("closure")
        let shape = try ModelShape(layers: 2, experts: 4, topK: 2)
        var generator = SyntheticRouting(shape: shape, seed: 3)
        let block = generator.makeBlock(problems: 1, tokensPerProblem: 3, domain: "d")
        func write(_ name: String, _ end: (BinaryTraceWriter) throws -> Void) throws -> String {
            let path = dir + "/\(name).moetrace"
            let w = try BinaryTraceWriter(path: path, shape: shape)
            try w.write(block)
            try end(w)
            return path
        }
        let closed = try write("closed") { try $0.close() }
        let interrupted = try write("interrupted") { try $0.close(interruptedAfter: 1, of: 4) }
        // A writer that never closes leaves its chunks under its temporary name, as a killed run
        // does; inspect reads that file.
        var unclosed = ""
        _ = try write("cut") { unclosed = $0.temporaryPath }
        let cut = dir + "/cut-partial.moetrace"
        try FileManager.default.moveItem(atPath: unclosed, toPath: cut)
        for (path, name, line) in [
            (closed, "closed", "closed"), (interrupted, "interrupted", "interrupted after 1 of 4 problems"),
            (cut, "cut_off", "cut off (no end chunk"),
        ] {
            let json = try ToolProcess.run(["inspect", path, "--format", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            #expect(json.stdout.contains(#""closure": "\#(name)""#), "\(json.stdout)")
            let text = try ToolProcess.run(["inspect", path])
            #expect(text.stdout.contains("\(path): \(line)"), "\(text.stdout)")
        }
        let json = try ToolProcess.run(["inspect", interrupted, "--format", "json"]).stdout
        #expect(json.contains(#""completed": 1"#) && json.contains(#""total": 4"#))
    }
}
