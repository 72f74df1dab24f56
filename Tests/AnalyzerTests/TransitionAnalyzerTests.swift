// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing
import TransitionAnalyzer

/// A hand-built trace (E = 4, k = 2, L = 3, domain "d") whose every figure is worked out in the
/// tests' comments. Sets are listed highest weight first.
///
///     token  problem  layer 0  layer 1  layer 2
///     t1     0        {0,1}    {0,2}    {3,0}
///     t2     0        {1,2}    {2,1}    {2,3}
///     t3     1        {0,3}    {0,1}    {1,2}
///     t4     1        {2,3}    {3,2}    missing
///     t5     2        {0,1}    {2,3}    {2,0}
///
/// Problems 0, 1 and 2 of one domain fall in three different folds (consecutive ids go
/// round-robin), so every cross-validation below trains on the other two problems.
enum TransitionHandTrace {
    static let shape = try! ModelShape(layers: 3, experts: 4, topK: 2, name: "hand")
    static let tokens: [(problem: Int64, layers: [[Int]?])] = [
        (0, [[0, 1], [0, 2], [3, 0]]),
        (0, [[1, 2], [2, 1], [2, 3]]),
        (1, [[0, 3], [0, 1], [1, 2]]),
        (1, [[2, 3], [3, 2], nil]),
        (2, [[0, 1], [2, 3], [2, 0]]),
    ]

    /// The trace as one block, or split into one block per token.
    static func blocks(split: Bool = false) throws -> [RoutingBlock] {
        var b = RoutingBlockBuilder(shape: shape)
        var out: [RoutingBlock] = []
        for (i, token) in tokens.enumerated() {
            let t = try b.appendToken(
                TokenMetadata(domain: "d", problemID: token.problem, position: Int32(i), phase: .decode)
            )
            for (l, set) in token.layers.enumerated() {
                guard let set else { continue }
                try b.setCell(token: t, layer: l, experts: set, weights: [0.7, 0.3])
            }
            if split { out.append(b.makeBlock()) }
        }
        if !split { out.append(b.makeBlock()) }
        return out
    }

    static func run<A: RoutingAnalyzer>(_ a: A, split: Bool = false) throws -> AnalyzerReport {
        try a.begin(AnalysisContext(shape: shape, seed: 1))
        for block in try blocks(split: split) { try a.consume(block) }
        return try a.finish()
    }
}

func close(_ v: ReportValue?, _ x: Double, _ tol: Double = 1e-9) -> Bool {
    guard let d = v?.doubleValue else { return false }
    return abs(d - x) <= tol
}

func doubles(_ v: ReportValue?) -> [Double]? { v?.arrayValue?.map { $0.doubleValue ?? .nan } }

struct TransitionAnalyzerTests {
    @Test func problemsFallInDistinctFolds() {
        let folds = ProblemFolds()
        #expect(Set((0...2).map { folds.fold(domain: "d", problemID: Int64($0)) }).count == 3)
    }

    @Test func sameIdRatesByHand() throws {
        let json = try TransitionHandTrace.run(TransitionAnalyzer()).json
        let l0 = json["layers"]?[0]
        // Layer 0 -> 1, five pairs:
        //   top-1: t1 0->0 same, t2 1->2, t3 0->0 same, t4 2->3, t5 0->2 => 2/5.
        //   overlaps: t1 {0} 1, t2 {1,2} 2, t3 {0} 1, t4 {2,3} 2, t5 none 0 => 6 / (2 * 5) = 0.6;
        //   any overlap 4/5; identical sets t2, t4 => 2/5.
        #expect(l0?["layer"]?.intValue == 0)
        #expect(l0?["pairs"]?.intValue == 5)
        #expect(l0?["skipped_pairs"]?.intValue == 0)
        #expect(close(l0?["top1_same"], 0.4))
        #expect(close(l0?["overlap_fraction"], 0.6))
        #expect(close(l0?["any_overlap"], 0.8))
        #expect(close(l0?["set_same"], 0.4))
        // Layer 1 -> 2: t4 lacks layer 2 (skipped). t1 {0,2}->{3,0}: 0->3, overlap 1;
        //   t2 {2,1}->{2,3}: same, 1; t3 {0,1}->{1,2}: 0->1, 1; t5 {2,3}->{2,0}: same, 1.
        //   top-1 same 2/4, overlap 4/8, any 4/4, identical 0.
        let l1 = json["layers"]?[1]
        #expect(l1?["layer"]?.intValue == 1)
        #expect(l1?["pairs"]?.intValue == 4)
        #expect(l1?["skipped_pairs"]?.intValue == 1)
        #expect(close(l1?["top1_same"], 0.5))
        #expect(close(l1?["overlap_fraction"], 0.5))
        #expect(close(l1?["any_overlap"], 1))
        #expect(close(l1?["set_same"], 0))
        // Pooled: 9 pairs, 4 same top-1, overlap sum 10 of 18, any 8, identical 2.
        let pooled = json["pooled"]
        #expect(pooled?["pairs"]?.intValue == 9)
        #expect(pooled?["skipped_pairs"]?.intValue == 1)
        #expect(close(pooled?["top1_same"], 4.0 / 9))
        #expect(close(pooled?["overlap_fraction"], 10.0 / 18))
        #expect(close(pooled?["any_overlap"], 8.0 / 9))
        #expect(close(pooled?["set_same"], 2.0 / 9))
        // Chance for E = 4, k = 2: 1/4, 2/4, 1 - C(2,2)/C(4,2) = 5/6, 1/C(4,2) = 1/6.
        #expect(close(json["chance"]?["top1_same"], 0.25))
        #expect(close(json["chance"]?["overlap_fraction"], 0.5))
        #expect(close(json["chance"]?["any_overlap"], 5.0 / 6))
        #expect(close(json["chance"]?["set_same"], 1.0 / 6))
        #expect(json["tokens"]?.intValue == 5)
        #expect(json["pairs"]?.intValue == 9)
        #expect(json["records"]?.intValue == 14)
    }

    @Test func affinityAndTop1MatricesByHand() throws {
        let json = try TransitionHandTrace.run(TransitionAnalyzer()).json
        let l0 = json["layers"]?[0]
        // Every (i in S0, j in S1):
        //   t1 (0,0)(0,2)(1,0)(1,2); t2 (1,2)(1,1)(2,2)(2,1); t3 (0,0)(0,1)(3,0)(3,1);
        //   t4 (2,3)(2,2)(3,3)(3,2); t5 (0,2)(0,3)(1,2)(1,3).
        // Row 0 (0 in S0 for t1, t3, t5: 3 pairs): counts 2,1,2,1 -> 2/3, 1/3, 2/3, 1/3.
        // Row 1 (t1, t2, t5): 1,1,3,1 -> 1/3, 1/3, 1, 1/3.
        // Row 2 (t2, t4): 0,1,2,1 -> 0, 1/2, 1, 1/2.   Row 3 (t3, t4): 1,1,1,1 -> 1/2 each.
        let m = l0?["matrix"]?.arrayValue?.map { doubles($0) ?? [] } ?? []
        let expected: [[Double]] = [
            [2, 1, 2, 1].map { $0 / 3 }, [1, 1, 3, 1].map { $0 / 3 }, [0, 0.5, 1, 0.5], [0.5, 0.5, 0.5, 0.5],
        ]
        #expect(m.count == 4)
        for i in 0..<4 {
            for j in 0..<4 { #expect(abs(m[i][j] - expected[i][j]) < 1e-12) }
            // Each row sums to k = 2.
            #expect(abs(m[i].reduce(0, +) - 2) < 1e-12)
        }
        // Top-1 counts: row 0 -> [2,0,1,0] (t1, t3 -> 0; t5 -> 2); row 1 -> [0,0,1,0]; row 2 -> [0,0,0,1].
        #expect(l0?["top1_counts"] == [[2, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
        let t = l0?["top1_matrix"]?.arrayValue?.map { doubles($0) ?? [] } ?? []
        #expect(t.count == 4)
        #expect(t[0] == [2.0 / 3, 0, 1.0 / 3, 0])
        // Top-1 row 3 (expert 3 never the top-1 of layer 0) has no data: null, not zeros.
        #expect(l0?["top1_matrix"]?[3] == [nil, nil, nil, nil])
    }

    @Test func mutualInformationByHand() throws {
        let json = try TransitionHandTrace.run(TransitionAnalyzer()).json
        let l0 = json["layers"]?[0]
        // Layer 0 -> 1 top-1 table (n = 5): (0,0) 2, (0,2) 1, (1,2) 1, (2,3) 1.
        //   H(row): p = 3/5, 1/5, 1/5 -> 0.6 log2(5/3) + 0.4 log2 5 = 0.442179 + 0.928771 = 1.370951
        //   H(col): p = 2/5, 2/5, 1/5 -> 0.8 log2 2.5 + 0.2 log2 5 = 1.057542 + 0.464386 = 1.521928
        //   H(joint): 2/5, 1/5 x 3 -> 0.4 log2 2.5 + 0.6 log2 5 = 0.528771 + 1.393157 = 1.921928
        //   MI = 1.370951 + 1.521928 - 1.921928 = 0.970951; H(col | row) = 1.921928 - 1.370951 = 0.550977.
        #expect(close(l0?["mutual_information_bits"], 0.970951, 1e-6))
        #expect(close(l0?["conditional_entropy_bits"], 0.550977, 1e-6))
        // Excess = observed - null mean, whatever the null drew.
        let null = l0?["mutual_information_null_bits"]?.doubleValue ?? .nan
        #expect(close(l0?["mutual_information_excess_bits"], 0.970951 - null, 1e-6))
        #expect(null >= 0 && null <= 0.970951 + 1e-9)
        // Miller-Madow: + ((3-1) + (3-1) - (4-1)) / (2 * 5 * ln 2) = 1 / (10 ln 2).
        #expect(close(l0?["mutual_information_miller_madow_bits"], 0.970951 + 1 / (10 * log(2.0)), 1e-6))
    }

    @Test func crossValidatedPredictionByHand() throws {
        let json = try TransitionHandTrace.run(TransitionAnalyzer()).json
        let p = json["layers"]?[0]?["prediction"]
        // Predict top1 at layer 1 from top1 at layer 0, training on the other two problems.
        // Test problem 0, train {t3 0->0, t4 2->3, t5 0->2}: column totals [1,0,1,1] -> fallback [0,2].
        //   t1: row 0 trained [1,0,1,0] -> guesses [0,2]; truth 0: top-1 hit, top-2 hit;
        //       set {0,2} vs S1 {0,2}: 2. Covered.
        //   t2: row 1 unseen -> fallback [0,2]; truth 2: top-1 miss, top-2 hit; set {0,2} vs {2,1}: 1.
        // Test problem 1, train {t1 0->0, t2 1->2, t5 0->2}: column totals [1,0,2,0] -> fallback [2,0].
        //   t3: row 0 [1,0,1,0] -> [0,2] (tie to the lowest id); truth 0: hit, hit; set {0,2} vs {0,1}: 1.
        //   t4: row 2 unseen -> [2,0]; truth 3: miss, miss; set {2,0} vs {3,2}: 1.
        // Test problem 2, train {t1 0->0, t2 1->2, t3 0->0, t4 2->3}: totals [2,0,1,1] -> fallback [0,2].
        //   t5: row 0 [2,0,0,0] -> [0,1]; truth 2: miss, miss; set {0,1} vs {2,3}: 0.
        // Model: top-1 2/5, top-2 3/5, set recall (2+1+1+1+0)/10 = 0.5, coverage (t1, t3, t5) 3/5.
        // Baseline (fallback for every row): t1 [0,2] hit/hit/2; t2 [0,2] miss/hit/1;
        //   t3 [2,0] miss/hit/1; t4 [2,0] miss/miss/1; t5 [0,2] miss/hit/1
        //   -> top-1 1/5, top-2 4/5, set recall 6/10.
        #expect(close(p?["top1_accuracy"], 0.4))
        #expect(close(p?["top2_accuracy"], 0.6))
        #expect(close(p?["set_recall"], 0.5))
        #expect(close(p?["coverage"], 0.6))
        #expect(close(p?["baseline_most_frequent"]?["top1_accuracy"], 0.2))
        #expect(close(p?["baseline_most_frequent"]?["top2_accuracy"], 0.8))
        #expect(close(p?["baseline_most_frequent"]?["set_recall"], 0.6))
        #expect(close(p?["random"]?["top1_accuracy"], 0.25))
        #expect(close(p?["random"]?["top2_accuracy"], 0.5))
        #expect(close(p?["random"]?["set_recall"], 0.5))
        #expect(p?["folds"]?.intValue == 5)
        #expect(p?["problems"]?.intValue == 3)
    }

    @Test func jsonKeysAreStable() throws {
        let json = try TransitionHandTrace.run(TransitionAnalyzer()).json
        let top = json.objectMembers?.map(\.key) ?? []
        for key in ["layers", "pooled", "chance", "shape", "tokens", "pairs"] { #expect(top.contains(key)) }
        let layer = json["layers"]?[0]?.objectMembers?.map(\.key) ?? []
        #expect(
            Array(layer.prefix(13)) == [
                "layer", "pairs", "skipped_pairs", "top1_same", "overlap_fraction", "any_overlap", "set_same", "matrix",
                "top1_matrix", "top1_counts", "mutual_information_bits", "mutual_information_null_bits",
                "mutual_information_null_sd_bits",
            ]
        )
        for key in [
            "mutual_information_null_method", "mutual_information_excess_bits", "conditional_entropy_bits",
            "prediction",
        ] {
            #expect(layer.contains(key))
        }
        // A hand-sized table is always drawn: replicates, never moments.
        #expect(json["layers"]?[0]?["mutual_information_null_method"]?.stringValue == "replicates")
        let pred = json["layers"]?[0]?["prediction"]?.objectMembers?.map(\.key) ?? []
        for key in [
            "top1_accuracy", "top2_accuracy", "set_recall", "coverage", "baseline_most_frequent", "random", "folds",
            "problems",
        ] {
            #expect(pred.contains(key))
        }
        #expect(json["layers"]?.arrayValue?.count == 2)
        for key in [
            "top1_same", "overlap_fraction", "any_overlap", "set_same", "mutual_information_bits", "affinity_deviation",
            "prediction",
        ] {
            #expect(json["pooled"]?[key] != nil)
        }
        // No affinity matrix pools expert ids across layer pairs.
        for key in ["matrix", "top1_matrix", "top1_counts", "empty_affinity_rows"] {
            #expect(json["pooled"]?[key] == nil)
        }
    }

    @Test func reportHasTablesFiguresAndHeadlines() throws {
        let report = try TransitionHandTrace.run(TransitionAnalyzer())
        #expect(report.analyzer == "transition")
        #expect(report.tables.count >= 3)
        // One top-1 heatmap per layer pair, and no pooled affinity heatmap (ids are per layer).
        let heatmaps = report.figures.filter { if case .heatmap = $0 { return true } else { return false } }
        #expect(heatmaps.count == 2)
        #expect(report.headlines.contains { $0.reference.contains("chance 0.250") })
        #expect(report.notes.contains { $0.contains("1 of 10 layer pairs had a missing layer") })
        #expect(report.renderText().contains("Same-id rates"))
    }

    @Test func splitBlocksGiveTheSameBytes() throws {
        let a = try TransitionHandTrace.run(TransitionAnalyzer())
        let b = try TransitionHandTrace.run(TransitionAnalyzer(), split: true)
        #expect(a.json.jsonString() == b.json.jsonString())
        #expect(a.renderText() == b.renderText())
    }

    @Test func fewerThanTwoProblemsGivesNullPredictionsAndANote() throws {
        var b = RoutingBlockBuilder(shape: TransitionHandTrace.shape)
        for i in 0..<4 {
            let t = try b.appendToken(TokenMetadata(domain: "d", problemID: 7, position: Int32(i), phase: .decode))
            for l in 0..<3 { try b.setCell(token: t, layer: l, experts: [i % 4, (i + 1) % 4], weights: [0.6, 0.4]) }
        }
        let a = TransitionAnalyzer()
        try a.begin(AnalysisContext(shape: TransitionHandTrace.shape))
        try a.consume(b.makeBlock())
        let report = try a.finish()
        #expect(report.json["layers"]?[0]?["prediction"]?["top1_accuracy"] == .null)
        #expect(report.json["pooled"]?["prediction"]?["coverage"] == .null)
        #expect(report.notes.contains { $0.contains("cross-validation needs tokens in at least 2 folds") })
        // Every token keeps its set across layers: top-1 always the same.
        #expect(close(report.json["pooled"]?["top1_same"], 1))
    }

    @Test func emptyStreamAndSingleLayerDoNotCrash() throws {
        let empty = try TransitionAnalyzer().finish()
        #expect(empty.json["tokens"]?.intValue == 0)
        let one = TransitionAnalyzer()
        let shape = try ModelShape(layers: 1, experts: 4, topK: 2)
        var gen = SyntheticRouting(shape: shape, seed: 1)
        try one.begin(AnalysisContext(shape: shape))
        try one.consume(gen.makeBlock(problems: 2, tokensPerProblem: 3, domain: "x"))
        let r = try one.finish()
        #expect(r.json["layers"]?.arrayValue?.count == 0)
        #expect(r.notes.contains { $0.contains("single layer") })
    }

    @Test func rejectsABlockOfAnotherShape() throws {
        let a = TransitionAnalyzer()
        try a.begin(AnalysisContext(shape: .tinyMixtral))
        var gen = SyntheticRouting(shape: .mixtral8x7B, seed: 1)
        #expect(throws: RoutingError.self) {
            try a.consume(gen.makeBlock(problems: 1, tokensPerProblem: 2, domain: "x"))
        }
    }

    @Test func dependenceShowsUpInInformationAndPrediction() throws {
        func run(_ dependence: Double) throws -> ReportValue {
            var gen = SyntheticRouting(shape: .tinyMixtral, seed: 21, dependence: dependence)
            let a = TransitionAnalyzer()
            try a.begin(AnalysisContext(shape: .tinyMixtral, seed: 4))
            for _ in 0..<10 { try a.consume(gen.makeBlock(problems: 4, tokensPerProblem: 100, domain: "x")) }
            return try a.finish().json["pooled"]!
        }
        let strong = try run(0.9)
        // With dependence 0.9 the next top-1 is a permutation of this one 90% of the time
        // (plus 1/8 of the rest): accuracy about 0.9 + 0.1/8 = 0.91; the baseline stays near 1/8.
        #expect((strong["mutual_information_bits"]?.doubleValue ?? 0) > 1.5)
        #expect((strong["prediction"]?["top1_accuracy"]?.doubleValue ?? 0) > 0.85)
        #expect((strong["prediction"]?["baseline_most_frequent"]?["top1_accuracy"]?.doubleValue ?? 1) < 0.2)
        let none = try run(0)
        // No dependence: the MI is the small-sample bias, matched by the shuffled null.
        let excess = none["mutual_information_excess_bits"]?.doubleValue ?? 1
        #expect(abs(excess) < 0.01)
        let acc = none["prediction"]?["top1_accuracy"]?.doubleValue ?? 1
        let base = none["prediction"]?["baseline_most_frequent"]?["top1_accuracy"]?.doubleValue ?? 0
        #expect(abs(acc - base) < 0.03)
        #expect(abs(acc - 0.125) < 0.03)
        #expect(abs((none["top1_same"]?.doubleValue ?? 0) - 0.125) < 0.02)
    }

    @Test func missingCellsAreSkippedAndCounted() throws {
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 8, missingRate: 0.2)
        var blocks: [RoutingBlock] = []
        for _ in 0..<3 { blocks.append(gen.makeBlock(problems: 3, tokensPerProblem: 50, domain: "x")) }
        let a = TransitionAnalyzer()
        try a.begin(AnalysisContext(shape: .tinyMixtral))
        for b in blocks { try a.consume(b) }
        let json = try a.finish().json
        for l in 0..<3 {
            // Count pairs with both layers present directly from the blocks.
            var present = 0
            var tokens = 0
            for b in blocks {
                tokens += b.tokenCount
                for t in 0..<b.tokenCount where b.isPresent(token: t, layer: l) && b.isPresent(token: t, layer: l + 1) {
                    present += 1
                }
            }
            #expect(json["layers"]?[l]?["pairs"]?.intValue == present)
            #expect(json["layers"]?[l]?["skipped_pairs"]?.intValue == tokens - present)
            #expect(tokens - present > 0)
        }
        #expect(json["records"]?.intValue == blocks.reduce(0) { $0 + $1.recordCount })
    }

    @Test func wideExpertIDsUseTheGeneralOverlapPath() throws {
        // E = 300 (two-byte ids, no set masks), k = 3.
        let shape = try ModelShape(layers: 2, experts: 300, topK: 3)
        var b = RoutingBlockBuilder(shape: shape)
        let sets: [[[Int]]] = [
            [[299, 1, 2], [299, 2, 7]], [[10, 11, 12], [12, 11, 10]], [[5, 6, 7], [8, 9, 4]],
        ]
        for (i, token) in sets.enumerated() {
            let t = try b.appendToken(TokenMetadata(domain: "d", problemID: Int64(i), position: 0, phase: .decode))
            for (l, s) in token.enumerated() {
                try b.setCell(token: t, layer: l, experts: s, weights: [0.5, 0.3, 0.2])
            }
        }
        let a = TransitionAnalyzer()
        try a.begin(AnalysisContext(shape: shape))
        try a.consume(b.makeBlock())
        let l0 = try a.finish().json["layers"]?[0]
        // Overlaps 2, 3, 0 -> (2 + 3 + 0) / 9; top-1 same for the first token only; one identical set.
        #expect(close(l0?["top1_same"], 1.0 / 3))
        #expect(close(l0?["overlap_fraction"], 5.0 / 9))
        #expect(close(l0?["any_overlap"], 2.0 / 3))
        #expect(close(l0?["set_same"], 1.0 / 3))
        // Affinity row 299 (one pair): each of 299, 2, 7 at probability 1; the row sums to k = 3.
        let row = doubles(l0?["matrix"]?[299]) ?? []
        #expect(row[299] == 1 && row[2] == 1 && row[7] == 1)
        #expect(row.reduce(0, +) == 3)
    }
}
