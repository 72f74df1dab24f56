// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting
import MoERoutingTestKit
import Testing

@testable import DomainAnalyzer
@testable import MultiHopAnalyzer

/// Every fast path of the multihop and domain kernels must count exactly what their general
/// loops count. Each trace is analysed once with the fast paths on (the default) and once forced
/// through the general loop (``MultiHopKernel/Paths/general``, `top2FastPath = false`), and every
/// counter and the whole JSON report must agree; the tallies prove that the default run really
/// took the path under test, so a wrong count on that path fails the comparison.
struct KernelPathTests {
    /// A trace case: the shape, how many cells are missing, and the loops the default run must
    /// take.
    struct Case: CustomTestStringConvertible, Sendable {
        var layers: Int, experts: Int, topK: Int
        var missingRate: Double
        /// The pair loop the default run takes for this shape.
        var pairLoop: PairLoop
        /// Whether tokens present at every layer take the complete-token loop.
        var completeLoop: Bool
        /// Whether only the adjacent pairs keep full tables (the others are summarised: rates
        /// counted by their own loop).
        var summarised = false
        var testDescription: String {
            "L=\(layers) E=\(experts) k=\(topK) missing=\(missingRate)\(summarised ? " summarised" : "")"
        }
    }

    /// The multihop kernel's pair loops (other than the general one).
    enum PairLoop: Sendable {
        case packedTop2, overlapTable, top2Comparisons, setMasks

        /// Chunks this loop counted, from a tally.
        func chunks(_ t: MultiHopKernel.Tally) -> Int {
            switch self {
            case .packedTop2: t.packedTop2
            case .overlapTable: t.overlapTable
            case .top2Comparisons: t.top2Comparisons
            case .setMasks: t.setMasks
            }
        }
    }

    static let cases: [Case] = [
        // Mixtral-like: complete-token loop (L >= 4) beside tokens with holes, packed top-2 pairs.
        Case(layers: 6, experts: 8, topK: 2, missingRate: 0.05, pairLoop: .packedTop2, completeLoop: true),
        // Exactly 4 layers, every token complete.
        Case(layers: 4, experts: 8, topK: 2, missingRate: 0, pairLoop: .packedTop2, completeLoop: true),
        // L != 4 below it: no complete-token loop, packed pairs with missing cells.
        Case(layers: 3, experts: 8, topK: 2, missingRate: 0.1, pairLoop: .packedTop2, completeLoop: false),
        // E^k = 64 with k = 3: the overlap-table pair loop.
        Case(layers: 5, experts: 4, topK: 3, missingRate: 0.05, pairLoop: .overlapTable, completeLoop: false),
        // E^k above the table limit, top-2: four comparisons.
        Case(layers: 5, experts: 16, topK: 2, missingRate: 0.05, pairLoop: .top2Comparisons, completeLoop: false),
        // k = 3, E <= 64: set bitmasks.
        Case(layers: 5, experts: 16, topK: 3, missingRate: 0.05, pairLoop: .setMasks, completeLoop: false),
        // E > 64 (no bitmasks; windows of 4 layers counted sparsely), top-2: four comparisons.
        Case(layers: 5, experts: 80, topK: 2, missingRate: 0.05, pairLoop: .top2Comparisons, completeLoop: false),
        // Summarised pairs' rates from set masks of one, two, four and five words (E = 16, 100,
        // 200, 300), with holes.
        Case(
            layers: 5,
            experts: 16,
            topK: 3,
            missingRate: 0.05,
            pairLoop: .setMasks,
            completeLoop: false,
            summarised: true
        ),
        Case(
            layers: 5,
            experts: 100,
            topK: 3,
            missingRate: 0.05,
            pairLoop: .setMasks,
            completeLoop: false,
            summarised: true
        ),
        Case(
            layers: 5,
            experts: 200,
            topK: 8,
            missingRate: 0.05,
            pairLoop: .setMasks,
            completeLoop: false,
            summarised: true
        ),
        Case(
            layers: 5,
            experts: 300,
            topK: 3,
            missingRate: 0.05,
            pairLoop: .setMasks,
            completeLoop: false,
            summarised: true
        ),
    ]

    private static func blocks(_ c: Case) throws -> [RoutingBlock] {
        let shape = try ModelShape(layers: c.layers, experts: c.experts, topK: c.topK)
        var gen = SyntheticRouting(shape: shape, seed: 77, dependence: 0.6, missingRate: c.missingRate)
        // 2,400 tokens a block: more than one kernel chunk (2,048 tokens).
        return (0..<3).map { gen.makeBlock(problems: 6, tokensPerProblem: 400, domain: $0 == 1 ? "b" : "a") }
    }

    /// Every counter of a finished multihop run, and its report.
    private struct MultiHopCounts: Equatable {
        var pairStats: [Int], pairTop1Same: [Int], pairCounts: [Int], layerTop1: [Int], pathCounts: [Int]
        var windowStarts: [Int]
        var report: ReportValue
    }

    private static func multihop(
        _ blocks: [RoutingBlock],
        paths: MultiHopKernel.Paths,
        summarised: Bool = false
    ) throws -> (MultiHopCounts, MultiHopKernel.Tally) {
        let a = MultiHopAnalyzer(nullReplicates: 3, allPairsBudget: summarised ? 0 : 1 << 24)
        a.kernelPaths = paths
        try a.begin(AnalysisContext(shape: blocks[0].shape, seed: 5))
        for b in blocks { try a.consume(b) }
        let report = try a.finish().json
        let counts = MultiHopCounts(
            pairStats: Array(a.pairStats),
            pairTop1Same: Array(a.pairTop1Same),
            pairCounts: (0..<a.pairCounts.count).map { a.pairCounts[$0] },
            layerTop1: Array(a.layerTop1),
            pathCounts: (0..<a.pathCounts.count).map { a.pathCounts[$0] },
            windowStarts: Array(a.windowStarts),
            report: report
        )
        return (counts, a.kernelTally)
    }

    @Test(arguments: cases)
    func multihopFastPathsCountWhatTheGeneralLoopCounts(_ c: Case) throws {
        let blocks = try Self.blocks(c)
        let (general, generalTally) = try Self.multihop(blocks, paths: .general, summarised: c.summarised)
        let (fast, fastTally) = try Self.multihop(blocks, paths: .all, summarised: c.summarised)
        // The forced run took only the general loop; the default run took the path under test.
        #expect(generalTally.nestedComparisons > 0)
        #expect(generalTally.completeLoop == 0)
        #expect(
            generalTally.packedTop2 + generalTally.overlapTable + generalTally.top2Comparisons + generalTally.setMasks
                == 0
        )
        #expect(c.pairLoop.chunks(fastTally) > 0)
        #expect(fastTally.nestedComparisons == 0)
        // Summarised pairs take the C kernels wherever this CPU has population counts.
        #expect(generalTally.hardwarePopcount == 0)
        #expect((fastTally.hardwarePopcount > 0) == (c.summarised && hardwareKernelLevel > 0))
        if c.completeLoop {
            #expect(fastTally.completeLoop > 0)
            if c.missingRate > 0 { #expect(fastTally.completeLoop < fastTally.records / c.layers) }
        } else {
            #expect(fastTally.completeLoop == 0)
        }
        #expect(fastTally.records == generalTally.records && fastTally.complete == generalTally.complete)
        #expect(fast.pairStats == general.pairStats)
        #expect(fast.pairTop1Same == general.pairTop1Same)
        if c.summarised {
            // Summarised pairs exist, and some of their tokens share a top-1.
            #expect(general.pairTop1Same.reduce(0, +) > 0)
        }
        #expect(fast.pairCounts == general.pairCounts)
        #expect(fast.layerTop1 == general.layerTop1)
        #expect(fast.pathCounts == general.pathCounts)
        #expect(fast.windowStarts == general.windowStarts)
        #expect(fast.report == general.report)
        // The trace is not trivial: pairs were counted.
        #expect(general.pairStats.reduce(0, +) > 0)
    }

    /// Fast paths turned off one after another (the kernel falls back to the next loop each
    /// time) still count the same, and each step reaches another pair loop.
    @Test func multihopEveryFallbackCountsTheSame() throws {
        let blocks = try Self.blocks(Self.cases[0])
        let (general, _) = try Self.multihop(blocks, paths: .general)
        let offs: [MultiHopKernel.Paths] = [
            [.completeTokens], [.packedTop2], [.packedTop2, .overlapTable],
            [.packedTop2, .overlapTable, .top2Comparisons],
            [.packedTop2, .overlapTable, .top2Comparisons, .setMasks],
        ]
        var pairLoops: Set<[Int]> = []
        for off in offs {
            let (counts, tally) = try Self.multihop(blocks, paths: MultiHopKernel.Paths.all.subtracting(off))
            #expect(counts == general, "without paths \(off.rawValue)")
            pairLoops.insert([
                tally.packedTop2, tally.overlapTable, tally.top2Comparisons, tally.setMasks, tally.nestedComparisons,
            ])
        }
        #expect(pairLoops.count == offs.count)
    }

    /// The shared two-word bit count against the standard library's, on random and extreme
    /// words.
    @Test func bitCountOfTwoWordsIsTheSumOfTheirPopulations() {
        var rng = SeededRandom(seed: 3)
        var words: [(UInt64, UInt64)] = [(0, 0), (.max, .max), (.max, 0), (0, 1 << 63), (0x8000_0000_0000_0001, 7)]
        for _ in 0..<2000 { words.append((rng.next(), rng.next() & rng.next())) }
        for (x, y) in words {
            #expect(bitCount(x, y) == x.nonzeroBitCount + y.nonzeroBitCount, "\(x) \(y)")
        }
    }

    // MARK: - Domain

    private static func domain(
        _ blocks: [RoutingBlock],
        fastPath: Bool
    ) throws -> (counts: [[Int]], report: ReportValue) {
        let a = DomainAnalyzer(relabelings: 40, resamples: 20)
        a.top2FastPath = fastPath
        try a.begin(AnalysisContext(shape: blocks[0].shape, seed: 9))
        for b in blocks { try a.consume(b) }
        let folds = a.foldPairs()  // first: it spills the 16-bit counters into the totals
        let counts: [[Int]] = [
            a.domainAffinity.array, a.domainFoldPairs.array, a.problemTokens.array, a.problemRecords.array,
            a.problemIncomplete.array, a.problemUsage.array.map(Int.init), a.problemTop1.array.map(Int.init),
            a.smallPairs.array.map(Int.init), folds,
        ]
        return (counts, try a.finish().json)
    }

    /// The domain kernel's 16-bit per-domain counters spill before they overflow: over 72,000
    /// tokens of one domain (in one block, then in three) at E = k = 2, where every token adds
    /// one to each affinity cell, the affinity and fold-wise top-1 totals equal a direct count
    /// of the blocks, above 65,535.
    @Test(arguments: [1, 3])
    func domainSixteenBitCountersSpillPastTheirRange(_ pieces: Int) throws {
        let s = try ModelShape(layers: 2, experts: 2, topK: 2)
        var gen = SyntheticRouting(shape: s, seed: 5, dependence: 0.8, missingRate: 0.01)
        let blocks = (0..<pieces).map { _ in gen.makeBlock(problems: 6, tokensPerProblem: 12_000 / pieces, domain: "a")
        }
        let a = DomainAnalyzer(relabelings: 2, resamples: 2)
        try a.begin(AnalysisContext(shape: s, seed: 1))
        for b in blocks { try a.consume(b) }
        let folds = a.foldPairs()
        let E = 2
        let P = 1
        var affinity = [Int](repeating: 0, count: P * E * E)
        var top1 = [Int](repeating: 0, count: P * E * E)
        for b in blocks {
            for t in 0..<b.tokenCount {
                for l in 0..<P where b.isPresent(token: t, layer: l) && b.isPresent(token: t, layer: l + 1) {
                    for i in 0..<2 {
                        for j in 0..<2 {
                            affinity[
                                (l * E + b.expert(token: t, layer: l, slot: i)) * E
                                    + b.expert(token: t, layer: l + 1, slot: j)
                            ] += 1
                        }
                    }
                    top1[
                        (l * E + b.expert(token: t, layer: l, slot: 0)) * E + b.expert(token: t, layer: l + 1, slot: 0)
                    ] += 1
                }
            }
        }
        #expect(affinity.max()! > 65_535)
        #expect(a.domainAffinity.array == affinity)
        // Summed over the folds, the fold-wise counts are the domain's top-1 -> top-1 counts.
        var summed = [Int](repeating: 0, count: P * E * E)
        for f in 0..<DomainAnalyzer.crossValidationFolds {
            for c in 0..<(P * E * E) { summed[c] += folds[f * P * E * E + c] }
        }
        #expect(summed == top1)
    }

    /// The domain kernel's top-2 loop against its general loop, with per-problem matrices
    /// (small shapes), without them (`(L-1) E^2` above 2^14) and without transition statistics
    /// (`(L-1) E^2` above 2^20).
    @Test(arguments: [8, 80, 1100])
    func domainTop2LoopCountsWhatTheGeneralLoopCounts(_ experts: Int) throws {
        let s = try ModelShape(layers: experts > 1000 ? 2 : 5, experts: experts, topK: 2)
        var gen = SyntheticRouting(shape: s, seed: 31, dependence: 0.6, missingRate: 0.05)
        let blocks = (0..<4).map { gen.makeBlock(problems: 3, tokensPerProblem: 60, domain: $0 % 2 == 0 ? "a" : "b") }
        let general = try Self.domain(blocks, fastPath: false)
        let fast = try Self.domain(blocks, fastPath: true)
        #expect(fast.counts == general.counts)
        #expect(fast.report == general.report)
        #expect(general.counts[2].reduce(0, +) == 4 * 3 * 60)
        #expect(general.counts[5].reduce(0, +) == 2 * general.counts[3].reduce(0, +))
    }
}
