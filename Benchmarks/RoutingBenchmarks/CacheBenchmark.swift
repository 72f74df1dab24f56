// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import ArgumentParser
import Foundation

/// The `cache` suite's options.
struct CacheBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Cost of the expert cache simulation (ExpertCacheSimulation) for every capacity, per policy."
    )
    @Option(help: "Experts per layer.")
    var experts = 8
    @Option(help: "Experts per token (accesses per token).")
    var topK = 2
    @Option(help: "Tokens of the layer's access sequence.")
    var tokens = 1_875_000

    func validate() throws {
        guard (1...1024).contains(experts) else { throw ValidationError("--experts needs 1...1024, got \(experts)") }
        guard (1...experts).contains(topK) else { throw ValidationError("--top-k needs 1...experts, got \(topK)") }
        guard tokens > 0 else { throw ValidationError("--tokens needs a positive integer, got \(tokens)") }
    }

    func run() throws { runCacheBenchmark(self) }
}

/// Times `ExpertCacheSimulation.hits` for each policy on one generated layer: `tokens` tokens of
/// `topK` distinct experts each, bursty like routing (a token keeps the previous token's top-1
/// a third of the time), skewed usage. One core; the generation is not timed.
func runCacheBenchmark(_ options: CacheBenchmark) {
    var rng = SeededRandom(seed: 3)
    let e = options.experts
    let k = options.topK
    var accesses: [UInt16] = []
    accesses.reserveCapacity(options.tokens * k)
    var previous = 0
    for _ in 0..<options.tokens {
        var set: [Int] = []
        if rng.nextUnit() < 1.0 / 3 { set.append(previous) }
        while set.count < k {
            let u = rng.nextUnit()
            let x = Int(u * u * Double(e))
            if !set.contains(x) { set.append(x) }
        }
        previous = set[0]
        for x in set { accesses.append(UInt16(x)) }
    }
    print("policy   accesses    seconds   hit rate at C = k")
    for policy in ExpertCachePolicy.allCases {
        let clock = ContinuousClock()
        var hits: [Int] = []
        let time = clock.measure {
            hits = ExpertCacheSimulation.hits(accesses: accesses, experts: e, policy: policy)
        }
        let rate = Double(hits[k - 1]) / Double(accesses.count)
        print(
            policy.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                + String(accesses.count).padding(toLength: 12, withPad: " ", startingAt: 0)
                + String(format: "%-10.3f%.3f", durationSeconds(time), rate)
        )
        flushStandardOutput()
    }
}
