// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

/// The multihop analyzer on the hand trace of ``TransitionHandTrace`` (figures in comments), and
/// its properties on synthetic traces.
struct MultiHopAnalyzerTests {
    @Test func distancesByHand() throws {
        let json = try TransitionHandTrace.run(MultiHopAnalyzer()).json
        #expect(json["distances"]?.arrayValue?.count == 2)
        // Distance 1 pools both layer pairs: as the transition analyzer's pooled figures.
        let d1 = json["distances"]?[0]
        #expect(d1?["distance"]?.intValue == 1)
        #expect(d1?["pairs"]?.intValue == 9)
        #expect(d1?["skipped_pairs"]?.intValue == 1)
        #expect(close(d1?["top1_same"], 4.0 / 9))
        #expect(close(d1?["overlap_fraction"], 10.0 / 18))
        #expect(close(d1?["any_overlap"], 8.0 / 9))
        #expect(close(d1?["set_same"], 2.0 / 9))
        // Distance 2 = layers (0, 2); t4 lacks layer 2. t1 {0,1}->{3,0}: 0->3, overlap 1;
        //   t2 {1,2}->{2,3}: 1->2, 1; t3 {0,3}->{1,2}: 0->1, 0; t5 {0,1}->{2,0}: 0->2, 1.
        //   top-1 same 0/4, overlap 3/8, any 3/4, identical 0.
        let d2 = json["distances"]?[1]
        #expect(d2?["distance"]?.intValue == 2)
        #expect(d2?["pairs"]?.intValue == 4)
        #expect(d2?["skipped_pairs"]?.intValue == 1)
        #expect(close(d2?["top1_same"], 0))
        #expect(close(d2?["overlap_fraction"], 0.375))
        #expect(close(d2?["any_overlap"], 0.75))
        #expect(close(d2?["set_same"], 0))
        // Per-layer matrix form: rate[l][l+d], null on and below the diagonal.
        let same = json["per_layer"]?["top1_same"]
        #expect(same?[0]?[0] == .null)
        #expect(same?[1]?[0] == .null)
        #expect(close(same?[0]?[1], 0.4))
        #expect(close(same?[1]?[2], 0.5))
        #expect(close(same?[0]?[2], 0))
        #expect(json["per_layer"]?["pairs"]?[0]?[2]?.intValue == 4)
    }

    @Test func distanceOnePredictionMatchesTheTransitionAnalyzer() throws {
        let multi = try TransitionHandTrace.run(MultiHopAnalyzer()).json
        let single = try TransitionHandTrace.run(TransitionAnalyzer()).json
        // The d = 1 predictor is the transition analyzer's predictor pooled over layer pairs.
        for key in ["top1_accuracy", "top2_accuracy", "set_recall", "coverage"] {
            #expect(multi["distances"]?[0]?["prediction"]?[key] == single["pooled"]?["prediction"]?[key])
        }
        // And per pair (0, 1): 2/5 (worked out in TransitionAnalyzerTests).
        #expect(close(multi["per_layer"]?["top1_accuracy"]?[0]?[1], 0.4))
        #expect(close(multi["per_layer"]?["mutual_information_bits"]?[0]?[1], 0.970951, 1e-6))
    }

    @Test func mutualInformationMatrixByHand() throws {
        let json = try TransitionHandTrace.run(MultiHopAnalyzer()).json
        let m = json["mutual_information_matrix"]
        // Diagonal: entropy of each layer's top-1. Layer 0 top-1: 0,1,0,2,0 -> p = 3/5, 1/5, 1/5:
        //   1.370951. Layer 2 top-1 (t4 missing): 3,2,1,2 -> p = 1/4, 1/2, 1/4: 1.5 bits.
        #expect(close(m?[0]?[0], 1.370951, 1e-6))
        #expect(close(m?[2]?[2], 1.5, 1e-12))
        // Off-diagonal: symmetric; (0, 1) = 0.970951 bits (TransitionAnalyzerTests).
        #expect(close(m?[0]?[1], 0.970951, 1e-6))
        #expect(m?[0]?[1] == m?[1]?[0])
        // (0, 2): pairs (0,3), (1,2), (0,1), (0,2), n = 4: rows p = 3/4, 1/4 (0.811278 bits);
        //   columns 3, 2, 1, 2 -> p = 1/4, 1/2, 1/4 (1.5 bits); four distinct cells (2 bits):
        //   MI = 0.811278 + 1.5 - 2 = 0.311278.
        #expect(close(m?[0]?[2], 0.311278, 1e-6))
    }

    @Test func pathPredictorByHand() throws {
        let json = try TransitionHandTrace.run(MultiHopAnalyzer()).json
        let p = json["path_predictor"]
        #expect(p?["max_order"]?.intValue == 4)
        // L = 3: contexts of at most 2 previous layers.
        #expect(p?["effective_max_order"]?.intValue == 2)
        // Target layer 1 from top1_0 (order 1): as the transition predictor: 5 predictions,
        //   top-1 2, top-2 3, answered at order 1 for t1, t3, t5; t2, t4 fall back.
        let t1 = p?["by_target_layer"]?[0]
        #expect(t1?["layer"]?.intValue == 1)
        #expect(t1?["predictions"]?.intValue == 5)
        #expect(close(t1?["top1_accuracy"], 0.4))
        #expect(close(t1?["top2_accuracy"], 0.6))
        #expect(close(t1?["order_coverage"]?["order_1"], 0.6))
        #expect(close(t1?["order_coverage"]?["fallback"], 0.4))
        // Target layer 2 (t4 lacks it), context (top1_0, top1_1):
        //   t1 (0,0)->3, t2 (1,2)->2 [problem 0]; t3 (0,0)->1 [problem 1]; t5 (0,2)->2 [problem 2].
        //   t1: train has (0,0) from t3 -> guesses [1,0]; truth 3: miss, miss (order 2).
        //   t2: (1,2) unseen; order 1 context top1_1 = 2 seen in t5 (->2) -> [2,0]: hit (order 1).
        //   t3: (0,0) from t1 -> [3,0]; truth 1: miss, miss (order 2).
        //   t5: (0,2) unseen; top1_1 = 2 seen in t2 (->2) -> [2,0]: hit (order 1).
        //   top-1 2/4, top-2 2/4; order 2 2/4, order 1 2/4.
        //   Baseline (training marginal of top1_2): p0 test [0,1,1,0] -> [1,2]: t1 miss/miss,
        //   t2 miss/hit; p1 test [0,0,2,1] -> [2,3]: t3 miss/miss; p2 test [0,1,1,1] -> [1,2]:
        //   t5 miss/hit -> top-1 0, top-2 2/4.
        let t2 = p?["by_target_layer"]?[1]
        #expect(t2?["layer"]?.intValue == 2)
        #expect(t2?["predictions"]?.intValue == 4)
        #expect(close(t2?["top1_accuracy"], 0.5))
        #expect(close(t2?["top2_accuracy"], 0.5))
        #expect(close(t2?["order_coverage"]?["order_2"], 0.5))
        #expect(close(t2?["order_coverage"]?["order_1"], 0.5))
        #expect(close(t2?["baseline_most_frequent"]?["top1_accuracy"], 0))
        #expect(close(t2?["baseline_most_frequent"]?["top2_accuracy"], 0.5))
        // Overall: 9 predictions, top-1 4/9, top-2 5/9; order 2 2/9, order 1 5/9, fallback 2/9;
        //   coverage 7/9; baseline top-1 (1 + 0)/9, top-2 (4 + 2)/9.
        #expect(p?["predictions"]?.intValue == 9)
        #expect(close(p?["accuracy"], 4.0 / 9))
        #expect(close(p?["top2_accuracy"], 5.0 / 9))
        #expect(close(p?["coverage"], 7.0 / 9))
        #expect(close(p?["order_coverage"]?["order_2"], 2.0 / 9))
        #expect(close(p?["order_coverage"]?["order_1"], 5.0 / 9))
        #expect(close(p?["order_coverage"]?["fallback"], 2.0 / 9))
        #expect(close(p?["order_coverage"]?["order_4"], 0))
        #expect(close(p?["baseline_most_frequent"]?["top1_accuracy"], 1.0 / 9))
        #expect(close(p?["baseline_most_frequent"]?["top2_accuracy"], 6.0 / 9))
    }

    @Test func pathFrequenciesByHand() throws {
        let json = try TransitionHandTrace.run(MultiHopAnalyzer()).json
        let paths = json["paths"]
        // Windows of 2: start 0 (5 tokens): 0-0, 1-2, 0-0, 2-3, 0-2; start 1 (4 tokens): 0-3, 2-2,
        //   0-1, 2-2. Counts: 0-0 2, 2-2 2, then 0-1, 0-2, 0-3, 1-2, 2-3 once each (9 windows).
        let w2 = paths?["windows"]?[0]
        #expect(w2?["length"]?.intValue == 2)
        #expect(w2?["windows"]?.intValue == 9)
        #expect(w2?["distinct"]?.intValue == 7)
        let top = w2?["top"]?.arrayValue ?? []
        #expect(top.map { $0["path"] } == [[0, 0], [2, 2], [0, 1], [0, 2], [0, 3], [1, 2], [2, 3]])
        #expect(top.first?["count"]?.intValue == 2)
        #expect(close(top.first?["share"], 2.0 / 9))
        // Expected if independent, 0-0: layer marginals p0(0) = 3/5, p1(0) = 2/5, p2(0) = 0:
        //   5 * 3/5 * 2/5 + 4 * 2/5 * 0 = 1.2. For 2-2: p0(2) = 1/5, p1(2) = 2/5, p2(2) = 2/4:
        //   5 * 1/5 * 2/5 + 4 * 2/5 * 1/2 = 0.4 + 0.8 = 1.2.
        #expect(close(top[0]["expected_independent"], 1.2))
        #expect(close(top[1]["expected_independent"], 1.2))
        // Windows of 3 (L = 3: start 0 only, complete tokens): 0-0-3, 1-2-2, 0-0-1, 0-2-2.
        let w3 = paths?["windows"]?[1]
        #expect(w3?["length"]?.intValue == 3)
        #expect(w3?["windows"]?.intValue == 4)
        #expect(w3?["top"]?.arrayValue?.map { $0["path"] } == [[0, 0, 1], [0, 0, 3], [0, 2, 2], [1, 2, 2]])
        // No window of 4 layers in a 3-layer model: listed as not computed, with the reason.
        #expect(paths?["windows"]?.arrayValue?.count == 3)
        #expect(paths?["windows"]?[2]?["top"] == .null)
        #expect(paths?["windows"]?[2]?["insufficient"]?.stringValue == "needs at least 4 MoE layers")
        // Four complete tokens, four distinct full paths: entropy log2 4 = 2 bits.
        #expect(paths?["complete_tokens"]?.intValue == 4)
        #expect(paths?["distinct_full_paths"]?.intValue == 4)
        #expect(close(paths?["full_path_entropy_bits"], 2))
    }

    @Test func reportHasFigures() throws {
        let report = try TransitionHandTrace.run(MultiHopAnalyzer())
        #expect(report.analyzer == "multihop")
        var heatmaps = 0
        var lines: [ReportFigure.LineChart] = []
        var bars = 0
        for f in report.figures {
            switch f {
            case .heatmap: heatmaps += 1
            case .lines(let l): lines.append(l)
            case .bars: bars += 1
            }
        }
        #expect(heatmaps == 1)
        #expect(bars == 2)
        // Rates and accuracy against distance, each with dashed chance lines.
        #expect(lines.count >= 2)
        for l in lines { #expect(l.series.contains { $0.dashed }) }
        #expect(report.renderMarkdown().contains("Path predictor"))
    }

    @Test func shortHolesStartFromTheLongestHoleFreeContext() throws {
        // One problem per token, 6 problems (folds 0..4 and 0 again), L = 4: the path predictor
        // never crashes and its order shares add up to 1.
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 77, dependence: 0.8, missingRate: 0.15)
        let a = MultiHopAnalyzer()
        try a.begin(AnalysisContext(shape: .tinyMixtral))
        for _ in 0..<4 { try a.consume(gen.makeBlock(problems: 6, tokensPerProblem: 40, domain: "x")) }
        let p = try a.finish().json["path_predictor"]
        let shares = p?["order_coverage"]?.objectMembers?.compactMap { $0.value.doubleValue } ?? []
        #expect(abs(shares.reduce(0, +) - 1) < 1e-9)
        // Predictions = present cells at layers 1..3.
        #expect((p?["predictions"]?.intValue ?? 0) > 0)
    }

    @Test func dependenceShowsUpAtEveryDistance() throws {
        func run(_ dependence: Double) throws -> ReportValue {
            var gen = SyntheticRouting(shape: .tinyMixtral, seed: 5, dependence: dependence)
            let a = MultiHopAnalyzer()
            try a.begin(AnalysisContext(shape: .tinyMixtral, seed: 2))
            for _ in 0..<10 { try a.consume(gen.makeBlock(problems: 4, tokensPerProblem: 100, domain: "x")) }
            return try a.finish().json
        }
        let strong = try run(0.9)
        // Distance d keeps the permutation chain with probability about 0.9^d.
        let d1 = strong["distances"]?[0]?["prediction"]?["top1_accuracy"]?.doubleValue ?? 0
        let d3 = strong["distances"]?[2]?["prediction"]?["top1_accuracy"]?.doubleValue ?? 0
        #expect(d1 > 0.85)
        #expect(d3 > 0.65 && d3 < d1)
        #expect((strong["path_predictor"]?["accuracy"]?.doubleValue ?? 0) > 0.85)
        #expect((strong["mutual_information_matrix"]?[0]?[1]?.doubleValue ?? 0) > 1.5)
        let none = try run(0)
        for d in 0..<3 {
            let excess = none["distances"]?[d]?["mutual_information_excess_bits"]?.doubleValue ?? 1
            #expect(abs(excess) < 0.01)
            let acc = none["distances"]?[d]?["prediction"]?["top1_accuracy"]?.doubleValue ?? 1
            #expect(abs(acc - 0.125) < 0.03)
        }
        // Full-depth paths of independent layers are nearly all distinct (8^4 = 4096 > 4000 tokens).
        let distinct = none["paths"]?["distinct_full_paths"]?.intValue ?? 0
        #expect(distinct > 2500)
    }

    @Test func wideExpertIDsAndLargerTopKTakeTheGeneralPath() throws {
        // E = 300 (two-byte ids), k = 3: no overlap lookup table, no set masks.
        let shape = try ModelShape(layers: 3, experts: 300, topK: 3)
        var b = RoutingBlockBuilder(shape: shape)
        let sets: [[[Int]]] = [
            [[299, 1, 2], [299, 2, 7], [5, 6, 7]],
            [[10, 11, 12], [12, 11, 10], [10, 11, 12]],
        ]
        for (i, token) in sets.enumerated() {
            let t = try b.appendToken(TokenMetadata(domain: "d", problemID: Int64(i), position: 0, phase: .decode))
            for (l, s) in token.enumerated() {
                try b.setCell(token: t, layer: l, experts: s, weights: [0.5, 0.3, 0.2])
            }
        }
        let a = MultiHopAnalyzer(maxOrder: 2)
        try a.begin(AnalysisContext(shape: shape))
        try a.consume(b.makeBlock())
        let json = try a.finish().json
        // d = 1 pairs: token 0: {299,1,2}->{299,2,7}: top-1 same, overlap 2; {299,2,7}->{5,6,7}: 1.
        //   token 1: {10,11,12}->{12,11,10}: 3 (identical set); ->{10,11,12}: 3 (identical).
        //   top-1 same 1/4, overlap (2+1+3+3)/12 = 0.75, any 4/4, identical 2/4.
        let d1 = json["distances"]?[0]
        #expect(close(d1?["top1_same"], 0.25))
        #expect(close(d1?["overlap_fraction"], 0.75))
        #expect(close(d1?["any_overlap"], 1))
        #expect(close(d1?["set_same"], 0.5))
        // Paths are packed 9 bits per id: 2 distinct full paths.
        #expect(json["paths"]?["distinct_full_paths"]?.intValue == 2)
        #expect(json["paths"]?["windows"]?[0]?["top"]?[0]?["path"] == [10, 12])
    }
}
