// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainAnalyzer: merging shards equals one pass (domains registered in different orders, one
// problem split across shards, small and large domains), determinism, and a cross-check of every
// figure against a brute-force implementation written independently here.

import AnalysisSupport
import DomainAnalyzer
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

struct DomainAnalyzerMergeTests {
    typealias T = DomainFixture.Token
    let shape = try! ModelShape(layers: 3, experts: 4, topK: 2)

    /// Random tokens: `problems` problems per domain (ids from `firstID`), 3...10 tokens each,
    /// experts skewed per domain, about 10% of cells missing.
    static func randomTokens(
        domains: [(String, Int)],
        seed: UInt64,
        experts: Int,
        layers: Int,
        topK: Int,
        firstID: Int64 = 0
    ) -> [T] {
        var rng = SeededRandom(seed: seed)
        var out: [T] = []
        for (di, (name, problems)) in domains.enumerated() {
            for p in 0..<problems {
                let n = 3 + Int(rng.next() % 8)
                for _ in 0..<n {
                    var cells: [[Int]?] = []
                    for _ in 0..<layers {
                        if rng.next() % 10 == 0 {
                            cells.append(nil)
                            continue
                        }
                        var ids: [Int] = []
                        while ids.count < topK {
                            // Skew: domain di prefers expert di half of the time.
                            let e = rng.next() % 2 == 0 ? (di % experts) : Int(rng.next() % UInt64(experts))
                            if !ids.contains(e) { ids.append(e) }
                        }
                        cells.append(ids)
                    }
                    out.append(T(name, firstID + Int64(p), cells))
                }
            }
        }
        return out
    }

    static func json(_ shape: ModelShape, _ blocks: [RoutingBlock], seed: UInt64 = 11) throws -> String {
        try DomainFixture.run(shape, blocks, seed: seed).json.jsonString()
    }

    @Test func mergeEqualsOnePassWithDomainsInDifferentOrders() throws {
        let tokens = Self.randomTokens(
            domains: [("beta", 4), ("alpha", 6), ("gamma", 2)],
            seed: 3,
            experts: 4,
            layers: 3,
            topK: 2
        )
        // Deal tokens to three shards in a scrambled but fixed way, splitting problems across
        // shards; each shard's builder registers the domains in its own order.
        var shards: [[T]] = [[], [], []]
        var rng = SeededRandom(seed: 5)
        for t in tokens { shards[Int(rng.next() % 3)].append(t) }
        let orders = [["gamma", "beta", "alpha"], ["alpha"], []]
        let shardBlocks = try (0..<3).map { i in
            // Two blocks per shard from one builder (indices stable across them).
            let half = shards[i].count / 2
            var builder = RoutingBlockBuilder(shape: shape, domains: orders[i])
            var blocks: [RoutingBlock] = []
            for part in [Array(shards[i][..<half]), Array(shards[i][half...])] {
                for (n, tok) in part.enumerated() {
                    let t = try builder.appendToken(
                        TokenMetadata(domain: tok.domain, problemID: tok.problem, position: Int32(n), phase: .decode)
                    )
                    for (l, cell) in tok.cells.enumerated() {
                        guard let cell else { continue }
                        try builder.setCell(
                            token: t,
                            layer: l,
                            experts: cell,
                            weights: (0..<cell.count).map { 1.0 - 0.1 * Double($0) }
                        )
                    }
                }
                blocks.append(builder.makeBlock())
            }
            return blocks
        }
        let onePass = try Self.json(shape, [try DomainFixture.block(shape, tokens)])
        let context = AnalysisContext(shape: shape, seed: 11)
        func shard(_ i: Int) throws -> DomainAnalyzer {
            let a = DomainAnalyzer()
            try a.begin(context)
            for b in shardBlocks[i] { try a.consume(b) }
            return a
        }
        let x = try shard(0)
        try x.merge(try shard(1))
        try x.merge(try shard(2))
        #expect(try x.finish().json.jsonString() == onePass)
        let y = try shard(2)
        try y.merge(try shard(0))
        try y.merge(try shard(1))
        #expect(try y.finish().json.jsonString() == onePass)
        // Merging a tree: (1 + 2) into 0.
        let z = try shard(1)
        try z.merge(try shard(2))
        let w = try shard(0)
        try w.merge(z)
        let report = try w.finish()
        #expect(report.json.jsonString() == onePass)
        // The one-pass instance also saw all shard blocks in sequence (different domain tables).
        let seq = try Self.json(shape, shardBlocks.flatMap { $0 })
        #expect(seq == onePass)
        #expect(
            report.json["domains"]?.arrayValue?.map { $0["name"]?.stringValue ?? "" } == ["alpha", "beta", "gamma"]
        )
        // Three domains: three pairs, each tested; the headline pair is the first in name order.
        let pairs = try #require(report.json["pairs"]?.arrayValue)
        #expect(
            pairs.map { "\($0["a"]?.stringValue ?? "")-\($0["b"]?.stringValue ?? "")" } == [
                "alpha-beta", "alpha-gamma", "beta-gamma",
            ]
        )
        #expect(pairs.allSatisfy { $0["permutation"]?["method"] == "exact" })
        #expect(pairs[0]["layers"]?[1]?["p_value"] == report.json["layers"]?[1]?["p_value"])
        #expect(report.json["transfer"]?.arrayValue?.count == 6)
        #expect(report.tables.contains { $0.title == "All pairs of domains" && $0.rows.count == 3 })
        // beta has 4 problems: leave-one-out survives the merge; alpha has 6: folds.
        #expect(
            DomainFixture.transfer(report, train: "alpha", test: "beta")?["cv"]?["method"] == "leave-one-problem-out"
        )
        #expect(DomainFixture.transfer(report, train: "beta", test: "alpha")?["cv"]?["folds"] == 5)
    }

    @Test func mergeOfSyntheticShardsAndDeterminism() throws {
        let s = ModelShape.tinyMixtral
        func blocks(_ seed: UInt64, _ plan: [(String, Int)]) -> [RoutingBlock] {
            var g = SyntheticRouting(shape: s, seed: seed, dependence: 0.6, missingRate: 0.05)
            return plan.map { g.makeBlock(problems: $0.1, tokensPerProblem: 20, domain: $0.0) }
        }
        // humaneval ends with 4 problems (leave-one-out), gsm8k with 5 (ids 2 collides: one
        // problem split across the shards), grown past the fold count only by the merge.
        let first = blocks(1, [("humaneval", 2), ("gsm8k", 3)])
        let second = blocks(2, [("gsm8k", 3), ("humaneval", 2)])
        let onePass = try Self.json(s, first + second)
        let a = DomainAnalyzer()
        let b = DomainAnalyzer()
        try a.begin(AnalysisContext(shape: s, seed: 11))
        try b.begin(AnalysisContext(shape: s, seed: 11))
        for x in first { try a.consume(x) }
        for x in second { try b.consume(x) }
        try b.merge(a)
        let merged = try b.finish()
        #expect(merged.json.jsonString() == onePass)
        #expect(merged.json["domains"]?[0]?["problems"] == 5)  // gsm8k: 2,3,4 and 0,1,2
        #expect(merged.json["domains"]?[1]?["problems"] == 4)  // humaneval: 0,1 and 3,4
        // Same input, same bytes, text included.
        let again = try DomainFixture.run(s, first + second, seed: 11)
        #expect(again.json.jsonString() == onePass)
        #expect(again.renderText() == merged.renderText())
        // An instance that never began merges as empty.
        let empty = DomainAnalyzer()
        let c = DomainAnalyzer()
        try c.begin(AnalysisContext(shape: s, seed: 11))
        for x in first + second { try c.consume(x) }
        try c.merge(empty)
        #expect(try c.finish().json.jsonString() == onePass)
        // The test kit's check over the same halves: both merge orders, the whole report.
        let checked = try MergeCheck.assertHalvesEqualOnePass(
            makeAnalyzer: { DomainAnalyzer() },
            context: AnalysisContext(shape: s, seed: 11),
            first: first,
            second: second
        )
        #expect(checked.json.jsonString() == onePass)
        try MergeCheck.assertShardsEqualOnePass(
            makeAnalyzer: { DomainAnalyzer() },
            context: AnalysisContext(shape: s, seed: 11),
            blocks: first + second,
            trials: 4
        )
    }

    // MARK: - Brute force

    /// Everything recomputed from the token list with plain loops and Foundation's log2.
    struct BruteForce {
        let tokens: [T]
        let layers: Int
        let experts: Int

        static func js(_ a: [Double], _ b: [Double]) -> Double {
            func h(_ p: [Double]) -> Double { -p.filter { $0 > 0 }.reduce(0) { $0 + $1 * log2($1) } }
            let ta = a.reduce(0, +)
            let tb = b.reduce(0, +)
            let p = a.map { $0 / ta }
            let q = b.map { $0 / tb }
            let m = zip(p, q).map { ($0 + $1) / 2 }
            return h(m) - (h(p) + h(q)) / 2
        }

        func usage(_ toks: [T], layer l: Int) -> [Double] {
            var c = [Double](repeating: 0, count: experts)
            for t in toks { for e in t.cells[l] ?? [] { c[e] += 1 } }
            return c
        }

        /// Per-layer exact permutation p-values over whole problems.
        func exactP(_ a: String, _ b: String) -> [Double] {
            let probs = Set(tokens.filter { $0.domain == a || $0.domain == b }.map { "\($0.domain)#\($0.problem)" })
                .sorted()
            let nA = probs.filter { $0.hasPrefix(a + "#") }.count
            let byProblem = Dictionary(grouping: tokens, by: { "\($0.domain)#\($0.problem)" })
            let observedA = Set(probs.filter { $0.hasPrefix(a + "#") })
            func stat(_ sideA: Set<String>, _ l: Int) -> Double {
                let ta = sideA.flatMap { byProblem[$0] ?? [] }
                let tb = probs.filter { !sideA.contains($0) }.flatMap { byProblem[$0] ?? [] }
                return Self.js(usage(ta, layer: l), usage(tb, layer: l))
            }
            var out: [Double] = []
            for l in 0..<layers {
                let obs = stat(observedA, l)
                var ge = 0
                var total = 0
                for mask in 0..<(1 << probs.count) where mask.nonzeroBitCount == nA {
                    let side = Set(probs.indices.filter { mask & (1 << $0) != 0 }.map { probs[$0] })
                    total += 1
                    if stat(side, l) >= obs - 1e-12 { ge += 1 }
                }
                out.append(Double(ge) / Double(total))
            }
            return out
        }

        /// Joint counts of (top1_l, top1_{l+1}) over tokens with both layers present, E*E.
        func joint(_ toks: [T], pair l: Int) -> [Double] {
            var c = [Double](repeating: 0, count: experts * experts)
            for t in toks {
                if let a = t.cells[l], let b = t.cells[l + 1] { c[a[0] * experts + b[0]] += 1 }
            }
            return c
        }

        /// Exact permutation over whole problems of any per-"layer" statistic: per-layer p,
        /// max-T adjusted p (share of relabelings whose maximum over layers reaches the layer's
        /// observed value) and the per-layer null's 95th percentile (type 7).
        func exactTest(
            _ a: String,
            _ b: String,
            count: Int,
            _ statistic: ([T], [T], Int) -> Double
        )
            -> (p: [Double], adjusted: [Double], p95: [Double])
        {
            let probs = Set(tokens.filter { $0.domain == a || $0.domain == b }.map { "\($0.domain)#\($0.problem)" })
                .sorted()
            let nA = probs.filter { $0.hasPrefix(a + "#") }.count
            let byProblem = Dictionary(grouping: tokens, by: { "\($0.domain)#\($0.problem)" })
            func stats(_ sideA: Set<String>) -> [Double] {
                let ta = sideA.flatMap { byProblem[$0] ?? [] }
                let tb = probs.filter { !sideA.contains($0) }.flatMap { byProblem[$0] ?? [] }
                return (0..<count).map { statistic(ta, tb, $0) }
            }
            let observed = stats(Set(probs.filter { $0.hasPrefix(a + "#") }))
            var null: [[Double]] = []
            for mask in 0..<(1 << probs.count) where mask.nonzeroBitCount == nA {
                null.append(stats(Set(probs.indices.filter { mask & (1 << $0) != 0 }.map { probs[$0] })))
            }
            let total = Double(null.count)
            let maxima = null.map { $0.max() ?? 0 }
            let p = (0..<count).map { l in Double(null.filter { $0[l] >= observed[l] - 1e-12 }.count) / total }
            let adjusted = (0..<count).map { l in Double(maxima.filter { $0 >= observed[l] - 1e-12 }.count) / total }
            let p95 = (0..<count).map { l -> Double in
                let v = null.map { $0[l] }.sorted()
                let h = Double(v.count - 1) * 0.95
                let lo = Int(h.rounded(.down))
                return v[lo] + (h - Double(lo)) * (v[min(lo + 1, v.count - 1)] - v[lo])
            }
            return (p, adjusted, p95)
        }

        /// (correct, baseline correct, evaluated) of the next-layer predictor fitted on `train`.
        func score(train: [T], test: [T]) -> (Double, Double, Double) {
            var right = 0.0
            var base = 0.0
            var n = 0.0
            for l in 0..<(layers - 1) {
                var counts = [[Double]](repeating: [Double](repeating: 0, count: experts), count: experts)
                var next = [Double](repeating: 0, count: experts)
                for t in train {
                    if let c = t.cells[l + 1] { next[c[0]] += 1 }
                    if let a = t.cells[l], let b = t.cells[l + 1] { counts[a[0]][b[0]] += 1 }
                }
                let mf = next.indices.max { next[$0] < next[$1] || (next[$0] == next[$1] && $0 > $1) } ?? 0
                for t in test {
                    guard let a = t.cells[l], let b = t.cells[l + 1] else { continue }
                    let row = counts[a[0]]
                    let guess =
                        row.reduce(0, +) > 0
                        ? row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0 : mf
                    n += 1
                    if guess == b[0] { right += 1 }
                    if mf == b[0] { base += 1 }
                }
            }
            return (right, base, n)
        }

        /// Cross-validation within a domain of at least 5 problems: folds are the classes of
        /// problem id mod 5 (the fold rule adds a per-domain offset, which only renames folds).
        func crossValidated(_ d: String) -> (Double, Double) {
            let toks = tokens.filter { $0.domain == d }
            var right = 0.0
            var base = 0.0
            var n = 0.0
            for f in 0..<5 {
                let test = toks.filter { $0.problem % 5 == Int64(f) }
                let train = toks.filter { $0.problem % 5 != Int64(f) }
                let (r, b, k) = score(train: train, test: test)
                right += r
                base += b
                n += k
            }
            return (right / n, base / n)
        }
    }

    /// The transition domain test (joint top-1 -> top-1 JS per layer pair) and the max-T
    /// adjusted p-values and null percentiles of both tests, against an exhaustive enumeration
    /// written independently here. 7 + 5 problems: C(12, 7) = 792 relabelings, exact for both.
    @Test func transitionTestAndAdjustedPMatchABruteForceComputation() throws {
        let tokens = Self.randomTokens(
            domains: [("left", 7), ("right", 5)],
            seed: 21,
            experts: 4,
            layers: 3,
            topK: 2,
            firstID: 10
        )
        let r = try DomainFixture.run(shape, [try DomainFixture.block(shape, tokens)])
        let bf = BruteForce(tokens: tokens, layers: 3, experts: 4)
        let usage = bf.exactTest("left", "right", count: 3) { a, b, l in
            BruteForce.js(bf.usage(a, layer: l), bf.usage(b, layer: l))
        }
        for l in 0..<3 {
            #expect(
                abs((DomainFixture.layer(r, l, "p_value_adjusted") ?? -1) - usage.adjusted[l]) < 1e-15,
                "layer \(l)"
            )
            #expect(abs((DomainFixture.layer(r, l, "null_p95_js_bits") ?? -1) - usage.p95[l]) < 1e-12, "layer \(l)")
            #expect(abs((DomainFixture.layer(r, l, "p_value") ?? -1) - usage.p[l]) < 1e-15, "layer \(l)")
        }
        let transitions = bf.exactTest("left", "right", count: 2) { a, b, l in
            BruteForce.js(bf.joint(a, pair: l), bf.joint(b, pair: l))
        }
        let t = try #require(r.json["transitions"])
        #expect(t["permutation"]?["method"] == "exact")
        #expect(t["permutation"]?["relabelings"] == 792)
        let left = tokens.filter { $0.domain == "left" }
        let right = tokens.filter { $0.domain == "right" }
        for l in 0..<2 {
            let row = try #require(t["layer_pairs"]?[l])
            let expected = BruteForce.js(bf.joint(left, pair: l), bf.joint(right, pair: l))
            #expect(abs((row["js_divergence_bits"]?.doubleValue ?? -1) - expected) < 1e-12, "pair \(l)")
            #expect(abs((row["p_value"]?.doubleValue ?? -1) - transitions.p[l]) < 1e-15, "pair \(l)")
            #expect(abs((row["p_value_adjusted"]?.doubleValue ?? -1) - transitions.adjusted[l]) < 1e-15, "pair \(l)")
            #expect(abs((row["null_p95_js_bits"]?.doubleValue ?? -1) - transitions.p95[l]) < 1e-12, "pair \(l)")
            let ci = (row["ci95"]?.arrayValue ?? []).compactMap { $0.doubleValue }
            #expect(ci.count == 2 && ci[0] <= ci[1] && ci[0] >= 0 && ci[1] <= 1)
            print("pair \(l): JS \(expected) bits, p \(transitions.p[l]), adjusted \(transitions.adjusted[l])")
        }
        let minimumAdjusted = transitions.adjusted.min() ?? .nan
        #expect(abs((t["permutation"]?["max_layer_pair_p_value"]?.doubleValue ?? -1) - minimumAdjusted) < 1e-15)
    }

    @Test func everyFigureMatchesABruteForceComputation() throws {
        let tokens = Self.randomTokens(
            domains: [("left", 7), ("right", 5)],
            seed: 21,
            experts: 4,
            layers: 3,
            topK: 2,
            firstID: 10
        )
        let r = try DomainFixture.run(shape, [try DomainFixture.block(shape, tokens)])
        let bf = BruteForce(tokens: tokens, layers: 3, experts: 4)
        let left = tokens.filter { $0.domain == "left" }
        let right = tokens.filter { $0.domain == "right" }
        // C(12, 7) = 792 relabelings: exact.
        #expect(r.json["permutation"]?["relabelings"] == 792)
        let p = bf.exactP("left", "right")
        for l in 0..<3 {
            let expected = BruteForce.js(bf.usage(left, layer: l), bf.usage(right, layer: l))
            let got = try #require(DomainFixture.layer(r, l, "js_divergence_bits"))
            #expect(abs(got - expected) < 1e-12, "layer \(l)")
            let gotP = try #require(DomainFixture.layer(r, l, "p_value"))
            #expect(abs(gotP - p[l]) < 1e-15, "layer \(l) p")
            print("layer \(l): JS \(got) bits, p \(gotP)")
        }
        // Transfer both ways, baselines and 5-fold cross-validation (7 and 5 problems).
        for (train, test, trainToks, testToks) in [("left", "right", left, right), ("right", "left", right, left)] {
            let t = try #require(DomainFixture.transfer(r, train: train, test: test))
            let (c, b, n) = bf.score(train: trainToks, test: testToks)
            #expect(abs((t["top1_accuracy"]?.doubleValue ?? -1) - c / n) < 1e-12)
            #expect(abs((t["baseline_most_frequent"]?.doubleValue ?? -1) - b / n) < 1e-12)
            #expect(t["evaluated"]?.intValue == Int(n))
            let (cv, cvBase) = bf.crossValidated(test)
            #expect(abs((t["within_test_cv_top1_accuracy"]?.doubleValue ?? -1) - cv) < 1e-12)
            #expect(abs((t["within_test_cv_baseline_most_frequent"]?.doubleValue ?? -1) - cvBase) < 1e-12)
            #expect(t["cv"]?["folds"] == 5)
        }
    }
}
