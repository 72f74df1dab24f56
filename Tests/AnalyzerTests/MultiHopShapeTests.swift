// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

@testable import MultiHopAnalyzer

/// The multihop analyzer at the shapes of 2026 MoE models (up to L = 128, E = 512, k = 8): no
/// refusal, memory bounded by the shape, detailed pairs exact, summarised pairs exact under the
/// sample size and close above it, bounded structures mergeable, a planted dependence found.
struct MultiHopShapeTests {
    /// A block of random routing: `tokens` per problem, each layer's k distinct experts uniform.
    /// `plant(top1 at layer a) -> top1 at layer b` forces a dependence between two layers.
    static func randomBlock(
        shape: ModelShape,
        problems: Int,
        tokens: Int,
        domain: String,
        seed: UInt64,
        missingRate: Double = 0,
        plant: (from: Int, to: Int, map: (Int) -> Int)? = nil
    ) throws -> RoutingBlock {
        var rng = SeededRandom(seed: seed)
        var b = RoutingBlockBuilder(shape: shape)
        let E = shape.experts
        let k = shape.topK
        let weights = (0..<k).map { Float(k - $0) / Float(k * (k + 1) / 2) }
        for p in 0..<problems {
            for pos in 0..<tokens {
                let t = try b.appendToken(
                    TokenMetadata(domain: domain, problemID: Int64(p), position: Int32(pos), phase: .decode)
                )
                var top1 = [Int](repeating: 0, count: shape.layers)
                for l in 0..<shape.layers {
                    if missingRate > 0, rng.nextUnit() < missingRate { continue }
                    var set: [Int] = []
                    if let plant, l == plant.to { set.append(plant.map(top1[plant.from])) }
                    while set.count < k {
                        let e = rng.nextIndex(below: E)
                        if !set.contains(e) { set.append(e) }
                    }
                    top1[l] = set[0]
                    try b.setCell(token: t, layer: l, experts: set, weights: weights)
                }
            }
        }
        return b.makeBlock()
    }

    static func run(_ a: MultiHopAnalyzer, _ blocks: [RoutingBlock], seed: UInt64 = 3) throws -> ReportValue {
        try a.begin(AnalysisContext(shape: blocks[0].shape, seed: seed))
        for b in blocks { try a.consume(b) }
        return try a.finish().json
    }

    // MARK: - Every shape

    struct Shape: CustomTestStringConvertible, Sendable {
        var layers: Int, experts: Int, topK: Int
        var testDescription: String { "L=\(layers) E=\(experts) k=\(topK)" }
    }

    static let modernShapes = [
        Shape(layers: 48, experts: 128, topK: 8),  // Qwen3-30B-A3B
        Shape(layers: 58, experts: 256, topK: 8),  // DeepSeek-V3
        Shape(layers: 60, experts: 384, topK: 8),  // Kimi-K2
        Shape(layers: 128, experts: 512, topK: 8),  // the largest supported
    ]

    @Test(arguments: modernShapes)
    func everyModernShapeRunsWithMemoryBoundedByTheShape(_ s: Shape) throws {
        let shape = try ModelShape(layers: s.layers, experts: s.experts, topK: s.topK)
        let blocks = try (0..<2).map {
            try Self.randomBlock(shape: shape, problems: 3, tokens: 8, domain: $0 == 0 ? "a" : "b", seed: UInt64($0))
        }
        // A detail budget of 2^24 counters (64 MiB) instead of 2^27 keeps the debug-build test
        // quick; at E >= 256 it still leaves some adjacent pairs summarised.
        let a = MultiHopAnalyzer(nullReplicates: 2, detailBudget: 1 << 24)
        let json = try Self.run(a, blocks)
        let L = s.layers
        let E = s.experts
        let F = a.folds.count
        let P = L * (L - 1) / 2
        #expect(json["tokens"]?.intValue == 48)
        // Pair tables: only the detailed pairs, within the budget; adjacent pairs first.
        let perPair = F * E * 2 * E
        #expect(a.pairCounts.count == a.detailed.count * perPair)
        #expect(a.pairCounts.count <= a.detailBudget)
        #expect(a.detailed.count == min(L - 1, a.detailBudget / perPair))
        #expect(a.detailed.allSatisfy { $0.later == $0.earlier + 1 })
        #expect(a.detailed.count + a.droppedDetail.count == L - 1)
        // Path tables within their budget per order.
        #expect(a.pathCounts.count <= (L - 1) * F * E + a.effectiveMaxOrder * a.pathTableBudget)
        let detail = json["detail"]
        #expect(detail?["summarised_pairs"]?.intValue == P - a.detailed.count)
        #expect(detail?["sample"]?["tokens"]?.intValue == 48)
        #expect(detail?["sample"]?["exact"] == .bool(true))
        // Every pair has exact rates; a summarised pair has sampled MI, a detailed one a prediction.
        let perLayer = json["per_layer"]
        #expect(perLayer?["pairs"]?[0]?[L - 1]?.intValue == 48)
        #expect(perLayer?["detailed"]?[0]?[1] == .bool(true))
        #expect(perLayer?["detailed"]?[0]?[2] == .bool(false))
        #expect(perLayer?["sampled_tokens"]?[0]?[2]?.intValue == 48)
        #expect(perLayer?["mutual_information_bits"]?[0]?[2]?.doubleValue != nil)
        #expect(perLayer?["top1_accuracy"]?[0]?[1]?.doubleValue != nil)
        #expect(perLayer?["top1_accuracy"]?[0]?[2] == .null)
        #expect(
            json["distances"]?[1]?["prediction"]?["insufficient"]?.stringValue == MultiHopReportBuilder.noDetailedPair
        )
    }

    /// The path predictor's context order at each large E (documented in docs/analyzers.md).
    @Test func pathOrderDegradesWithTheStateSpace() throws {
        func order(_ L: Int, _ E: Int) throws -> Int {
            let a = MultiHopAnalyzer(nullReplicates: 0)
            try a.begin(AnalysisContext(shape: try ModelShape(layers: L, experts: E, topK: 8)))
            return a.effectiveMaxOrder
        }
        #expect(try order(48, 128) == 1)
        #expect(try order(58, 256) == 1)
        #expect(try order(60, 384) == 1)
        #expect(try order(128, 512) == 0)
        #expect(try order(32, 8) == 4)
    }

    // MARK: - Detailed and summarised pairs

    /// Brute-force top-1 table of layers (l, j) over every token.
    static func bruteTable(_ blocks: [RoutingBlock], _ l: Int, _ j: Int) -> ContingencyTable {
        let s = blocks[0].shape
        var t = ContingencyTable(rows: s.experts, columns: s.experts)
        for b in blocks {
            for tok in 0..<b.tokenCount where b.isPresent(token: tok, layer: l) && b.isPresent(token: tok, layer: j) {
                t[b.expert(token: tok, layer: l, slot: 0), b.expert(token: tok, layer: j, slot: 0)] += 1
            }
        }
        return t
    }

    @Test func detailedPairsAreExactAndSummarisedRatesCountEveryToken() throws {
        let shape = try ModelShape(layers: 6, experts: 80, topK: 4)
        let blocks = try (0..<3).map {
            try Self.randomBlock(
                shape: shape,
                problems: 4,
                tokens: 60,
                domain: "d\($0 % 2)",
                seed: 10 + UInt64($0),
                missingRate: 0.05,
                plant: (1, 4, { ($0 * 7 + 3) % 80 })
            )
        }
        let a = MultiHopAnalyzer(nullReplicates: 3, detailPairs: [LayerPair(0, 4)], allPairsBudget: 0)
        let json = try Self.run(a, blocks)
        #expect(
            a.detailed == [
                LayerPair(0, 1), LayerPair(0, 4), LayerPair(1, 2), LayerPair(2, 3), LayerPair(3, 4), LayerPair(4, 5),
            ]
        )
        // The (0, 4) tables, summed over folds, equal a brute-force count of every token.
        let slot = a.detailed.firstIndex(of: LayerPair(0, 4))!
        let E = 80
        let F = a.folds.count
        let brute = Self.bruteTable(blocks, 0, 4)
        var counted = ContingencyTable(rows: E, columns: E)
        for f in 0..<F {
            for x in 0..<E {
                for y in 0..<E { counted[x, y] += a.pairCounts[((slot * F + f) * E + x) * 2 * E + y] }
            }
        }
        #expect(counted == brute)
        #expect(brute.total > 600)
        let perLayer = json["per_layer"]
        #expect(close(perLayer?["mutual_information_bits"]?[0]?[4], brute.mutualInformationBits, 1e-12))
        // A summarised pair (1, 3): exact rates from every token, brute force.
        var pairs = 0
        var same = 0
        var overlap = 0
        var any = 0
        var equal = 0
        for b in blocks {
            for t in 0..<b.tokenCount where b.isPresent(token: t, layer: 1) && b.isPresent(token: t, layer: 3) {
                let x = (0..<4).map { b.expert(token: t, layer: 1, slot: $0) }
                let y = (0..<4).map { b.expert(token: t, layer: 3, slot: $0) }
                let ov = Set(x).intersection(y).count
                pairs += 1
                same += x[0] == y[0] ? 1 : 0
                overlap += ov
                any += ov > 0 ? 1 : 0
                equal += ov == 4 ? 1 : 0
            }
        }
        #expect(perLayer?["detailed"]?[1]?[3] == .bool(false))
        #expect(perLayer?["pairs"]?[1]?[3]?.intValue == pairs)
        #expect(close(perLayer?["top1_same"]?[1]?[3], Double(same) / Double(pairs), 1e-12))
        #expect(close(perLayer?["overlap_fraction"]?[1]?[3], Double(overlap) / Double(pairs * 4), 1e-12))
        #expect(close(perLayer?["any_overlap"]?[1]?[3], Double(any) / Double(pairs), 1e-12))
        #expect(close(perLayer?["set_same"]?[1]?[3], Double(equal) / Double(pairs), 1e-12))
        #expect(same > 0 && any > 0)
        // Under the sample size (720 tokens < 4096), the summarised (1, 4) MI is exact.
        let planted = Self.bruteTable(blocks, 1, 4)
        #expect(perLayer?["sampled_tokens"]?[1]?[4]?.intValue == planted.total)
        #expect(close(perLayer?["mutual_information_bits"]?[1]?[4], planted.mutualInformationBits, 1e-12))
        // The planted map makes the layer-4 top-1 a function of layer 1's: full top-1 mass.
        let mass = perLayer?["affinity_top_m_mass"]?[1]?[4]?.doubleValue ?? 0
        let permuted = perLayer?["affinity_top_m_mass_permuted"]?[1]?[4]?.doubleValue ?? 1
        #expect(mass > permuted + 0.1)
    }

    @Test func summarisedMutualInformationIsCloseAboveTheSampleSize() throws {
        let shape = try ModelShape(layers: 5, experts: 16, topK: 2)
        var gen = SyntheticRouting(shape: shape, seed: 8, dependence: 0.7)
        let blocks = (0..<4).map { gen.makeBlock(problems: 5, tokensPerProblem: 300, domain: $0 % 2 == 0 ? "a" : "b") }
        // 6,000 tokens, 1,500 sampled.
        let sampled = try Self.run(MultiHopAnalyzer(nullReplicates: 5, allPairsBudget: 0, sampleSize: 1500), blocks)
        #expect(sampled["detail"]?["sample"]?["tokens"]?.intValue == 1500)
        #expect(sampled["detail"]?["sample"]?["exact"] == .bool(false))
        for (l, j) in [(0, 2), (1, 4), (0, 3)] {
            let exact = Self.bruteTable(blocks, l, j).mutualInformationBits
            let estimate = sampled["per_layer"]?["mutual_information_bits"]?[l]?[j]?.doubleValue ?? -1
            #expect(sampled["per_layer"]?["sampled_tokens"]?[l]?[j]?.intValue == 1500)
            // The plug-in bias at n = 1,500 and 16 x 16 cells is about 0.08 bits above n = 6,000.
            #expect(abs(estimate - exact) < 0.15, "pair (\(l), \(j)): \(estimate) vs \(exact)")
            #expect(estimate > 0.2)
        }
    }

    @Test func plantedDependenceBetweenFarLayersIsFoundAndIndependenceIsNot() throws {
        let shape = try ModelShape(layers: 10, experts: 128, topK: 8)
        func run(planted: Bool) throws -> ReportValue {
            let blocks = try (0..<2).map {
                try Self.randomBlock(
                    shape: shape,
                    problems: 5,
                    tokens: 200,
                    domain: $0 == 0 ? "x" : "y",
                    seed: 40 + UInt64($0),
                    plant: planted ? (2, 7, { ($0 * 37 + 11) % 128 }) : nil
                )
            }
            return try Self.run(MultiHopAnalyzer(nullReplicates: 10, allPairsBudget: 0), blocks)
        }
        let planted = try run(planted: true)
        let excess = planted["per_layer"]?["mutual_information_excess_bits"]
        let sd = planted["per_layer"]?["mutual_information_null_sd_bits"]
        #expect(planted["per_layer"]?["detailed"]?[2]?[7] == .bool(false))
        let found = excess?[2]?[7]?.doubleValue ?? 0
        #expect(found > 1)
        #expect(found > 10 * (sd?[2]?[7]?.doubleValue ?? 1))
        let independent = try run(planted: false)
        for l in 0..<10 {
            for j in (l + 1)..<10 where j > l + 1 {
                let x = independent["per_layer"]?["mutual_information_excess_bits"]?[l]?[j]?.doubleValue ?? 1
                #expect(abs(x) < 0.25, "pair (\(l), \(j)): excess \(x)")
                if !(l == 2 && j == 7) {
                    let y = excess?[l]?[j]?.doubleValue ?? 1
                    #expect(abs(y) < 0.25, "planted trace, pair (\(l), \(j)): excess \(y)")
                }
            }
        }
    }

    // MARK: - Merge

    /// Every bounded structure past its capacity (sample, full-path table, window dictionaries)
    /// at DeepSeek-V3's E and k still merges to the one-pass bytes.
    @Test func mergeEqualsOnePassAtALargeShapeWithEveryBoundReached() throws {
        let shape = try ModelShape(layers: 12, experts: 256, topK: 8)
        var rng = SeededRandom(seed: 4)
        let blocks = try (0..<8).map { i in
            try Self.randomBlock(
                shape: shape,
                problems: 1 + rng.nextIndex(below: 3),
                tokens: 5 + rng.nextIndex(below: 30),
                domain: ["a", "b", "c"][i % 3],
                seed: UInt64(100 + i),
                missingRate: 0.03
            )
        }
        let make = {
            MultiHopAnalyzer(
                nullReplicates: 2,
                detailPairs: [LayerPair(2, 9)],
                sampleSize: 40,
                fullPathCapacity: 30,
                windowCapacity: 200
            ) as any RoutingAnalyzer
        }
        let context = AnalysisContext(shape: shape, seed: 9)
        let report = try MergeCheck.assertHalvesEqualOnePass(makeAnalyzer: make, context: context, blocks: blocks)
        try MergeCheck.assertShardsEqualOnePass(makeAnalyzer: make, context: context, blocks: blocks, trials: 3)
        let json = report.json
        #expect(json["detail"]?["sample"]?["tokens"]?.intValue == 40)
        #expect(json["paths"]?["distinct_full_paths_estimated"] == .bool(true))
        #expect(json["paths"]?["full_path_entropy_bits"] == .null)
        #expect(json["paths"]?["windows"]?[1]?["sampled_tokens"]?.intValue == 40)
        #expect(json["per_layer"]?["detailed"]?[2]?[9] == .bool(true))
        // The estimate of distinct paths (all distinct here: random routing) is within the sketch's error.
        let complete = json["paths"]?["complete_tokens"]?.intValue ?? 0
        let estimate = json["paths"]?["distinct_full_paths"]?.intValue ?? 0
        #expect(complete > 30)
        #expect(estimate == complete)  // under the sketch size (1,024), the sketch counts exactly
    }

    // MARK: - Options

    @Test func layerPairListsParseAndBadOnesSayWhy() throws {
        #expect(try LayerPair.parseList("0:5,3:10") == [LayerPair(0, 5), LayerPair(3, 10)])
        #expect(try LayerPair.parseList(" 1:2") == [LayerPair(1, 2)])
        func message(_ text: String, layers: Int? = nil) -> String {
            do {
                _ = try LayerPair.parseList(text, layers: layers)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(message("5:3").contains("l must be below j (write 3:5)"))
        #expect(message("3:3").contains("must differ"))
        #expect(message("a:b").contains("malformed"))
        #expect(message("1-2").contains("malformed"))
        #expect(message("0:5,").contains("malformed"))
        #expect(message("-1:2").contains("cannot be negative"))
        #expect(message("0:48", layers: 48).contains("out of range: the model has 48 MoE layers (0...47)"))
        #expect(!message("0:47", layers: 48).contains("range"))
    }

    @Test func beginRefusesAnOutOfRangePairInOneLine() throws {
        let a = MultiHopAnalyzer(detailPairs: [LayerPair(3, 70)])
        do {
            try a.begin(AnalysisContext(shape: try ModelShape(layers: 48, experts: 128, topK: 8)))
            Issue.record("begin accepted pair 3:70 at 48 layers")
        } catch {
            let text = "\(error)"
            #expect(text.contains("3:70"))
            #expect(text.contains("0 <= l < j <= 47"))
            #expect(!text.contains("\n"))
        }
    }

    /// Mixtral-sized shapes keep every pair in full: no summary keys, as before.
    @Test func smallShapesKeepEveryPairInFull() throws {
        var gen = SyntheticRouting(shape: .mixtral8x7B, seed: 1, dependence: 0.3)
        let a = MultiHopAnalyzer(nullReplicates: 1)
        let json = try Self.run(a, [gen.makeBlock(problems: 3, tokensPerProblem: 20, domain: "m")])
        #expect(a.allPairsDetailed)
        #expect(json["detail"] == nil)
        #expect(json["per_layer"]?["detailed"] == nil)
        #expect(json["distances"]?[5]?["prediction"]?["top1_accuracy"]?.doubleValue != nil)
    }
}
