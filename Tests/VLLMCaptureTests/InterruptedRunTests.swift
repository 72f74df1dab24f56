// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing
import VLLMCapture

#if canImport(Glibc)
import Glibc
#endif

/// `moe-routing run` on the tiny default model, stopped by a real signal while it generates: the
/// first SIGINT or SIGTERM leaves a trace closed marked interrupted, run.json and a report with
/// the "interrupted after N of M problems" banner, and exit code 130 or 143; a second signal
/// ends the process at once and leaves a readable trace. One run per case (each takes about
/// 30-90 s here: start-up, then generation until a problem has finished).
@Suite(
    .enabled(
        if: CaptureTestEnvironment.vllmAvailable || ToolProcess.requiredByCI,
        "needs the project venv with vLLM (scripts/setup-python.sh)"
    )
)
struct InterruptedRunTests {
    /// Problems of the default run: four built-in HumanEval and four GSM8K samples.
    static let total = 8

    /// Starts a run with long fixed-length generation, two problems at a time, and returns once
    /// vLLM is ready and `finished` problems are done (so N > 0 and N < M when it stops).
    func startRun(
        _ dir: String,
        extra: [String] = [],
        finished: Int = 1,
        environment: [String: String] = [:]
    ) throws -> ToolProcess {
        try #require(
            CaptureTestEnvironment.vllmAvailable,
            "vLLM is not installed in the venv (CI=true: this test must run)"
        )
        try #require(ToolProcess.isBuilt, "\(ToolProcess.path) is not built (swift build --build-tests)")
        let p = try ToolProcess.start(
            ["run", "--no-progress", "--output", dir, "--max-tokens", "200", "--ignore-eos", "--max-num-seqs", "2"]
                + extra,
            environment: environment
        )
        let ready = p.wait(timeout: 400) { p.stderr.contains(" ready in ") }
        if !ready { p.send(SIGKILL) }
        try #require(ready, "vLLM did not become ready: \(p.stderr)")
        let going = p.wait(timeout: 300) { Self.lines(Self.current(dir, "outputs.jsonl")) >= finished }
        if !going { p.send(SIGKILL) }
        try #require(going, "no problem finished: \(p.stderr)")
        // The problems admitted after the first finished one need an engine step or two before
        // they have routed a token; a signal in that window finds no partial problem (seen once,
        // under load 15). A problem takes some 200 steps, so half a second later the run is still
        // far from its end and every running problem has routed tokens.
        Thread.sleep(forTimeInterval: 0.5)
        return p
    }

    /// The file a running capture is writing under `name`: outputs are written under
    /// `<name>.partial-<pid>` and renamed into place when the run ends (AtomicOutputFile).
    static func current(_ dir: String, _ name: String) -> String {
        let final = dir + "/" + name
        if FileManager.default.fileExists(atPath: final) { return final }
        let partial = (try? FileManager.default.contentsOfDirectory(atPath: dir))?.first {
            $0.hasPrefix(name + ".partial-")
        }
        return partial.map { dir + "/" + $0 } ?? final
    }

    static func lines(_ path: String) -> Int {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").count
    }

    /// Every check on a run stopped by its first signal.
    func expectStoppedCleanly(_ p: ToolProcess, dir: String, signal: String, exitCode: Int32) throws {
        let ended = p.waitForExit(timeout: 120)
        if !ended { p.send(SIGKILL) }
        try #require(ended, "the run did not end within 120 s of \(signal): \(p.stderr)")
        #expect(!p.diedBySignal, "\(p.stderr)")
        #expect(p.status == exitCode, "\(p.stderr)")
        #expect(p.stderr.contains("moe-routing: \(signal): stopping after the engine step in flight"))

        // The trace: closed, marked interrupted after the problems whose outputs were written.
        let completed = Self.lines(dir + "/outputs.jsonl")
        #expect(completed >= 1 && completed < Self.total, "completed \(completed)")
        let reader = try BinaryTraceReader(path: dir + "/trace.moetrace")
        while try reader.nextBlock() != nil {}
        #expect(reader.closure == .interrupted(completed: completed, total: Self.total))
        #expect(reader.summary.lostBytes == 0)

        // run.json: the facts, and every routed token (the partial problems' too) analyzed.
        let run = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run.json")))
                as? [String: Any]
        )
        let interrupted = try #require(run["interrupted"] as? [String: Any], "run.json has no \"interrupted\"")
        #expect(interrupted["signal"] as? String == signal)
        #expect(interrupted["completed"] as? Int == completed)
        #expect(interrupted["total"] as? Int == Self.total)
        let partial = try #require(interrupted["partial"] as? [[String: Any]])
        #expect(!partial.isEmpty, "two problems run at a time: some were cut short")
        #expect(partial.allSatisfy { ($0["tokens"] as? Int ?? 0) > 0 })
        #expect(run["tokens"] as? Int == reader.totals.tokens)

        // The report, in every rendering, opens with the banner.
        let banner = "interrupted after \(completed) of \(Self.total) problems (\(signal))"
        let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
        #expect(md.contains("> **Notice:** \(banner)"))
        let txt = try String(contentsOfFile: dir + "/report.txt", encoding: .utf8)
        #expect(txt.hasPrefix("NOTICE: \(banner)"))
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(html.contains(banner))

        // inspect says so too.
        let inspect = try ToolProcess.run(["inspect", dir + "/trace.moetrace", "--format", "json"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains(#""closure": "interrupted""#))
    }

    /// The first SIGINT, delivered twice at once as `timeout -s INT` does (to the process, then
    /// to its process group), stops the run cleanly: exit 130.
    @Test func aFirstSIGINTClosesTheTraceAndWritesTheReport() throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("sigint")
        let p = try startRun(dir)
        p.send(SIGINT)
        p.send(SIGINT)
        try expectStoppedCleanly(p, dir: dir, signal: "SIGINT", exitCode: 130)
    }

    /// SIGTERM stops the run the same way, with exit 143; the run reads its datasets through the
    /// documented `--dataset NAME=PATH`.
    @Test func SIGTERMClosesTheTraceAndWritesTheReport() throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("sigterm")
        // Copies of the built-in samples, named with NAME=PATH (same eight problems).
        var datasets: [String] = []
        for name in DatasetSpec.builtinNames {
            let copy = dir + "/\(name)-copy.jsonl"
            try FileManager.default.copyItem(atPath: try CapturePythonPackage.samplePath(name), toPath: copy)
            datasets += ["--dataset", "\(name)=\(copy)"]
        }
        let p = try startRun(dir, extra: datasets)
        p.send(SIGTERM)
        try expectStoppedCleanly(p, dir: dir, signal: "SIGTERM", exitCode: 143)
        let run = try String(contentsOfFile: dir + "/run.json", encoding: .utf8)
        #expect(run.contains("humaneval=\(dir)/humaneval-copy.jsonl,gsm8k=\(dir)/gsm8k-copy.jsonl"))
    }

    /// A second SIGINT (after the duplicate window) ends the process at once, by the signal; the
    /// trace still reads back every complete chunk.
    @Test func aSecondSIGINTQuitsAtOnceAndLeavesAReadableTrace() throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("sigint2")
        // The stop is held open (a test hook standing in for a slow last engine step on a big
        // model), so the second signal surely arrives before the files are closed.
        let p = try startRun(dir, finished: 2, environment: ["MOE_ROUTING_TEST_SLOW_STOP_SECONDS": "30"])
        p.send(SIGINT)
        _ = p.wait(timeout: 10) { p.stderr.contains("SIGINT: stopping") }
        Thread.sleep(forTimeInterval: CaptureInterruption.duplicateWindowSeconds + 0.15)
        p.send(SIGINT)
        let ended = p.waitForExit(timeout: 60)
        if !ended { p.send(SIGKILL) }
        try #require(ended, "the second SIGINT did not end the run: \(p.stderr)")
        #expect(p.diedBySignal, "exit status \(p.status): \(p.stderr)")
        #expect(p.status == SIGINT)
        #expect(p.stderr.contains("a second signal quits at once; the trace so far then stays readable in"))

        // Killed before the trace was closed, its chunks are still under the temporary name.
        let trace = Self.current(dir, "trace.moetrace")
        #expect(p.stderr.contains(trace), "the first-signal note names \(trace)")
        let reader = try BinaryTraceReader(path: trace)
        var tokens = 0
        while let block = try reader.nextBlock() { tokens += block.tokenCount }
        #expect(tokens > 0)
        #expect(tokens == reader.totals.tokens)
        let inspect = try ToolProcess.run(["inspect", trace, "--format", "json"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        // Quit before the end chunk was written: the trace is under its temporary name, cut off,
        // and every complete chunk reads back.
        #expect(trace != dir + "/trace.moetrace", "the unclosed trace was renamed into place")
        #expect(reader.closure == .cutOff, "\(reader.closure)")
        #expect(inspect.stdout.contains(#""closure": "cut_off""#))
    }
}
