// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import DomainAnalyzer
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

/// The transition and multihop reports say what they could not compute, draw no data as no data,
/// give every predictor accuracy an interval and flag a predictor below its baseline.
struct ReportHonestyTests {
    /// Tokens as (problem, per layer the experts highest weight first, nil for missing).
    static func block(_ shape: ModelShape, _ tokens: [(Int64, [[Int]?])]) throws -> RoutingBlock {
        var b = RoutingBlockBuilder(shape: shape)
        for (i, tok) in tokens.enumerated() {
            let t = try b.appendToken(TokenMetadata(domain: "d", problemID: tok.0, position: Int32(i), phase: .decode))
            for (l, cell) in tok.1.enumerated() {
                guard let cell else { continue }
                try b.setCell(token: t, layer: l, experts: cell, weights: (0..<cell.count).map { 1 - 0.1 * Double($0) })
            }
        }
        return b.makeBlock()
    }

    static func run(_ a: some RoutingAnalyzer, _ shape: ModelShape, _ blocks: [RoutingBlock]) throws -> AnalyzerReport {
        try a.begin(AnalysisContext(shape: shape, seed: 3))
        for b in blocks { try a.consume(b) }
        return try a.finish()
    }

    /// E = 2, k = 1, L = 2; problem 0: 0->0 once, 1->0 three times; problem 1: 0->1 once, 1->0
    /// three times. Problems 0 and 1 fall in different folds.
    ///   Train on 1, test 0: row 0 -> 1 (miss on 0->0), row 1 -> 0 (3 hits): 3/4; the baseline
    ///   (most frequent of layer 1 in problem 1: 0) hits all 4.
    ///   Train on 0, test 1: row 0 -> 0 (miss on 0->1), row 1 -> 0: 3/4; baseline 0: 3/4.
    /// Model 6/8 = 0.75 (folds 0.75-0.75), baseline 7/8 = 0.875 (folds 0.75-1).
    static let belowShape = try! ModelShape(layers: 2, experts: 2, topK: 1)
    static func belowBaseline() throws -> RoutingBlock {
        try block(
            belowShape,
            [(0, [[0], [0]])] + Array(repeating: (0, [[1], [0]]), count: 3)
                + [(1, [[0], [1]])] + Array(repeating: (1, [[1], [0]]), count: 3)
        )
    }

    @Test func transitionPredictorHasAFoldIntervalAndIsFlaggedBelowItsBaseline() throws {
        let r = try Self.run(TransitionAnalyzer(), Self.belowShape, [try Self.belowBaseline()])
        let p = r.json["pooled"]?["prediction"]
        #expect(close(p?["top1_accuracy"], 0.75))
        #expect(close(p?["interval"]?["top1_accuracy"]?["low"], 0.75))
        #expect(close(p?["interval"]?["top1_accuracy"]?["high"], 0.75))
        #expect(p?["interval"]?["method"]?.stringValue?.contains("range over folds by problem") == true)
        #expect(close(p?["baseline_most_frequent"]?["top1_accuracy"], 0.875))
        #expect(close(p?["baseline_most_frequent"]?["interval"]?["top1_accuracy"]?["low"], 0.75))
        #expect(close(p?["baseline_most_frequent"]?["interval"]?["top1_accuracy"]?["high"], 1))
        #expect(p?["below_baseline"] == .bool(true))
        #expect(r.json["layers"]?[0]?["prediction"]?["below_baseline"] == .bool(true))
        #expect(
            r.headlines.contains {
                $0.label.contains("next-layer top-1 prediction") && $0.value.contains("WORSE than baseline")
            }
        )
        #expect(r.notes.contains { $0.contains("below its most-frequent baseline") && $0.contains("0->1") })
        // The chart carries the interval.
        let chart = r.figures.compactMap { f -> ReportFigure.LineChart? in
            if case .lines(let c) = f, c.title.hasPrefix("Next-layer top-1 prediction") { return c }
            return nil
        }.first
        #expect(chart?.series.first?.lower == [0.75])
        #expect(chart?.series.first?.upper == [0.75])
        #expect(chart?.series[1].lower == [0.75])
        #expect(chart?.series[1].upper == [1])
    }

    @Test func multihopPredictorsHaveFoldIntervalsAndAreFlaggedBelowBaseline() throws {
        let r = try Self.run(MultiHopAnalyzer(), Self.belowShape, [try Self.belowBaseline()])
        let d1 = r.json["distances"]?[0]?["prediction"]
        #expect(close(d1?["top1_accuracy"], 0.75))
        #expect(close(d1?["interval"]?["top1_accuracy"]?["high"], 0.75))
        #expect(close(d1?["baseline_most_frequent"]?["interval"]?["top1_accuracy"]?["high"], 1))
        #expect(d1?["below_baseline"] == .bool(true))
        #expect(close(r.json["per_layer"]?["top1_accuracy_low"]?[0]?[1], 0.75))
        #expect(close(r.json["per_layer"]?["top1_accuracy_high"]?[0]?[1], 0.75))
        // The path predictor at L = 2 is the same one-layer context predictor.
        let path = r.json["path_predictor"]
        #expect(close(path?["accuracy"], 0.75))
        #expect(close(path?["interval"]?["top1_accuracy"]?["low"], 0.75))
        #expect(close(path?["baseline_most_frequent"]?["top1_accuracy"], 0.875))
        #expect(close(path?["baseline_most_frequent"]?["interval"]?["top1_accuracy"]?["high"], 1))
        #expect(path?["below_baseline"] == .bool(true))
        #expect(
            r.headlines.contains { $0.label.contains("path predictor") && $0.value.contains("WORSE than baseline") }
        )
    }

    @Test func onePredictionIntervalNeedsTwoFolds() throws {
        // One problem: no cross-validation, so prediction and interval are null with a reason.
        let shape = try ModelShape(layers: 3, experts: 4, topK: 2)
        let tokens: [(Int64, [[Int]?])] = (0..<6).map { (i: Int) -> (Int64, [[Int]?]) in
            let a: [Int] = [i % 4, (i + 1) % 4]
            let b: [Int] = [(i + 2) % 4, i % 4]
            let c: [Int] = [i % 4, (i + 3) % 4]
            return (7, [a, b, c])
        }
        let t = try Self.run(TransitionAnalyzer(), shape, [try Self.block(shape, tokens)])
        let p = t.json["pooled"]?["prediction"]
        #expect(p?["top1_accuracy"] == .null)
        #expect(p?["interval"] == .null)
        #expect(
            p?["insufficient"]?.stringValue
                == "cross-validation needs tokens in at least 2 folds by problem; 1 problem(s) fill 1 fold(s)"
        )
        #expect(t.json["layers"]?[1]?["prediction"]?["insufficient"] != nil)
        let m = try Self.run(MultiHopAnalyzer(), shape, [try Self.block(shape, tokens)])
        #expect(
            m.json["distances"]?[0]?["prediction"]?["insufficient"]?.stringValue?.hasPrefix("cross-validation needs")
                == true
        )
        #expect(m.json["path_predictor"]?["accuracy"] == .null)
        #expect(m.json["path_predictor"]?["insufficient"]?.stringValue?.hasPrefix("cross-validation needs") == true)
    }

    @Test func affinityRowsOfExpertsNeverSelectedAreNoData() throws {
        // E = 4, k = 2: expert 3 is never selected at layer 0.
        let shape = try ModelShape(layers: 2, experts: 4, topK: 2)
        let tokens: [(Int64, [[Int]?])] = [
            (0, [[0, 1], [3, 2]]), (1, [[1, 2], [0, 3]]), (2, [[2, 0], [1, 2]]),
        ]
        let r = try Self.run(TransitionAnalyzer(), shape, [try Self.block(shape, tokens)])
        let l0 = r.json["layers"]?[0]
        let none: ReportValue = [nil, nil, nil, nil]
        #expect(l0?["matrix"]?[3] == none)
        #expect(close(l0?["matrix"]?[0]?[3], 0.5))
        #expect(l0?["empty_affinity_rows"] == [3])
        // Expert 3 is never the top-1 either: its top-1 heatmap row is NaN (drawn as no data).
        guard case .heatmap(let h) = r.figures.first else {
            Issue.record("no top-1 heatmap")
            return
        }
        #expect(h.values[3].allSatisfy { $0.isNaN })
        #expect(!h.values[0].contains { $0.isNaN })
        #expect(r.notes.contains { $0.contains("no data") })
    }

    @Test func pooledAffinityIsAPerPairDeviationNotAPooledMatrix() throws {
        // Hand trace (TransitionAnalyzerTests), layer 0 -> 1: affinity rows 0..3 with n_i = 3, 3,
        // 2, 2 tokens (N = 10), next-layer usage m = 0.4, 0.4, 0.8, 0.4; sum_j |P(j|i) - m_j| =
        // 0.5333, 0.4, 0.8, 0.6; D = (3 x 0.5333 + 3 x 0.4 + 2 x 0.8 + 2 x 0.6) / 10 / (2k) = 0.14.
        let r = try TransitionHandTrace.run(TransitionAnalyzer())
        #expect(close(r.json["layers"]?[0]?["affinity_deviation"], 0.14, 1e-12))
        #expect((r.json["layers"]?[0]?["affinity_deviation_independent"]?.doubleValue ?? 0) > 0)
        #expect(r.json["pooled"]?["affinity_deviation"]?.doubleValue != nil)
        #expect(r.json["pooled"]?["matrix"] == nil)
        #expect(
            !r.figures.contains { f in
                if case .heatmap(let h) = f { return h.title.contains("all layer pairs") } else { return false }
            }
        )
        #expect(
            r.figures.contains { f in
                if case .lines(let c) = f { return c.title.hasPrefix("Affinity deviation") } else { return false }
            }
        )
        #expect(!r.renderText().contains("Pooled affinity"))
    }

    @Test func affinityDeviationMatchesItsIndependenceReferenceOnlyWithoutDependence() throws {
        func pooled(_ dependence: Double) throws -> ReportValue? {
            var gen = SyntheticRouting(shape: .tinyMixtral, seed: 31, dependence: dependence)
            let blocks = (0..<5).map { _ in gen.makeBlock(problems: 4, tokensPerProblem: 100, domain: "x") }
            return try Self.run(TransitionAnalyzer(), .tinyMixtral, blocks).json["pooled"]
        }
        // 2,000 tokens, about 500 per source expert: the sampling bias is small, and with no
        // dependence the observed deviation is that bias.
        let none = try pooled(0)
        let observed = none?["affinity_deviation"]?.doubleValue ?? -1
        let expected = none?["affinity_deviation_independent"]?.doubleValue ?? -1
        #expect(expected > 0.01 && expected < 0.05)
        #expect(abs(observed - expected) < 0.4 * expected)
        // Strong top-1 dependence (the other member stays random, so half of each set's
        // combinations carry it): several times the reference.
        let strong = try pooled(0.9)
        let strongReference = strong?["affinity_deviation_independent"]?.doubleValue ?? 1
        #expect((strong?["affinity_deviation"]?.doubleValue ?? 0) > 4 * strongReference)
        #expect(strongReference < 0.05)
    }

    @Test func multihopMutualInformationHeatmapMasksTheDiagonal() throws {
        let r = try TransitionHandTrace.run(MultiHopAnalyzer())
        guard case .heatmap(let h) = r.figures.first else {
            Issue.record("no MI heatmap")
            return
        }
        #expect(h.title.contains("diagonal"))
        for i in 0..<3 { #expect(h.values[i][i].isNaN) }
        #expect(abs(h.values[0][1] - 0.970951) < 1e-6)
        // The JSON keeps the diagonal (entropies).
        #expect(close(r.json["mutual_information_matrix"]?[2]?[2], 1.5))
        #expect(r.notes.contains { $0.contains("diagonal (a layer with itself = its entropy) masked") })
    }

    @Test func frequentPathBarsCarryTheirExpectedCountUnderIndependence() throws {
        let r = try TransitionHandTrace.run(MultiHopAnalyzer())
        let bars = r.figures.compactMap { f -> ReportFigure.BarChart? in
            if case .bars(let b) = f { return b } else { return nil }
        }
        #expect(!bars.isEmpty)
        let top = r.json["paths"]?["windows"]?[0]?["top"]?.arrayValue ?? []
        #expect(bars[0].reference == top.map { $0["expected_independent"]?.doubleValue ?? -1 })
        #expect(bars[0].referenceLabel?.contains("independent") == true)
        #expect(r.tables.contains { $0.columns.contains("expected if independent") })
    }

    @Test func multihopOnTwoLayersSaysWhatNeedsThree() throws {
        let shape = try ModelShape(layers: 2, experts: 8, topK: 2)
        var gen = SyntheticRouting(shape: shape, seed: 2)
        let r = try Self.run(MultiHopAnalyzer(), shape, [gen.makeBlock(problems: 4, tokensPerProblem: 20, domain: "x")])
        let windows = r.json["paths"]?["windows"]?.arrayValue ?? []
        #expect(windows.map { $0["length"]?.intValue } == [2, 3, 4])
        guard windows.count == 3 else { return }
        #expect(windows[0]["insufficient"] == nil)
        #expect(windows[1]["insufficient"]?.stringValue == "needs at least 3 MoE layers")
        #expect(windows[1]["top"] == .null && windows[1]["windows"] == .null)
        #expect(windows[2]["insufficient"]?.stringValue == "needs at least 4 MoE layers")
        #expect(r.json["distances"]?.arrayValue?.count == 1)
        #expect(r.json["insufficient"]?["distances_2_and_more"]?.stringValue == "needs at least 3 MoE layers")
        #expect(
            r.headlines.contains {
                $0.label.contains("distances 2..") && $0.value == "not computed (needs at least 3 MoE layers)"
            }
        )
        #expect(r.notes.contains { $0.hasPrefix("not computed:") && $0.contains("needs at least 3 MoE layers") })
        #expect(r.json["path_predictor"]?["accuracy"]?.doubleValue != nil)
    }

    @Test func multihopOnOneLayerSaysWhatNeedsTwo() throws {
        let shape = try ModelShape(layers: 1, experts: 4, topK: 2)
        var gen = SyntheticRouting(shape: shape, seed: 2)
        let r = try Self.run(MultiHopAnalyzer(), shape, [gen.makeBlock(problems: 4, tokensPerProblem: 5, domain: "x")])
        #expect(r.json["distances"]?.arrayValue?.isEmpty == true)
        #expect(r.json["insufficient"]?["distances"]?.stringValue == "needs at least 2 MoE layers")
        #expect(r.json["path_predictor"]?["accuracy"] == .null)
        #expect(r.json["path_predictor"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers")
        #expect(r.tables.allSatisfy { !$0.rows.isEmpty })
        let t = try Self.run(
            TransitionAnalyzer(),
            shape,
            [gen.makeBlock(problems: 4, tokensPerProblem: 5, domain: "x")]
        )
        #expect(t.json["pooled"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers")
        #expect(t.json["pooled"]?["top1_same"] == .null)
        #expect(t.tables.isEmpty)
        #expect(t.headlines.allSatisfy { $0.value.hasPrefix("not computed") })
    }

    @Test func everyAnalyzerUsesAndStatesTheOneFoldDefault() throws {
        let F = ProblemFolds.defaultCount
        #expect(DomainAnalyzer.crossValidationFolds == F)
        let t = try TransitionHandTrace.run(TransitionAnalyzer())
        let m = try TransitionHandTrace.run(MultiHopAnalyzer())
        #expect(t.json["folds"]?.intValue == F && m.json["folds"]?.intValue == F)
        for r in [t, m] {
            #expect(r.headlines.contains { $0.label.contains("\(F) folds by problem") }, "\(r.analyzer)")
            #expect(r.notes.contains { $0.contains("\(F) folds by problem") }, "\(r.analyzer)")
        }
    }

    @Test func summaryNamesLayersWithoutRows() throws {
        let shape = try ModelShape(layers: 3, experts: 4, topK: 2)
        let tokens: [(Int64, [[Int]?])] = [(0, [[0, 1], nil, [2, 3]]), (1, [[1, 2], nil, nil])]
        let r = try Self.run(TraceSummaryAnalyzer(), shape, [try Self.block(shape, tokens)])
        #expect(r.json["missing_cells_by_layer"] == [0, 2, 1])
        #expect(r.notes.contains { $0.hasPrefix("no token has a routing decision at layer(s) 1:") })
        #expect(!r.notes.contains { $0.contains("layer(s) 1, 2") })
    }

    @Test func aLayerPairWithoutPairsHasNullInformation() throws {
        // Layer 1 never present: pairs (0, 1) and (1, 2) have no data.
        let shape = try ModelShape(layers: 3, experts: 4, topK: 2)
        let tokens: [(Int64, [[Int]?])] = (0..<6).map { (i: Int) -> (Int64, [[Int]?]) in
            let a: [Int] = [i % 4, (i + 1) % 4]
            let c: [Int] = [i % 4, (i + 3) % 4]
            return (Int64(i % 3), [a, nil, c])
        }
        let t = try Self.run(TransitionAnalyzer(), shape, [try Self.block(shape, tokens)])
        #expect(t.json["layers"]?[0]?["mutual_information_bits"] == .null)
        #expect(t.json["layers"]?[0]?["insufficient"]?.stringValue == "no token has both layers present")
        #expect(t.json["layers"]?[0]?["prediction"]?["insufficient"]?.stringValue == "no token has both layers present")
        let m = try Self.run(MultiHopAnalyzer(), shape, [try Self.block(shape, tokens)])
        #expect(m.json["per_layer"]?["mutual_information_bits"]?[0]?[1] == .null)
        #expect(m.json["mutual_information_matrix"]?[0]?[1] == .null)
        #expect(m.json["mutual_information_matrix"]?[1]?[1] == .null)
        #expect(m.json["mutual_information_matrix"]?[0]?[2]?.doubleValue != nil)
        // No complete token: no full-path entropy; target layer 1 has no rows.
        #expect(m.json["paths"]?["full_path_entropy_bits"] == .null)
        #expect(
            m.json["path_predictor"]?["by_target_layer"]?[0]?["insufficient"]?.stringValue
                == "no token has a routing decision at layer 1"
        )
        #expect(m.headlines.contains { $0.reference == "entropy not computed (no token has every layer present)" })
    }
}
