// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// capture-overhead-benchmark: how much the routing hook and live analysis slow generation down.
//
//   swift run -c release capture-overhead-benchmark [--problems N] [--max-tokens N] [--rounds R]
//                                                    [--model PATH] [--dtype D] [--venv PATH]
//                                                    [--analysis all|writer|none]
//
// One vLLM engine in this process (the tiny model by default, generated when absent). Each round
// generates the same problems twice, in alternating order: plainly (no hook), and with the hook
// installed, every request's block written to a .moetrace and fed to the transition, multihop and
// domain analyzers while generation runs (`--analysis writer`: the trace writer only; `none`: the
// hook and the Swift assembler only, to split the cost). Generation is fixed-length (ignore EOS) and greedy, so
// both runs do the same work. Reports each round's ratio (captured / plain wall time), the median
// with a 95% bootstrap interval over rounds, and the ratio of the totals, for wall time (and the
// ratios of the lower quartiles and of the fastest runs of each kind: other load only ever adds
// time, so on a busy machine the fastest runs are the least disturbed) and for the process's CPU
// time (all threads: vLLM's OpenMP workers spin while they wait, so CPU time follows wall time),
// the time spent dispatching blocks to the trace writer and analyzers, and the hook's self-timed
// cost (its own work, the Swift side and the analyzers included, over the rest of the captured
// run). Goal: 1.05 or less.

import AnalysisSupport
import ArgumentParser
import DomainAnalyzer
import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import MultiHopAnalyzer
import PythonRuntime
import TransitionAnalyzer
import VLLMCapture

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The command line (`--help` lists it).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture-overhead-benchmark",
        abstract: "Wall time of a captured tiny-model run against an uncaptured one, with live analysis."
    )
    /// What receives the blocks (`--analysis`).
    static let analysisChoices = ["all", "writer", "none", "transition", "multihop", "domain"]

    @Option(help: "Problems (prompts) per round.")
    var problems = 16
    @Option(help: "Generated tokens per problem.")
    var maxTokens = 128
    @Option(help: "Rounds of each variant.")
    var rounds = 30
    @Option(
        help: ArgumentHelp(
            "The model directory (default: the tiny test model, created when missing).",
            valueName: "path"
        )
    )
    var model: String?
    @Option(help: "The model's dtype.")
    var dtype = "float32"
    @Option(help: ArgumentHelp("The Python virtual environment.", valueName: "path"))
    var venv: String?
    /// What receives the blocks: `all` (trace writer and analyzers), `writer`, or `none` (hook only).
    @Option(
        help:
            "What receives the blocks: all (trace writer and analyzers), writer, none (the hook only), transition, multihop or domain."
    )
    var analysis = "all"

    func validate() throws {
        for (name, value) in [("--problems", problems), ("--max-tokens", maxTokens), ("--rounds", rounds)]
        where value <= 0 {
            throw ValidationError("\(name) needs a positive integer, got \(value)")
        }
        guard Self.analysisChoices.contains(analysis) else {
            throw ValidationError(
                "--analysis takes all, writer, none, transition, multihop or domain, got '\(analysis)'"
            )
        }
    }

    /// Parses the command line; `--help` prints every option, and a usage error (an unknown
    /// option, a malformed or out-of-range value) prints one line and exits with 2, as the
    /// `moe-routing` CLI does.
    static func parseOrExit() -> Self {
        do {
            return try parse()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data(("error: " + message(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// Counts and forwards blocks; the work a real run does.
final class LiveObserver: CaptureObserver {
    let dispatcher: AnalysisDispatcher
    /// Wall time spent handing blocks to the dispatcher (the trace writer and the analyzers) and
    /// waiting for the analyzers at the end (``flushAnalyzers()``).
    private(set) var dispatchSeconds = 0.0
    init(dispatcher: AnalysisDispatcher) { self.dispatcher = dispatcher }
    func requestFinished(_ routing: RequestRouting, output: GenerationOutput?) throws {
        guard routing.block.tokenCount > 0 else { return }
        try timed { try dispatcher.dispatch(routing.block) }
    }
    /// Waits for the analyzers' pipelined consume to finish; the wait counts as dispatch time.
    func flushAnalyzers() { timed { dispatcher.analyzers.flush() } }
    private func timed(_ body: () throws -> Void) rethrows {
        let start = ContinuousClock.now
        try body()
        let d = (ContinuousClock.now - start).components
        dispatchSeconds += Double(d.seconds) + Double(d.attoseconds) * 1e-18
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The `q` quantile (0...1) of `values`, linearly interpolated.
func quantile(_ values: [Double], _ q: Double) -> Double {
    let s = values.sorted()
    guard s.count > 1 else { return s.first ?? .nan }
    let x = q * Double(s.count - 1)
    let i = Int(x)
    let f = x - Double(i)
    return i + 1 < s.count ? s[i] * (1 - f) + s[i + 1] * f : s[i]
}

/// A 95% percentile-bootstrap interval of the median of `values` (2000 resamples, fixed seed):
/// how far the median could move if the rounds were run again under the same disturbances.
func bootstrapMedianInterval(_ values: [Double]) -> (low: Double, high: Double) {
    var random = SeededRandom(seed: 0x9E37_79B9_7F4A_7C15)
    var medians: [Double] = []
    for _ in 0..<2000 {
        let sample = (0..<values.count).map { _ in values[Int(random.next() % UInt64(values.count))] }
        medians.append(median(sample))
    }
    return (quantile(medians, 0.025), quantile(medians, 0.975))
}

func main() throws {
    let options = Options.parseOrExit()
    try CapturePythonPackage.prepare(environment: PythonEnvironment.locate(explicitPath: options.venv))
    let model = options.model ?? CapturePythonPackage.defaultTinyModelPath()
    if options.model == nil { try CapturePythonPackage.ensureTinyModel(at: model) }

    // Prompts: the built-in samples, repeated to the requested count (ids kept distinct).
    var base: [Problem] = []
    for name in DatasetSpec.builtinNames {
        base += try CapturePythonPackage.loadProblems(
            DatasetSpec(name: name, file: try CapturePythonPackage.samplePath(name))
        )
    }
    let problems = (0..<options.problems).map { i -> Problem in
        var p = base[i % base.count]
        p.problemID = Int64(i)
        return p
    }

    var config = EngineConfiguration(model: model)
    config.dtype = options.dtype
    config.maxTokens = options.maxTokens
    config.ignoreEOS = true
    config.maxConcurrentSequences = max(16, options.problems)
    let engine = try VLLMEngine(configuration: config)
    let shape = engine.shape
    let directory = NSTemporaryDirectory() + "capture-overhead-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }

    func plain() throws -> (Double, Double) {
        let run = try engine.generate(problems)
        return (run.seconds, run.cpuSeconds)
    }
    var selfTimed: [Double] = []
    /// The hook's self-timed cost per engine step (its layer calls included), in microseconds.
    var perStep: [Double] = []
    var dispatchTimes: [Double] = []
    func captured(_ round: Int) throws -> (Double, Double, Int) {
        let writer = try BinaryTraceWriter(path: directory + "/round\(round).moetrace", shape: shape)
        let chosen: [any RoutingAnalyzer]
        switch options.analysis {
        case "all": chosen = [TransitionAnalyzer(folds: 5), MultiHopAnalyzer(), DomainAnalyzer()]
        case "transition": chosen = [TransitionAnalyzer(folds: 5)]
        case "multihop": chosen = [MultiHopAnalyzer()]
        case "domain": chosen = [DomainAnalyzer()]
        default: chosen = []
        }
        let analyzers = MultiplexAnalyzer(chosen)
        let dispatcher = AnalysisDispatcher(analyzers: analyzers, sinks: options.analysis == "none" ? [] : [writer])
        try dispatcher.begin(AnalysisContext(shape: shape))
        let observer = LiveObserver(dispatcher: dispatcher)
        let summary = try engine.capture(problems, observer: observer)
        try writer.close()
        observer.flushAnalyzers()
        if round >= 0 {
            dispatchTimes.append(observer.dispatchSeconds)
            selfTimed.append(summary.hookOverhead)
            let steps = max(summary.hook["steps"] ?? 0, 1)
            perStep.append(summary.hookSeconds / Double(steps) * 1e6)
        }
        return (summary.seconds, summary.cpuSeconds, summary.hook["layer_calls"] ?? 0)
    }

    print(
        "capture overhead: \(shape), \(problems.count) problems x \(options.maxTokens) tokens, \(options.rounds) rounds, dtype \(options.dtype), analysis \(options.analysis)"
    )
    _ = try plain()  // warm-up: first-use costs of both paths
    _ = try captured(-1)
    var ratios: [Double] = []
    var cpuRatios: [Double] = []
    var fastest = (plain: Double.infinity, captured: Double.infinity)
    var wall = (plain: [Double](), captured: [Double]())
    var totals = (plain: 0.0, captured: 0.0, plainCPU: 0.0, capturedCPU: 0.0)
    var layerCalls = 0
    for r in 0..<options.rounds {
        var p = (0.0, 0.0)
        var c = (0.0, 0.0, 0)
        if r % 2 == 0 {
            p = try plain()
            c = try captured(r)
        } else {
            c = try captured(r)
            p = try plain()
        }
        layerCalls = c.2
        fastest = (min(fastest.plain, p.0), min(fastest.captured, c.0))
        wall.plain.append(p.0)
        wall.captured.append(c.0)
        totals.plain += p.0
        totals.captured += c.0
        totals.plainCPU += p.1
        totals.capturedCPU += c.1
        ratios.append(c.0 / p.0)
        cpuRatios.append(c.1 / p.1)
        print(
            String(
                format:
                    "round %d: wall plain %.3f s, captured %.3f s, ratio %.4f | CPU plain %.3f s, captured %.3f s, ratio %.4f",
                r,
                p.0,
                c.0,
                c.0 / p.0,
                p.1,
                c.1,
                c.1 / p.1
            )
        )
    }
    let perCall = (totals.capturedCPU - totals.plainCPU) / Double(options.rounds) / Double(max(layerCalls, 1)) * 1e6
    let interval = bootstrapMedianInterval(ratios)
    print(
        String(
            format:
                "wall time: median ratio %.4f (95%% bootstrap interval %.4f-%.4f over %d rounds), ratio of totals %.4f",
            median(ratios),
            interval.low,
            interval.high,
            ratios.count,
            totals.captured / totals.plain
        )
    )
    print(
        String(
            format:
                "           ratio of the lower quartiles of run times %.4f (%.3f s / %.3f s), of the fastest runs %.4f (%.3f s / %.3f s)",
            quantile(wall.captured, 0.25) / quantile(wall.plain, 0.25),
            quantile(wall.captured, 0.25),
            quantile(wall.plain, 0.25),
            fastest.captured / fastest.plain,
            fastest.captured,
            fastest.plain
        )
    )
    print(
        String(
            format:
                "self-timed: hook and analysis took %.2f%% of the rest of the captured run's wall time (median over rounds): ratio %.4f",
            median(selfTimed) * 100,
            1 + median(selfTimed)
        )
    )
    print(
        String(
            format: "           %.1f us per engine step (%d MoE layer calls each), median over rounds",
            median(perStep),
            shape.layers
        )
    )
    print(
        String(
            format:
                "dispatch:  blocks to the trace writer and analyzers took %.2f ms per captured run (median; with the analyzers' tail after the run)",
            median(dispatchTimes) * 1e3
        )
    )
    print(
        String(
            format:
                "CPU time:  median ratio %.4f, ratio of totals %.4f; %d layer calls per run, %.1f us CPU extra per layer call (goal: ratio <= 1.05)",
            median(cpuRatios),
            totals.capturedCPU / totals.plainCPU,
            layerCalls,
            perCall
        )
    )
}

do {
    try main()
} catch let error as CaptureError {
    if !error.traceback.isEmpty { FileHandle.standardError.write(Data(error.traceback.utf8)) }
    FileHandle.standardError.write(Data("capture-overhead-benchmark: \(error)\n".utf8))
    exit(1)
} catch {
    FileHandle.standardError.write(Data("capture-overhead-benchmark: \(error)\n".utf8))
    exit(1)
}
