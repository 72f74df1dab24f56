// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// Analyzer throughput: consume() and finish() of the transition, multihop and domain analyzers,
// each alone and all together through MultiplexAnalyzer, on synthetic Mixtral-shaped routing.
//   swift run -c release moe-routing-benchmarks analyzers [--records 60000000] [--tokens 200000]
//     [--max-order 4] [--only transition|multihop|domain|all] [--shape mixtral-8x7b|tiny-mixtral|...]
//     [--tokens-per-problem 512] [--problems-per-block 8] [--digest]
//   swift run -c release moe-routing-benchmarks analyzers --all-shapes [--records 20000000]
//     (one row per preset: the combined analyzers' consume rate, finish time and peak memory,
//     each preset in its own child process so that its peak memory is its own)
// Small blocks (`--shape tiny-mixtral --tokens-per-problem 200 --problems-per-block 1`, what a
// live capture of the tiny model hands over per finished request) show the per-block costs.

import ArgumentParser
import DomainAnalyzer
import Foundation
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import TransitionAnalyzer

/// Peak and current resident memory in MiB, from /proc/self/status (nil where unavailable).
private func memoryMiB() -> (peak: Double?, current: Double?) {
    (processStatusKB("VmHWM:").map { Double($0) / 1024 }, processStatusKB("VmRSS:").map { Double($0) / 1024 })
}

private func format(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

/// The `analyzers` suite's options (same names and defaults as before they were parsed with
/// ArgumentParser).
struct AnalyzersBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyzers",
        abstract: "consume() and finish() throughput of the transition, multihop and domain analyzers.",
        discussion:
            "Each configuration is fed a quarter of --records, then all of them, from a pool of generated blocks."
    )
    /// The analyzer configurations, in the order they run.
    static let configurationNames = ["transition", "multihop", "domain", "transition+multihop", "all (multiplex)"]

    @Option(help: "Token-layer records fed to each configuration.")
    var records = 60_000_000
    @Option(
        help:
            "Distinct tokens generated once and fed repeatedly (default 200,000; with --all-shapes and --row, 4,000,000 records' worth, at most 200,000)."
    )
    var tokens: Int?
    @Option(help: "The multihop path predictor's context order.")
    var maxOrder = 4
    @Option(help: "Run only the configurations whose name starts with this (transition, multihop, domain or all).")
    var only: String?
    @Option(help: "The model shape preset (\(ModelShape.presets.keys.sorted().joined(separator: ", "))).")
    var shape = "mixtral-8x7b"
    @Option(help: "Decode tokens per generated problem.")
    var tokensPerProblem = 512
    @Option(help: "Problems per generated block.")
    var problemsPerBlock = 8
    @Flag(
        help:
            "Run every preset in turn, each in a child process (this binary with --row), and print one row per preset."
    )
    var allShapes = false
    @Flag(
        help:
            "Print one table row for --shape: the combined analyzers (transition + multihop + domain) fed --records records once."
    )
    var row = false
    @Flag(
        help:
            "Also print an FNV-1a hash of each report's JSON (to check that an optimisation leaves results unchanged)."
    )
    var digest = false

    func validate() throws {
        for (name, value) in [
            ("--records", records), ("--tokens", tokens ?? 1), ("--max-order", maxOrder),
            ("--tokens-per-problem", tokensPerProblem),
            ("--problems-per-block", problemsPerBlock),
        ] where value <= 0 {
            throw ValidationError("\(name) needs a positive integer, got \(value)")
        }
        if let only, only != "all", !Self.configurationNames.contains(where: { $0.hasPrefix(only) }) {
            throw ValidationError("--only: unknown analyzer '\(only)'; use transition, multihop, domain or all")
        }
        guard ModelShape.presets[shape] != nil else {
            throw ValidationError(
                "--shape needs one of \(ModelShape.presets.keys.sorted().joined(separator: ", ")), got '\(shape)'"
            )
        }
    }

    func run() throws {
        if allShapes {
            try runEveryShape(self)
        } else if row {
            try runShapeRow(self)
        } else {
            try runAnalyzerBenchmark(self)
        }
    }
}

/// Runs the analyzer benchmark with validated options.
func runAnalyzerBenchmark(_ options: AnalyzersBenchmark) throws {
    let records = options.records
    let distinctTokens = options.tokens ?? 200_000
    let only = options.only
    let maxOrder = options.maxOrder
    let digest = options.digest
    guard let shape = ModelShape.presets[options.shape] else {
        throw ValidationError("--shape: unknown preset '\(options.shape)'")
    }
    let tokensPerProblem = options.tokensPerProblem
    let problemsPerBlock = options.problemsPerBlock
    let genStart = ContinuousClock.now
    let blocks = benchmarkBlocks(shape: shape, tokens: distinctTokens, options: options)
    let generated = blocks.reduce(0) { $0 + $1.tokenCount }
    let recordsPerPass = blocks.reduce(0) { $0 + $1.recordCount }
    print("analyzer benchmark: \(shape), \(blocks.count) blocks of \(problemsPerBlock * tokensPerProblem) tokens")
    print(
        "  generated \(generated) tokens (\(recordsPerPass) records) in \(format(durationSeconds(ContinuousClock.now - genStart))) s; fed repeatedly"
    )
    let m0 = memoryMiB()
    print(
        "  memory after generation: peak \(format(m0.peak ?? .nan, 1)) MiB, current \(format(m0.current ?? .nan, 1)) MiB"
    )

    var configurations: [(String, () -> [any RoutingAnalyzer])] = [
        ("transition", { [TransitionAnalyzer()] }),
        ("multihop", { [MultiHopAnalyzer(maxOrder: maxOrder)] }),
        ("domain", { [DomainAnalyzer()] }),
        ("transition+multihop", { [MultiplexAnalyzer([TransitionAnalyzer(), MultiHopAnalyzer(maxOrder: maxOrder)])] }),
        (
            "all (multiplex)",
            { [MultiplexAnalyzer([TransitionAnalyzer(), MultiHopAnalyzer(maxOrder: maxOrder), DomainAnalyzer()])] }
        ),
    ]
    if let only, only != "all" {
        configurations = configurations.filter { $0.0.hasPrefix(only) }
        guard !configurations.isEmpty else { throw ValidationError("--only: unknown analyzer '\(only)'") }
    }
    print("")
    print("configuration      records      consume s   M records/s   cpu M rec/s   finish s   peak MiB   current MiB")
    for target in [max(1, records / 4), records] {
        for (name, make) in configurations {
            let analyzers = make()
            let a = analyzers[0]
            try a.begin(AnalysisContext(shape: shape))
            var fed = 0
            let start = ContinuousClock.now
            let cpuStart = processCPUSeconds()
            outer: while fed < target {
                for b in blocks {
                    try a.consume(b)
                    fed += b.recordCount
                    if fed >= target { break outer }
                }
            }
            // A pipelined multiplexer may still be consuming: the time counts until it is done.
            (a as? MultiplexAnalyzer)?.flush()
            let consumeTime = durationSeconds(ContinuousClock.now - start)
            let consumeCPU = processCPUSeconds() - cpuStart
            let finishStart = ContinuousClock.now
            var reports: [AnalyzerReport] = []
            if let mux = a as? MultiplexAnalyzer {
                let (finished, failures) = mux.finishAll()
                for f in failures { print("  failure: \(f)") }
                reports = finished
            } else {
                reports = [try a.finish()]
            }
            let finishTime = durationSeconds(ContinuousClock.now - finishStart)
            let mem = memoryMiB()
            let padded = name.padding(toLength: 18, withPad: " ", startingAt: 0)
            print(
                "\(padded) \(String(fed).padding(toLength: 12, withPad: " ", startingAt: 0)) \(format(consumeTime, 3).padding(toLength: 11, withPad: " ", startingAt: 0)) "
                    + "\(format(Double(fed) / consumeTime / 1e6, 1).padding(toLength: 13, withPad: " ", startingAt: 0)) "
                    + "\(format(Double(fed) / consumeCPU / 1e6, 1).padding(toLength: 13, withPad: " ", startingAt: 0)) "
                    + "\(format(finishTime, 3).padding(toLength: 10, withPad: " ", startingAt: 0)) "
                    + "\(format(mem.peak ?? .nan, 1).padding(toLength: 10, withPad: " ", startingAt: 0)) \(format(mem.current ?? .nan, 1))"
            )
            if digest {
                for r in reports { print("  digest \(r.analyzer): \(fnv1a(r.json.jsonString()))") }
            }
        }
    }
    print("")
    print(
        "peak MiB is the process high-water mark (VmHWM), so it can only grow; equal peaks at both sizes show memory does not grow with records."
    )
}

/// The pool of generated blocks fed repeatedly: `tokens` distinct tokens in blocks of
/// `--problems-per-block` problems, alternating two domains.
private func benchmarkBlocks(shape: ModelShape, tokens: Int, options: AnalyzersBenchmark) -> [RoutingBlock] {
    var gen = SyntheticRouting(shape: shape, seed: 42, dependence: 0.5, missingRate: 0.001)
    var blocks: [RoutingBlock] = []
    var generated = 0
    while generated < tokens {
        let block = gen.makeBlock(
            problems: options.problemsPerBlock,
            tokensPerProblem: options.tokensPerProblem,
            domain: blocks.count % 2 == 0 ? "humaneval" : "gsm8k"
        )
        generated += block.tokenCount
        blocks.append(block)
    }
    return blocks
}

/// The presets in the order of the `--all-shapes` table: the Mixtral reference first, then by
/// size (L x E x k), the remaining presets after them by name.
let benchmarkShapeOrder = [
    "mixtral-8x7b", "gpt-oss-20b", "gpt-oss-120b", "qwen3-30b-a3b", "deepseek-v3", "qwen3-235b-a22b", "kimi-k2",
]

/// `--all-shapes`: runs this binary once per preset with `--row`, so that each preset's peak
/// memory (VmHWM) is that of a fresh process, and prints the rows under one header.
func runEveryShape(_ options: AnalyzersBenchmark) throws {
    let others = ModelShape.presets.keys.filter { !benchmarkShapeOrder.contains($0) }.sorted()
    let executable = fileSize("/proc/self/exe") != nil ? "/proc/self/exe" : CommandLine.arguments[0]
    print(
        "analyzer benchmark, every preset: transition + multihop (order \(options.maxOrder)) + domain through MultiplexAnalyzer, \(options.records) records each"
    )
    print(shapeRowHeader)
    for preset in benchmarkShapeOrder + others {
        flushStandardOutput()  // the children write to the same output
        var arguments = [
            "analyzers", "--row", "--shape", preset, "--records", "\(options.records)", "--max-order",
            "\(options.maxOrder)", "--tokens-per-problem", "\(options.tokensPerProblem)", "--problems-per-block",
            "\(options.problemsPerBlock)",
        ]
        if let tokens = options.tokens { arguments += ["--tokens", "\(tokens)"] }
        if options.digest { arguments.append("--digest") }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        try child.run()
        child.waitUntilExit()
        if child.terminationStatus != 0 {
            print(
                "\(preset.padding(toLength: 16, withPad: " ", startingAt: 0)) failed: exit status \(child.terminationStatus)"
            )
        }
    }
    print("")
    print(
        "records = token-layer cells; M rec/s = records / wall seconds of consume(); peak MiB = the child's VmHWM (generated blocks included)."
    )
}

/// The columns of a `--row` line.
let shapeRowHeader =
    "preset           L    E    k   records     M rec/s   cpu M rec/s   finish s   peak MiB   notes"

/// `--row`: the combined analyzers on one preset, fed `--records` records once, as one table
/// row. An analyzer that refuses the shape (throws in `begin`) is named in the notes as
/// `refused: <message>` and the figures are those of the others.
func runShapeRow(_ options: AnalyzersBenchmark) throws {
    guard let shape = ModelShape.presets[options.shape] else {
        throw ValidationError("--shape: unknown preset '\(options.shape)'")
    }
    let tokens = options.tokens ?? max(options.tokensPerProblem, min(200_000, 4_000_000 / max(1, shape.layers)))
    let blocks = benchmarkBlocks(shape: shape, tokens: tokens, options: options)
    let mux = MultiplexAnalyzer([TransitionAnalyzer(), MultiHopAnalyzer(maxOrder: options.maxOrder), DomainAnalyzer()])
    try mux.begin(AnalysisContext(shape: shape))
    var notes = mux.failures.map { "refused: \($0.analyzer): \($0.message)" }
    var fed = 0
    let start = ContinuousClock.now
    let cpuStart = processCPUSeconds()
    outer: while fed < options.records {
        for b in blocks {
            try mux.consume(b)
            fed += b.recordCount
            if fed >= options.records { break outer }
        }
    }
    mux.flush()
    let consumeTime = durationSeconds(ContinuousClock.now - start)
    let consumeCPU = processCPUSeconds() - cpuStart
    let refusedAtBegin = mux.failures.count
    let finishStart = ContinuousClock.now
    let (reports, failures) = mux.finishAll()
    let finishTime = durationSeconds(ContinuousClock.now - finishStart)
    notes += failures.dropFirst(refusedAtBegin).map { "failed: \($0.analyzer) \($0.stage): \($0.message)" }
    let peak = memoryMiB().peak ?? .nan
    func cell(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
    let cells: [String] = [
        cell(options.shape, 16), cell("\(shape.layers)", 4), cell("\(shape.experts)", 4), cell("\(shape.topK)", 3),
        cell("\(fed)", 11), cell(format(Double(fed) / consumeTime / 1e6, 1), 9),
        cell(format(Double(fed) / consumeCPU / 1e6, 1), 13), cell(format(finishTime, 3), 10), cell(format(peak, 1), 10),
        notes.isEmpty ? "-" : notes.joined(separator: "; "),
    ]
    print(cells.joined(separator: " "))
    if options.digest {
        for r in reports { print("  digest \(r.analyzer): \(fnv1a(r.json.jsonString()))") }
    }
}

/// The 64-bit FNV-1a hash of a string's UTF-8 bytes, in hex.
private func fnv1a(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(h, radix: 16)
}
