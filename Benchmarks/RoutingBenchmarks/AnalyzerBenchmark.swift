// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// Analyzer throughput: consume() and finish() of the transition, multihop and domain analyzers,
// each alone and all together through MultiplexAnalyzer, on synthetic Mixtral-shaped routing.
//   swift run -c release moe-routing-benchmarks analyzers [--records 60000000] [--tokens 200000]
//     [--max-order 4] [--only transition|multihop|domain|all] [--shape mixtral-8x7b|tiny-mixtral|...]
//     [--tokens-per-problem 512] [--problems-per-block 8] [--digest]
// Small blocks (`--shape tiny-mixtral --tokens-per-problem 200 --problems-per-block 1`, what a
// live capture of the tiny model hands over per finished request) show the per-block costs.

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

/// Runs the analyzer benchmark.
///
/// Options: `--records N` token-layer records to feed each analyzer (default 60,000,000);
/// `--tokens N` distinct tokens generated once and fed repeatedly (default 200,000);
/// `--max-order N` the multihop path predictor's context order (default 4);
/// `--only transition|multihop|domain|all` (default: every configuration);
/// `--digest` also prints an FNV-1a hash of each report's JSON (to check that an optimisation
/// leaves results unchanged).
func runAnalyzerBenchmark(_ args: [String]) throws {
    var records = 60_000_000
    var distinctTokens = 200_000
    var only: String?
    var maxOrder = 4
    var digest = false
    var shape = ModelShape.mixtral8x7B
    var tokensPerProblem = 512
    var problemsPerBlock = 8
    func positive(_ value: String?, _ name: String) throws -> Int {
        guard let value, let n = Int(value), n > 0 else { throw AnalyzerBenchmarkError.usage("\(name) needs a positive integer") }
        return n
    }
    var i = 0
    while i < args.count {
        let a = args[i]
        let v = i + 1 < args.count ? args[i + 1] : nil
        switch a {
        case "--records":
            records = try positive(v, "--records")
            i += 2
        case "--tokens":
            distinctTokens = try positive(v, "--tokens")
            i += 2
        case "--max-order":
            maxOrder = try positive(v, "--max-order")
            i += 2
        case "--only":
            guard let v else { throw AnalyzerBenchmarkError.usage("--only needs transition, multihop, domain or all") }
            only = v
            i += 2
        case "--shape":
            guard let v, let s = ModelShape.presets[v] else {
                throw AnalyzerBenchmarkError.usage("--shape needs one of \(ModelShape.presets.keys.sorted().joined(separator: ", "))")
            }
            shape = s
            i += 2
        case "--tokens-per-problem":
            tokensPerProblem = try positive(v, "--tokens-per-problem")
            i += 2
        case "--problems-per-block":
            problemsPerBlock = try positive(v, "--problems-per-block")
            i += 2
        case "--digest":
            digest = true
            i += 1
        default:
            throw AnalyzerBenchmarkError.usage(
                "unknown option '\(a)'; options: --records N, --tokens N, --max-order N, --only NAME, --shape NAME, --tokens-per-problem N, --problems-per-block N, --digest"
            )
        }
    }
    var gen = SyntheticRouting(shape: shape, seed: 42, dependence: 0.5, missingRate: 0.001)
    var blocks: [RoutingBlock] = []
    var generated = 0
    let genStart = ContinuousClock.now
    while generated < distinctTokens {
        let block = gen.makeBlock(
            problems: problemsPerBlock, tokensPerProblem: tokensPerProblem, domain: blocks.count % 2 == 0 ? "humaneval" : "gsm8k"
        )
        generated += block.tokenCount
        blocks.append(block)
    }
    let recordsPerPass = blocks.reduce(0) { $0 + $1.recordCount }
    print("analyzer benchmark: \(shape), \(blocks.count) blocks of \(problemsPerBlock * tokensPerProblem) tokens")
    print("  generated \(generated) tokens (\(recordsPerPass) records) in \(format(durationSeconds(ContinuousClock.now - genStart))) s; fed repeatedly")
    let m0 = memoryMiB()
    print("  memory after generation: peak \(format(m0.peak ?? .nan, 1)) MiB, current \(format(m0.current ?? .nan, 1)) MiB")

    var configurations: [(String, () -> [any RoutingAnalyzer])] = [
        ("transition", { [TransitionAnalyzer()] }),
        ("multihop", { [MultiHopAnalyzer(maxOrder: maxOrder)] }),
        ("domain", { [DomainAnalyzer()] }),
        ("transition+multihop", { [MultiplexAnalyzer([TransitionAnalyzer(), MultiHopAnalyzer(maxOrder: maxOrder)])] }),
        ("all (multiplex)", { [MultiplexAnalyzer([TransitionAnalyzer(), MultiHopAnalyzer(maxOrder: maxOrder), DomainAnalyzer()])] }),
    ]
    if let only, only != "all" {
        configurations = configurations.filter { $0.0.hasPrefix(only) }
        guard !configurations.isEmpty else { throw AnalyzerBenchmarkError.usage("--only: unknown analyzer '\(only)'") }
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
            let cpuStart = threadCPUSeconds()
            outer: while fed < target {
                for b in blocks {
                    try a.consume(b)
                    fed += b.recordCount
                    if fed >= target { break outer }
                }
            }
            let consumeTime = durationSeconds(ContinuousClock.now - start)
            let consumeCPU = threadCPUSeconds() - cpuStart
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
    print("peak MiB is the process high-water mark (VmHWM), so it can only grow; equal peaks at both sizes show memory does not grow with records.")
}

/// The 64-bit FNV-1a hash of a string's UTF-8 bytes, in hex.
private func fnv1a(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(h, radix: 16)
}

/// A bad benchmark option.
enum AnalyzerBenchmarkError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self {
        case .usage(let m): return m
        }
    }
}
