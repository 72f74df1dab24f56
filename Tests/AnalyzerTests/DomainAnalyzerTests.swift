// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Hand-computed checks of DomainAnalyzer on tiny traces (E = 4, L = 2): usage shares, JS
// divergence and total variation, affinity, exact and sampled permutation p-values, bootstrap
// intervals, transfer accuracy, missing cells, and the not-applicable report.

import DomainAnalyzer
import MoERouting
import Testing

/// Tiny hand-built traces for the domain analyzer tests.
enum DomainFixture {
    /// One token: its domain, problem and, per layer, its experts highest weight first (`nil`
    /// for a missing cell).
    struct Token {
        var domain: String
        var problem: Int64
        var cells: [[Int]?]
        init(_ domain: String, _ problem: Int64, _ cells: [[Int]?]) {
            self.domain = domain
            self.problem = problem
            self.cells = cells
        }
    }

    /// A block of `tokens`; weights are strictly decreasing so the given order is kept.
    static func block(_ shape: ModelShape, _ tokens: [Token], domains: [String] = []) throws -> RoutingBlock {
        var builder = RoutingBlockBuilder(shape: shape, domains: domains)
        for (i, tok) in tokens.enumerated() {
            let t = try builder.appendToken(
                TokenMetadata(domain: tok.domain, problemID: tok.problem, position: Int32(i), phase: .decode)
            )
            for (l, cell) in tok.cells.enumerated() {
                guard let cell else { continue }
                let w = (0..<cell.count).map { 1.0 - 0.1 * Double($0) }
                try builder.setCell(token: t, layer: l, experts: cell, weights: w)
            }
        }
        return builder.makeBlock()
    }

    /// Runs a fresh analyzer over `blocks`.
    static func run(
        _ shape: ModelShape,
        _ blocks: [RoutingBlock],
        seed: UInt64 = 0x5EED,
        analyzer: DomainAnalyzer = DomainAnalyzer()
    ) throws -> AnalyzerReport {
        try analyzer.begin(AnalysisContext(shape: shape, seed: seed))
        for b in blocks { try analyzer.consume(b) }
        return try analyzer.finish()
    }

    static func double(_ v: ReportValue?) -> Double? { v?.doubleValue }

    static func layer(_ r: AnalyzerReport, _ l: Int, _ key: String) -> Double? {
        r.json["layers"]?[l]?[key]?.doubleValue
    }

    static func transfer(_ r: AnalyzerReport, train: String, test: String) -> ReportValue? {
        r.json["transfer"]?.arrayValue?.first {
            $0["train"]?.stringValue == train && $0["test"]?.stringValue == test
        }
    }
}

struct DomainAnalyzerTests {
    typealias T = DomainFixture.Token
    let shape1 = try! ModelShape(layers: 2, experts: 4, topK: 1)
    let shape2 = try! ModelShape(layers: 2, experts: 4, topK: 2)

    @Test func divergenceHelpersMatchHandValues() {
        // [1,0] vs [0,1]: disjoint supports, JS = 1 bit, TV = 1.
        #expect(DomainAnalyzer.jensenShannonBits([1, 0], [0, 1]) == 1)
        #expect(DomainAnalyzer.totalVariation([1, 0], [0, 1]) == 1)
        // [0.5,0.5] vs [1,0]: M = [3/4, 1/4]; JS = H(M) - (H(P) + H(Q))/2 = 0.811278 - 0.5.
        #expect(abs(DomainAnalyzer.jensenShannonBits([0.5, 0.5], [1, 0]) - 0.31127812445913283) < 1e-12)
        #expect(abs(DomainAnalyzer.totalVariation([0.5, 0.5], [1, 0]) - 0.5) < 1e-15)
        // Counts are normalised first; identical shapes give 0.
        #expect(DomainAnalyzer.jensenShannonBits([2, 2], [5, 5]) == 0)
        #expect(DomainAnalyzer.jensenShannonBits([0, 0], [1, 0]).isNaN)
        #expect(DomainAnalyzer.jensenShannonBits([1], [1, 0]).isNaN)
    }

    /// k = 2, one problem per domain.
    /// Layer 0: a = {0,1},{0,1} -> usage [2,2,0,0]/4; b = {0,1},{2,3} -> [1,1,1,1]/4.
    ///   JS: M = [3/8,3/8,1/8,1/8], H(M) = 1.811278, H(a) = 1, H(b) = 2 -> 0.311278; TV = 0.5.
    /// Layer 1: a = {0,1},{0,2} -> [2,1,1,0]/4; b = {0,1},{0,1} -> [2,2,0,0]/4.
    ///   JS: M = [1/2,3/8,1/8,0], H(M) = 1.405639, H(a) = 1.5, H(b) = 1 -> 0.155639; TV = 0.25.
    /// Affinity 0->1 (k x k pairs, /8): a: (0,0)2 (0,1)1 (1,0)2 (1,1)1 (0,2)1 (1,2)1;
    ///   b: (0,0)(0,1)(1,0)(1,1)(2,0)(2,1)(3,0)(3,1) once each.
    ///   M/16: 3,2,3,2,1,1 and 1,1,1,1; H(M) = 6/16 log2(16/3) + 2.25 = 3.155639,
    ///   H(a) = 2.5, H(b) = 3 -> JS = 0.405639; TV = (1+1+1+1+4)/16 = 0.5.
    /// One problem each: C(2,1) = 2 relabelings, both with the same JS -> p = 1, and every
    /// bootstrap resample is the data itself -> CI = [JS, JS].
    @Test func usageDivergenceAndAffinityByHand() throws {
        let block = try DomainFixture.block(
            shape2,
            [
                T("a", 0, [[0, 1], [0, 1]]), T("a", 0, [[0, 1], [0, 2]]),
                T("b", 0, [[0, 1], [0, 1]]), T("b", 0, [[2, 3], [0, 1]]),
            ]
        )
        let r = try DomainFixture.run(shape2, [block])
        #expect(r.json["applicable"] == .bool(true))
        #expect(r.json["layers"]?[0]?["usage"]?["a"] == [0.5, 0.5, 0.0, 0.0])
        #expect(r.json["layers"]?[0]?["usage"]?["b"] == [0.25, 0.25, 0.25, 0.25])
        #expect(r.json["layers"]?[1]?["usage"]?["a"] == [0.5, 0.25, 0.25, 0.0])
        let js0 = try #require(DomainFixture.layer(r, 0, "js_divergence_bits"))
        let js1 = try #require(DomainFixture.layer(r, 1, "js_divergence_bits"))
        #expect(abs(js0 - 0.31127812445913283) < 1e-12)
        #expect(abs(js1 - 0.15563906222956647) < 1e-12)
        #expect(abs((DomainFixture.layer(r, 0, "total_variation") ?? -1) - 0.5) < 1e-12)
        #expect(abs((DomainFixture.layer(r, 1, "total_variation") ?? -1) - 0.25) < 1e-12)
        #expect(abs((DomainFixture.layer(r, 0, "affinity_js_divergence_bits") ?? -1) - 0.40563906222956625) < 1e-12)
        #expect(abs((DomainFixture.layer(r, 0, "affinity_total_variation") ?? -1) - 0.5) < 1e-12)
        #expect(r.json["layers"]?[1]?["affinity_js_divergence_bits"] == .null)
        #expect(DomainFixture.layer(r, 0, "p_value") == 1)
        #expect(DomainFixture.layer(r, 1, "p_value") == 1)
        #expect(r.json["permutation"]?["method"] == "exact")
        #expect(r.json["permutation"]?["relabelings"] == 2)
        #expect(r.json["permutation"]?["minimum_p_value"] == 1.0)
        #expect(r.json["layers"]?[0]?["ci95"] == .array([.double(js0), .double(js0)]))
        #expect(r.json["layers"]?[1]?["ci95"] == .array([.double(js1), .double(js1)]))
        #expect(
            r.json["domains"]?[0] == ["name": "a", "problems": 1, "tokens": 2, "records": 4, "incomplete_tokens": 0]
        )
        #expect(r.json["bootstrap"]?["resamples"] == 1000)
    }

    /// k = 1, 2 + 2 problems of one token each: A1 = (0, 0), A2 = (1, 0), B1 = (0, 1), B2 = (1, 2)
    /// (layer 0 expert, layer 1 expert). The C(4,2) = 6 relabelings pair off into mirrors:
    /// Layer 0: {A1,A2}|{B1,B2}: [.5,.5] vs [.5,.5] -> 0 (observed); {A1,B1}|{A2,B2}: [1,0] vs
    ///   [0,1] -> 1; {A1,B2}|{A2,B1}: 0. Values 0,0,1,1,0,0: all >= 0 -> p = 6/6 = 1; null mean
    ///   2/6.
    /// Layer 1: observed {0,0} vs {1,2} -> disjoint -> 1; {A1,B1}|{A2,B2}: {0,1} vs {0,2} -> 0.5;
    ///   {A1,B2}|{A2,B1}: {0,2} vs {0,1} -> 0.5. Values 1,1,.5,.5,.5,.5 -> p = 2/6; null mean 4/6.
    /// Max over layers: observed 1; relabelings 1,1,1,1,.5,.5 -> p = 4/6.
    /// Smallest attainable p: 2/6 (a relabeling and its mirror tie). Bootstrap at layer 1: A is
    /// always [1,0,0,0] and B never uses expert 0 -> every resample gives 1 -> CI [1, 1].
    @Test func exactPermutationTwoAgainstTwo() throws {
        let block = try DomainFixture.block(
            shape1,
            [
                T("humaneval", 1, [[0], [0]]), T("humaneval", 2, [[1], [0]]),
                T("gsm8k", 1, [[0], [1]]), T("gsm8k", 2, [[1], [2]]),
            ]
        )
        let r = try DomainFixture.run(shape1, [block])
        // Sorted names: gsm8k first.
        #expect(r.json["compared"] == ["gsm8k", "humaneval"])
        #expect(r.json["permutation"]?["method"] == "exact")
        #expect(r.json["permutation"]?["relabelings"] == 6)
        #expect(abs((DomainFixture.double(r.json["permutation"]?["minimum_p_value"]) ?? 0) - 2.0 / 6) < 1e-15)
        #expect(abs((DomainFixture.double(r.json["permutation"]?["max_layer_p_value"]) ?? 0) - 4.0 / 6) < 1e-15)
        #expect(DomainFixture.layer(r, 0, "js_divergence_bits") == 0)
        #expect(DomainFixture.layer(r, 0, "p_value") == 1)
        #expect(abs((DomainFixture.layer(r, 0, "null_mean_js_bits") ?? 0) - 2.0 / 6) < 1e-12)
        #expect(DomainFixture.layer(r, 1, "js_divergence_bits") == 1)
        #expect(DomainFixture.layer(r, 1, "total_variation") == 1)
        #expect(abs((DomainFixture.layer(r, 1, "p_value") ?? 0) - 2.0 / 6) < 1e-15)
        #expect(abs((DomainFixture.layer(r, 1, "null_mean_js_bits") ?? 0) - 4.0 / 6) < 1e-12)
        #expect(r.json["layers"]?[1]?["ci95"] == [1.0, 1.0])
        #expect(r.notes.contains { $0.contains("Smallest attainable p-value: 2/6") })
        #expect(r.notes.contains { $0.contains("no layer can reach p < 0.05") })
        // The usage bar chart highlights nothing (no p < 0.05).
        let bars = r.figures.compactMap { f -> ReportFigure.BarChart? in
            if case .bars(let b) = f, b.title.hasPrefix("JS divergence of expert usage") {
                return b
            } else {
                return nil
            }
        }
        #expect(bars.count == 1)
        #expect(bars.first?.highlighted == [false, false])
        #expect(bars.first?.values == [0, 1])
    }

    /// The same 2 + 2 design: the null's 95th percentile, max-T adjusted p-values, the chart's
    /// intervals and markers, and the significance headline.
    /// Layer 0 null: 0,0,1,1,0,0 -> sorted 0,0,0,0,1,1; type 7 at h = 5 x 0.95 = 4.75 -> 1.
    /// Layer 1 null: 1,1,.5,.5,.5,.5 -> 95th percentile 1. Maximum over layers per relabeling:
    /// 1,1,1,1,.5,.5 -> adjusted p at layer 0 (observed 0) = 6/6, at layer 1 (observed 1) = 4/6.
    /// Transitions 0->1 (k = 1): every problem is one distinct (top1_0, top1_1) cell, so every
    /// relabeling splits them into disjoint supports: JS = 1 always -> p = adjusted p = 1, null
    /// mean and 95th percentile 1, bootstrap [1, 1].
    @Test func nullPercentilesAdjustedPAndTheChartOfTwoAgainstTwo() throws {
        let block = try DomainFixture.block(
            shape1,
            [
                T("humaneval", 1, [[0], [0]]), T("humaneval", 2, [[1], [0]]),
                T("gsm8k", 1, [[0], [1]]), T("gsm8k", 2, [[1], [2]]),
            ]
        )
        let r = try DomainFixture.run(shape1, [block])
        #expect(DomainFixture.layer(r, 0, "null_p95_js_bits") == 1)
        #expect(DomainFixture.layer(r, 1, "null_p95_js_bits") == 1)
        #expect(DomainFixture.layer(r, 0, "p_value_adjusted") == 1)
        #expect(abs((DomainFixture.layer(r, 1, "p_value_adjusted") ?? 0) - 4.0 / 6) < 1e-15)
        #expect(r.json["layers"]?[1]?["significant"] == .bool(false))
        #expect(r.json["permutation"]?["significant"] == .bool(false))
        #expect(r.json["permutation"]?["significant_layers"] == .array([]))
        #expect(r.json["permutation"]?["can_reach_alpha"] == .bool(false))
        let usage = try #require(
            r.figures.compactMap { f -> ReportFigure.BarChart? in
                if case .bars(let b) = f, b.title.hasPrefix("JS divergence of expert usage") {
                    return b
                } else {
                    return nil
                }
            }.first
        )
        // Bootstrap: layer 1 is [1, 1] (see above); layer 0 reaches both 0 and 1 bit.
        #expect(usage.lower == [0, 1] && usage.upper == [1, 1])
        #expect(usage.reference == [1, 1])
        #expect(usage.referenceLabel == "permutation null, 95th percentile")
        let headline = try #require(r.headlines.first { $0.label.hasPrefix("usage differs, gsm8k vs humaneval") })
        #expect(headline.value == "not significant (p = 0.6667 for the maximum)")
        #expect(
            headline.reference.contains(
                "smallest attainable p 0.3333 with 2 vs 2 problems: too few problems to reach alpha"
            )
        )
        #expect(r.notes.contains { $0.hasPrefix("A domain has only 2 problems: a bootstrap over so few problems") })
        // The transition test.
        let t = try #require(r.json["transitions"]?["layer_pairs"]?[0])
        #expect(t["from"] == 0 && t["to"] == 1)
        #expect(t["js_divergence_bits"]?.doubleValue == 1)
        #expect(t["p_value"]?.doubleValue == 1 && t["p_value_adjusted"]?.doubleValue == 1)
        #expect(t["null_mean_js_bits"]?.doubleValue == 1 && t["null_p95_js_bits"]?.doubleValue == 1)
        #expect(t["ci95"] == [1.0, 1.0])
        #expect(r.json["transitions"]?["permutation"]?["method"] == "exact")
        #expect(r.json["transitions"]?["permutation"]?["relabelings"] == 6)
        #expect(r.json["pairs"]?[0]?["transitions"] == r.json["transitions"])
        let transitionChart = try #require(
            r.figures.compactMap { f -> ReportFigure.BarChart? in
                if case .bars(let b) = f, b.title.hasPrefix("JS divergence of top-1 -> top-1 transitions") {
                    return b
                } else {
                    return nil
                }
            }.first
        )
        #expect(transitionChart.values == [1] && transitionChart.lower == [1] && transitionChart.reference == [1])
        #expect(
            r.headlines.contains {
                $0.label == "top-1 transitions differ, gsm8k vs humaneval (p adjusted over 1 layer pair)"
                    && $0.value.hasPrefix("not significant")
            }
        )
    }

    /// 8 + 8 problems: C(16, 8) = 12,870 > 10,000 relabelings, so 10,000 are sampled.
    /// Layer 0: A always expert 0, B always 1 -> observed JS = 1, and only the observed labelling
    /// and its mirror reach it (2 of 12,870), so the count is tiny: p = (1 + count)/10,001.
    /// Layer 1: everyone uses expert 3 -> JS = 0 for every relabeling -> p = 10,001/10,001 = 1.
    @Test func sampledPermutationBeyondTheExactLimit() throws {
        var tokens: [T] = []
        for p in 0..<8 {
            tokens.append(T("a", Int64(p), [[0], [3]]))
            tokens.append(T("b", Int64(p), [[1], [3]]))
        }
        let block = try DomainFixture.block(shape1, tokens)
        let r = try DomainFixture.run(shape1, [block])
        #expect(r.json["permutation"]?["method"] == "sampled")
        #expect(r.json["permutation"]?["relabelings"] == 10_000)
        #expect(DomainFixture.double(r.json["permutation"]?["minimum_p_value"]) == 1.0 / 10_001)
        let p0 = try #require(DomainFixture.layer(r, 0, "p_value"))
        #expect(p0 >= 1.0 / 10_001 && p0 <= 10.0 / 10_001)
        #expect(DomainFixture.layer(r, 1, "p_value") == 1)
        // A different seed draws other relabelings but the same design bound holds.
        let r2 = try DomainFixture.run(shape1, [block], seed: 99)
        let p0b = try #require(DomainFixture.layer(r2, 0, "p_value"))
        #expect(p0b >= 1.0 / 10_001 && p0b <= 10.0 / 10_001)
        // Highlighted: layer 0 only.
        let bars = r.figures.compactMap { f -> ReportFigure.BarChart? in
            if case .bars(let b) = f { return b } else { return nil }
        }
        #expect(bars.first?.highlighted == [true, false])
        // Layer 0 is significant after the max-T adjustment too (layer 1 is 0 in every relabeling,
        // so the maximum is layer 0's JS), and the summary says so.
        let adjusted = try #require(DomainFixture.layer(r, 0, "p_value_adjusted"))
        #expect(adjusted == p0)
        #expect(r.json["layers"]?[0]?["significant"] == .bool(true))
        #expect(r.json["layers"]?[1]?["significant"] == .bool(false))
        #expect(r.json["permutation"]?["significant_layers"] == [0])
        #expect(r.json["permutation"]?["significant"] == .bool(true))
        let headline = try #require(r.headlines.first { $0.label.hasPrefix("usage differs, a vs b") })
        #expect(headline.value.hasPrefix("significant at layer 0; p = 0.000"))
        #expect(!headline.reference.contains("too few problems"))
        // Exactly at the limit the enumeration is exact: 7 + 7 gives C(14, 7) = 3432.
        let small = try DomainFixture.block(shape1, tokens.filter { $0.problem < 7 })
        let r3 = try DomainFixture.run(shape1, [small])
        #expect(r3.json["permutation"]?["method"] == "exact")
        #expect(r3.json["permutation"]?["relabelings"] == 3432)
        #expect(DomainFixture.layer(r3, 0, "p_value") == 2.0 / 3432)
        // A smaller limit switches to sampling: C(14, 7) > 3000.
        let r4 = try DomainFixture.run(shape1, [small], analyzer: DomainAnalyzer(relabelings: 3000, resamples: 10))
        #expect(r4.json["permutation"]?["method"] == "sampled")
        #expect(r4.json["permutation"]?["relabelings"] == 3000)
        #expect(r4.json["bootstrap"]?["resamples"] == 10)
    }

    /// k = 1; tokens are (layer 0 top-1 -> layer 1 top-1).
    /// a: p0 = (0->3), (0->3), (1->2); p1 = (0->3), (2->0).
    /// b: p0 = (0->3), (0->3); p1 = (0->3), (2->0); p2 = (0->1).
    /// Fit on a: 0->3, 1->2, 2->0; most frequent layer-1 top-1 in a: 3 (3 of 5).
    ///   On b: 0->3 right 3 times, 2->0 right, 0->1 wrong -> 4/5 = 0.8; baseline "3": 3/5.
    ///   Coverage: every b row (0, 2) seen in a -> 1.
    /// Fit on b: 0->3 (3 vs 1), 2->0; most frequent 3.
    ///   On a: 0->3 x3 right, 1 unseen -> 3 (wrong, 2), 2->0 right -> 4/5; baseline 3/5;
    ///   coverage 4/5.
    /// Within a (2 problems: leave-one-problem-out):
    ///   hold p0: train p1: 0->3, 2->0, most frequent tie 0/3 -> 0. p0: 3,3 right; 1 unseen -> 0
    ///   (actual 2) wrong: 2/3. Baseline 0: 0/3.
    ///   hold p1: train p0: 0->3, 1->2, most frequent 3. p1: 0->3 right; 2 unseen -> 3 wrong: 1/2.
    ///   Baseline 3: 1/2.  CV = 3/5, CV baseline 1/5.
    /// Within b (3 problems: leave-one-problem-out):
    ///   hold p0: train p1+p2: row 0 = {3:1, 1:1} -> tie -> 1; most frequent {3,0,1} tie -> 0.
    ///   p0: predict 1 for 3,3: 0/2; baseline 0: 0/2.
    ///   hold p1: train p0+p2: row 0 = {3:2, 1:1} -> 3; most frequent 3. p1: 0->3 right, 2 unseen
    ///   -> 3 wrong: 1/2; baseline 1/2.
    ///   hold p2: train p0+p1: row 0 -> 3; most frequent 3. p2: 0->1 wrong: 0/1; baseline 0/1.
    ///   CV = 1/5, CV baseline 1/5.
    @Test func transferAccuracyByHand() throws {
        let block = try DomainFixture.block(
            shape1,
            [
                T("a", 0, [[0], [3]]), T("a", 0, [[0], [3]]), T("a", 0, [[1], [2]]),
                T("a", 1, [[0], [3]]), T("a", 1, [[2], [0]]),
                T("b", 0, [[0], [3]]), T("b", 0, [[0], [3]]),
                T("b", 1, [[0], [3]]), T("b", 1, [[2], [0]]),
                T("b", 2, [[0], [1]]),
            ]
        )
        let r = try DomainFixture.run(shape1, [block])
        let ab = try #require(DomainFixture.transfer(r, train: "a", test: "b"))
        #expect(ab["top1_accuracy"] == 0.8)
        #expect(ab["baseline_most_frequent"] == 0.6)
        #expect(ab["within_test_cv_top1_accuracy"] == 0.2)
        #expect(ab["within_test_cv_baseline_most_frequent"] == 0.2)
        #expect(ab["coverage"] == 1.0)
        #expect(ab["chance"] == 0.25)
        #expect(ab["evaluated"] == 5)
        #expect(ab["cv"]?["method"] == "leave-one-problem-out")
        #expect(ab["cv"]?["folds"] == 3)
        #expect(ab["by_layer_pair"]?[0]?["top1_accuracy"] == 0.8)
        let ba = try #require(DomainFixture.transfer(r, train: "b", test: "a"))
        #expect(ba["top1_accuracy"] == 0.8)
        #expect(ba["baseline_most_frequent"] == 0.6)
        #expect(ba["within_test_cv_top1_accuracy"] == 0.6)
        #expect(ba["within_test_cv_baseline_most_frequent"] == 0.2)
        #expect(ba["coverage"] == 0.8)
        #expect(ba["cv"]?["folds"] == 2)
        #expect(r.json["transfer"]?.arrayValue?.count == 2)
        #expect(
            r.headlines.contains {
                $0.label == "next-layer top-1 accuracy, fitted on a, tested on b" && $0.value == "0.8000"
            }
        )
    }

    /// Missing cells: a token without layer 0 counts for layer-1 usage only and gives no layer
    /// pair; a token without layer 1 the reverse.
    /// a: (0->1), (_->2), (3->_) : layer 0 usage [1,0,0,1]/2, layer 1 [0,1,1,0]/2; one pair (0->1).
    /// b: (0->1) : layer 0 [1,0,0,0], layer 1 [0,1,0,0].
    /// JS layer 0: [.5,0,0,.5] vs [1,0,0,0] -> 0.311278; layer 1: [0,.5,.5,0] vs [0,1,0,0] -> 0.311278.
    /// Records: a 4, b 2; incomplete tokens: a 2. Transfer a->b: 0->1 right -> 1; b->a: 1.
    @Test func missingCellsAreSkipped() throws {
        let block = try DomainFixture.block(
            shape1,
            [T("a", 0, [[0], [1]]), T("a", 0, [nil, [2]]), T("a", 0, [[3], nil]), T("b", 0, [[0], [1]])]
        )
        let r = try DomainFixture.run(shape1, [block])
        #expect(
            r.json["domains"]?[0] == ["name": "a", "problems": 1, "tokens": 3, "records": 4, "incomplete_tokens": 2]
        )
        #expect(r.json["layers"]?[0]?["usage"]?["a"] == [0.5, 0.0, 0.0, 0.5])
        #expect(r.json["layers"]?[1]?["usage"]?["a"] == [0.0, 0.5, 0.5, 0.0])
        #expect(abs((DomainFixture.layer(r, 0, "js_divergence_bits") ?? 0) - 0.31127812445913283) < 1e-12)
        #expect(abs((DomainFixture.layer(r, 1, "js_divergence_bits") ?? 0) - 0.31127812445913283) < 1e-12)
        #expect(DomainFixture.transfer(r, train: "a", test: "b")?["evaluated"] == 1)
        #expect(DomainFixture.transfer(r, train: "a", test: "b")?["top1_accuracy"] == 1.0)
        #expect(DomainFixture.transfer(r, train: "b", test: "a")?["evaluated"] == 1)
        // One problem per domain: no within-domain cross-validation.
        #expect(DomainFixture.transfer(r, train: "a", test: "b")?["within_test_cv_top1_accuracy"] == .null)
        #expect(r.notes.contains { $0.hasPrefix("2 tokens lack some layers") })
        // A layer that one domain never reaches has no divergence: NaN becomes null.
        let holes = try DomainFixture.block(shape1, [T("a", 0, [[0], nil]), T("b", 0, [[1], [1]])])
        let r2 = try DomainFixture.run(shape1, [holes])
        #expect(r2.json["layers"]?[1]?["js_divergence_bits"] == .null)
        #expect(r2.json["layers"]?[1]?["p_value"] == .null)
        #expect(r2.json["layers"]?[1]?["ci95"] == .null)
        #expect(DomainFixture.layer(r2, 0, "js_divergence_bits") == 1)
        #expect(r2.renderText().contains("n/a"))
    }

    /// One layer: usage only, no layer pairs. a = {0}, b = {1} -> JS 1, TV 1.
    /// Wide ids (E = 300 > 256): a uses {299, 0}, b {298, 1} -> disjoint usage -> JS 1 at both layers;
    /// transfer a -> b: 299 -> 299 predicted, actual 298 -> 0; baseline "299" -> 0.
    @Test func singleLayerAndWideExpertIDs() throws {
        let one = try ModelShape(layers: 1, experts: 2, topK: 1)
        let r = try DomainFixture.run(one, [try DomainFixture.block(one, [T("a", 0, [[0]]), T("b", 0, [[1]])])])
        #expect(r.json["applicable"] == true)
        #expect(DomainFixture.layer(r, 0, "js_divergence_bits") == 1)
        #expect(DomainFixture.layer(r, 0, "total_variation") == 1)
        #expect(r.json["transfer"] == .array([]))
        #expect(r.notes.contains { $0.contains("a single layer has no layer pairs") })
        let wide = try ModelShape(layers: 2, experts: 300, topK: 2)
        let block = try DomainFixture.block(
            wide,
            [T("a", 0, [[299, 0], [299, 0]]), T("b", 0, [[298, 1], [298, 1]])]
        )
        guard case .wide = block.ids else {
            Issue.record("expected two-byte ids for E = 300")
            return
        }
        let w = try DomainFixture.run(wide, [block])
        #expect(DomainFixture.layer(w, 0, "js_divergence_bits") == 1)
        #expect(DomainFixture.layer(w, 1, "js_divergence_bits") == 1)
        #expect(DomainFixture.layer(w, 0, "affinity_js_divergence_bits") == 1)
        #expect(w.json["layers"]?[0]?["usage"]?["a"]?[299] == 0.5)
        #expect(DomainFixture.transfer(w, train: "a", test: "b")?["top1_accuracy"] == 0.0)
        #expect(DomainFixture.transfer(w, train: "a", test: "b")?["coverage"] == 0.0)
        // (L-1) E^2 = 4096^2 > 2^22 cells: usage still compared, affinity and transfer skipped.
        let huge = try ModelShape(layers: 2, experts: 4096, topK: 1)
        let h = try DomainFixture.run(
            huge,
            [try DomainFixture.block(huge, [T("a", 0, [[4095], [5]]), T("b", 0, [[4095], [6]])])]
        )
        #expect(DomainFixture.layer(h, 0, "js_divergence_bits") == 0)
        #expect(DomainFixture.layer(h, 1, "js_divergence_bits") == 1)
        #expect(h.json["layers"]?[0]?["affinity_js_divergence_bits"] == .null)
        #expect(h.json["transfer"] == .array([]))
        #expect(h.notes.contains { $0.contains("exceeds 4194304 cells") })
    }

    /// k = 1; tokens are (layer 0 top-1 -> layer 1 top-1).
    /// a: p0 = (0->1), (1->2); p1 = (2->2). b: p0 = (0->2) x2; p1 = (0->2) x2.
    /// Fit on a: 0->1, 1->2, 2->2; most frequent layer-1 top-1 in a: 2 (2 of 3).
    ///   On b: predicts 1 for every (0->2): 0/4, while the baseline "2" gets 4/4: BELOW BASELINE.
    ///   Every b problem scores 0/2 (baseline 2/2), so every bootstrap resample gives accuracy 0,
    ///   baseline 1, difference -1: the intervals are [0, 0], [1, 1], [-1, -1].
    /// Fit on b: 0->2, most frequent 2. On a: (0->1) wrong, 1 and 2 unseen -> 2: right twice ->
    ///   2/3, baseline 2/3: equal, not below. Per problem a: p0 1/2, p1 1/1; resamples {p0,p0}
    ///   0.5, {p1,p1} 1, mixed 2/3 -> interval [0.5, 1].
    /// Within a (leave-one-problem-out): 1/3 against baseline 1/3; within b: 1 against 1.
    @Test func transferIntervalsAndBelowBaselineFlags() throws {
        let block = try DomainFixture.block(
            shape1,
            [
                T("a", 0, [[0], [1]]), T("a", 0, [[1], [2]]), T("a", 1, [[2], [2]]),
                T("b", 0, [[0], [2]]), T("b", 0, [[0], [2]]), T("b", 1, [[0], [2]]), T("b", 1, [[0], [2]]),
            ]
        )
        let r = try DomainFixture.run(shape1, [block])
        let ab = try #require(DomainFixture.transfer(r, train: "a", test: "b"))
        #expect(ab["top1_accuracy"]?.doubleValue == 0)
        #expect(ab["baseline_most_frequent"]?.doubleValue == 1)
        #expect(ab["top1_accuracy_ci95"] == [0.0, 0.0])
        #expect(ab["baseline_most_frequent_ci95"] == [1.0, 1.0])
        #expect(ab["top1_minus_baseline_ci95"] == [-1.0, -1.0])
        #expect(ab["below_baseline"] == .bool(true))
        #expect(ab["within_test_cv_top1_accuracy"]?.doubleValue == 1)
        #expect(ab["within_test_cv_below_baseline"] == .bool(false))
        let ba = try #require(DomainFixture.transfer(r, train: "b", test: "a"))
        #expect(abs((ba["top1_accuracy"]?.doubleValue ?? 0) - 2.0 / 3) < 1e-15)
        #expect(ba["below_baseline"] == .bool(false))
        let ci = (ba["top1_accuracy_ci95"]?.arrayValue ?? []).compactMap { $0.doubleValue }
        #expect(ci == [0.5, 1.0])
        #expect(abs((ba["within_test_cv_top1_accuracy"]?.doubleValue ?? 0) - 1.0 / 3) < 1e-15)
        #expect(r.json["transfer_bootstrap"]?["resamples"] == 1000)
        // The summary flags exactly the predictor below its baseline.
        let flags = r.headlines.filter { $0.label.hasPrefix("BELOW BASELINE") }
        #expect(flags.map(\.label) == ["BELOW BASELINE: next-layer predictor fitted on a, tested on b"])
        #expect(flags.first?.value == "0.0000 < 1.0000")
        #expect(flags.first?.reference.contains("[-1.0000, -1.0000]") == true)
        #expect(
            r.headlines.contains {
                $0.label == "next-layer top-1 accuracy, fitted on a, tested on b"
                    && $0.reference.hasPrefix("95% CI [0.0000, 0.0000]")
            }
        )
        // The chart: transfers then within-domain CV, intervals, baselines as markers.
        let chart = try #require(
            r.figures.compactMap { f -> ReportFigure.BarChart? in
                if case .bars(let b) = f, b.title.hasPrefix("Next-layer top-1 accuracy") {
                    return b
                } else {
                    return nil
                }
            }.first
        )
        #expect(chart.labels == ["a -> b", "b -> a", "within b (CV)", "within a (CV)"])
        #expect(chart.highlighted == [true, false, false, false])
        #expect(chart.lower?[0] == 0 && chart.upper?[0] == 0 && chart.lower?[1] == 0.5)
        #expect(chart.reference?[0] == 1 && chart.referenceLabel == "most-frequent baseline")
        #expect(r.renderText().contains("below baseline"))
    }

    /// Above ``DomainAnalyzer/maximumProblemTransitionCells`` a problem keeps no transition matrix:
    /// the transition test and the transfer intervals are null, with a note, and nothing traps.
    @Test func largeShapesSkipTheTransitionTestWithANote() throws {
        let wide = try ModelShape(layers: 2, experts: 160, topK: 1)  // (L-1) E^2 = 25,600 cells
        #expect(wide.experts * wide.experts > DomainAnalyzer.maximumProblemTransitionCells)
        let block = try DomainFixture.block(
            wide,
            [T("a", 0, [[0], [150]]), T("a", 1, [[1], [2]]), T("b", 0, [[159], [3]]), T("b", 1, [[0], [150]])]
        )
        let r = try DomainFixture.run(wide, [block])
        #expect(r.json["transitions"] == .null)
        #expect(r.json["transfer_bootstrap"] == .null)
        #expect(DomainFixture.transfer(r, train: "a", test: "b")?["top1_accuracy_ci95"] == .null)
        #expect(DomainFixture.transfer(r, train: "a", test: "b")?["top1_accuracy"] != nil)
        #expect(
            r.notes.contains {
                $0.hasPrefix("Transition domain test and transfer intervals skipped") && $0.contains("25600")
            }
        )
        // The usage test still runs.
        #expect(r.json["permutation"]?["method"] == "exact")
        // Without per-problem matrices the folds are counted directly: cross-validation and
        // transfer still match a brute-force computation (6 and 5 problems: 5 folds each).
        let tokens = DomainAnalyzerMergeTests.randomTokens(
            domains: [("a", 6), ("b", 5)],
            seed: 5,
            experts: 160,
            layers: 2,
            topK: 1
        )
        let r2 = try DomainFixture.run(wide, [try DomainFixture.block(wide, tokens)])
        let bf = DomainAnalyzerMergeTests.BruteForce(tokens: tokens, layers: 2, experts: 160)
        for (train, test) in [("a", "b"), ("b", "a")] {
            let t = try #require(DomainFixture.transfer(r2, train: train, test: test))
            let (c, _, n) = bf.score(
                train: tokens.filter { $0.domain == train },
                test: tokens.filter { $0.domain == test }
            )
            #expect(abs((t["top1_accuracy"]?.doubleValue ?? -1) - c / n) < 1e-12)
            let (cv, cvBase) = bf.crossValidated(test)
            #expect(abs((t["within_test_cv_top1_accuracy"]?.doubleValue ?? -1) - cv) < 1e-12)
            #expect(abs((t["within_test_cv_baseline_most_frequent"]?.doubleValue ?? -1) - cvBase) < 1e-12)
            #expect(t["cv"]?["folds"] == 5)
        }
    }

    @Test func fewerThanTwoDomainsIsNotApplicable() throws {
        let one = try DomainFixture.block(shape1, [T("gsm8k", 0, [[0], [1]]), T("gsm8k", 1, [[2], [1]])])
        let r = try DomainFixture.run(shape1, [one])
        #expect(r.json["applicable"] == false)
        #expect(r.json["domains"]?[0]?["problems"] == 2)
        #expect(r.json["note"]?.stringValue?.contains("only one domain (gsm8k)") == true)
        let none = try DomainFixture.run(shape1, [])
        #expect(none.json["applicable"] == false)
        #expect(none.json["domains"] == .array([]))
        // A registered domain without tokens does not count.
        let registered = try DomainFixture.block(shape1, [T("gsm8k", 0, [[0], [1]])], domains: ["humaneval"])
        #expect(try DomainFixture.run(shape1, [registered]).json["applicable"] == false)
    }

    @Test func misuseThrowsClearErrors() throws {
        let a = DomainAnalyzer()
        let block = try DomainFixture.block(shape1, [T("a", 0, [[0], [1]])])
        #expect(throws: RoutingError.self) { try a.consume(block) }
        try a.begin(AnalysisContext(shape: shape2))
        #expect(throws: RoutingError.self) { try a.consume(block) }
        let b = DomainAnalyzer()
        try b.begin(AnalysisContext(shape: shape1))
        #expect(throws: RoutingError.self) { try a.merge(b) }
        #expect(throws: RoutingError.self) { try a.merge(a) }
        let c = DomainAnalyzer()
        try c.begin(AnalysisContext(shape: shape2, seed: 1))
        #expect(throws: RoutingError.self) { try a.merge(c) }
        // L x E = 4096 x 2048 cells per problem is refused up front.
        let tooBig = try ModelShape(layers: 4096, experts: 2048, topK: 1)
        #expect(throws: RoutingError.self) { try DomainAnalyzer().begin(AnalysisContext(shape: tooBig)) }
    }

    @Test func reportRendersTheSameFigures() throws {
        let block = try DomainFixture.block(
            shape1,
            [
                T("humaneval", 1, [[0], [0]]), T("humaneval", 2, [[1], [0]]),
                T("gsm8k", 1, [[0], [1]]), T("gsm8k", 2, [[1], [2]]),
            ]
        )
        let r = try DomainFixture.run(shape1, [block])
        let text = r.renderText()
        let md = r.renderMarkdown()
        // Layer 1: JS 1, TV 1, p 2/6, CI [1, 1].
        for s in [text, md] {
            #expect(s.contains("0.3333"))
            #expect(s.contains("[1.0000, 1.0000]"))
            #expect(s.contains("gsm8k"))
        }
        let heatmaps = r.figures.filter { if case .heatmap = $0 { return true } else { return false } }
        #expect(heatmaps.count == 2)
        if case .heatmap(let h) = r.figures[0] {
            #expect(h.values == [[0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]])  // gsm8k
        }
        #expect(r.headlines.first?.label == "max per-layer usage JS, gsm8k vs humaneval (layer 1)")
        #expect(r.headlines.first?.value == "1.0000 bits, p = 0.3333 (2 vs 2 problems)")
    }

    /// The usage test's work budget: the full counts while they fit 2^30 cell additions, as many
    /// as fit beyond, never under 200 (or the count asked for, when smaller).
    @Test func workBudgetCapsRelabelingsAndResamples() {
        let budget = DomainAnalyzer.finishWorkBudget
        #expect(budget == 1 << 30)
        // Mixtral-sized: L x E = 256 cells, 195 problems on the smaller side.
        #expect(DomainAnalyzer.repetitions(10_000, cellsEach: 256 * (195 + 3)) == 10_000)
        // DeepSeek-V3: 58 x 256 cells, 67 problems: 1,033 relabelings fit.
        #expect(DomainAnalyzer.repetitions(10_000, cellsEach: 58 * 256 * (67 + 3)) == budget / (58 * 256 * 70))
        #expect(DomainAnalyzer.repetitions(10_000, cellsEach: budget) == 200)
        #expect(DomainAnalyzer.repetitions(50, cellsEach: budget) == 50)
    }
}
