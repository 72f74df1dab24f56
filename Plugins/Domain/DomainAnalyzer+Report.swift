// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainAnalyzer's finish(): per-domain summaries, pairwise divergences and their significance,
// transfer of the next-layer predictor, and the report (JSON, tables, figures, headlines, notes).

import AnalysisSupport
public import MoERouting

extension DomainAnalyzer {
    // MARK: - Public helpers

    /// Jensen-Shannon divergence in bits (log base 2, so between 0 and 1) between two
    /// distributions given as non-negative weights of equal length, each normalised to sum 1
    /// first. NaN when the lengths differ or either sums to zero.
    ///
    /// ```swift
    /// DomainAnalyzer.jensenShannonBits([1, 0], [0, 1])      // 1
    /// DomainAnalyzer.jensenShannonBits([0.5, 0.5], [1, 0])  // 0.311278... = H(3/4) - 1/2
    /// ```
    public static func jensenShannonBits(_ p: [Double], _ q: [Double]) -> Double {
        DomainStatistics.jsBits(p, q)
    }

    /// Total variation distance `½ Σ |p_i - q_i|` between two distributions given as
    /// non-negative weights, each normalised to sum 1 first. NaN when the lengths differ or
    /// either sums to zero.
    public static func totalVariation(_ p: [Double], _ q: [Double]) -> Double {
        DomainStatistics.totalVariation(p, q)
    }

    // MARK: - Summaries

    struct DomainSummary {
        var name: String
        var local: Int
        /// Problem slots, by problem id.
        var slots: [Int]
        var tokens = 0
        var records = 0
        var incomplete = 0
        /// Selected-id counts [L][E].
        var usage: [Double]
        /// Top-1 counts [L][E].
        var top1: [Double]
        /// Top-1 -> top-1 counts [(L-1)][E][E].
        var pairs: [Double]
        /// Affinity counts [(L-1)][E][E].
        var affinity: [Double]

        func usageShares(layer l: Int, experts E: Int) -> [Double] {
            let row = Array(usage[(l * E)..<((l + 1) * E)])
            let t = row.reduce(0, +)
            return row.map { t > 0 ? $0 / t : .nan }
        }
    }

    /// Domains with at least one problem, sorted by name; `folds` is ``foldPairs()`` (in place,
    /// see ``withFoldPairs(_:)``).
    func summaries(folds: UnsafeBufferPointer<Int>) -> [DomainSummary] {
        let LE = layers * experts
        let cells = pairCells
        let F = Self.crossValidationFolds
        var byDomain = [[Int]](repeating: [], count: domainNames.count)
        for (s, key) in problemKeys.enumerated() { byDomain[key.domain].append(s) }
        var out: [DomainSummary] = []
        for (d, name) in domainNames.enumerated() where !byDomain[d].isEmpty {
            let slots = byDomain[d].sorted { problemKeys[$0].id < problemKeys[$1].id }
            var sum = DomainSummary(
                name: name,
                local: d,
                slots: slots,
                usage: [Double](repeating: 0, count: LE),
                top1: [Double](repeating: 0, count: LE),
                pairs: [Double](repeating: 0, count: cells),
                affinity: [Double](repeating: 0, count: cells)
            )
            for s in slots {
                sum.tokens += problemTokens[s]
                sum.records += problemRecords[s]
                sum.incomplete += problemIncomplete[s]
                for c in 0..<LE {
                    sum.usage[c] += Double(problemUsage[s * LE + c])
                    sum.top1[c] += Double(problemTop1[s * LE + c])
                }
            }
            for c in 0..<cells {
                sum.affinity[c] = Double(domainAffinity[d * cells + c])
                var p = 0
                for f in 0..<F { p += folds[(d * F + f) * cells + c] }
                sum.pairs[c] = Double(p)
            }
            out.append(sum)
        }
        return out.sorted { $0.name < $1.name }
    }

    // MARK: - Pairs

    struct LayerComparison {
        var js: Double
        var tv: Double
        var affinityJS: Double?
        var affinityTV: Double?
        var p: Double = .nan
        var ci: (lo: Double, hi: Double) = (.nan, .nan)
        var nullMean: Double = .nan
        /// p adjusted for the L layers (single-step max-T).
        var adjustedP: Double = .nan
        /// The permutation null's 95th percentile.
        var nullP95: Double = .nan
    }

    /// One layer pair `l -> l+1` of the transition domain test.
    struct TransitionLayer {
        var js: Double
        var tv: Double
        var p: Double = .nan
        var adjustedP: Double = .nan
        var ci: (lo: Double, hi: Double) = (.nan, .nan)
        var nullMean: Double = .nan
        var nullP95: Double = .nan
    }

    /// The transition domain test of a pair: JS between the domains' joint distributions of
    /// `(top1_l, top1_{l+1})` per layer pair, permutation over problems and bootstrap.
    struct TransitionTest {
        var layers: [TransitionLayer]
        var permutation: DomainSignificance.Permutation
        var permutationSeed: UInt64
        var bootstrapSeed: UInt64
        var resamples: Int
    }

    struct PairComparison {
        var a: DomainSummary
        var b: DomainSummary
        var layers: [LayerComparison]
        var permutation: DomainSignificance.Permutation?
        var permutationSeed: UInt64 = 0
        var bootstrapSeed: UInt64 = 0
        /// Resamples the usage bootstrap drew (``resamples`` or fewer, see ``finishWorkBudget``).
        var bootstrapResamples = 0
        var transitions: TransitionTest?
    }

    /// Significance level of the "significant" flags.
    static let alpha = 0.05

    func compare(_ a: DomainSummary, _ b: DomainSummary, pairIndex: Int, test: Bool) -> PairComparison {
        let E = experts
        let EE = E * E
        var rows: [LayerComparison] = []
        for l in 0..<layers {
            let ua = Array(a.usage[(l * E)..<((l + 1) * E)])
            let ub = Array(b.usage[(l * E)..<((l + 1) * E)])
            var c = LayerComparison(
                js: DomainStatistics.jsBits(ua, ub),
                tv: DomainStatistics.totalVariation(ua, ub)
            )
            if transitionsEnabled && l + 1 < layers {
                let fa = Array(a.affinity[(l * EE)..<((l + 1) * EE)])
                let fb = Array(b.affinity[(l * EE)..<((l + 1) * EE)])
                c.affinityJS = DomainStatistics.jsBits(fa, fb)
                c.affinityTV = DomainStatistics.totalVariation(fa, fb)
            }
            rows.append(c)
        }
        var result = PairComparison(a: a, b: b, layers: rows)
        guard test else { return result }
        let LE = layers * E
        var counts: [Double] = []
        counts.reserveCapacity((a.slots.count + b.slots.count) * LE)
        for s in a.slots + b.slots {
            for c in 0..<LE { counts.append(Double(problemUsage[s * LE + c])) }
        }
        let sig = DomainSignificance(rows: counts, nA: a.slots.count, nB: b.slots.count, layers: layers, experts: E)
        result.permutationSeed = DomainStatistics.derivedSeed(seed, tag: UInt64(2 * pairIndex + 1))
        result.bootstrapSeed = DomainStatistics.derivedSeed(seed, tag: UInt64(2 * pairIndex + 2))
        // Each relabeling sums the smaller side's [L][E] rows, each resample every problem's: at
        // large L x E with many problems the counts are capped so the test stays within the budget.
        let width = LE
        let relabelingCount = Self.repetitions(
            relabelings,
            cellsEach: width * (min(a.slots.count, b.slots.count) + 3)
        )
        result.bootstrapResamples = Self.repetitions(resamples, cellsEach: width * (a.slots.count + b.slots.count + 3))
        // The three tests are independent (each seeded on its own): run side by side on idle
        // cores, the results the same as one after another.
        var permutation: DomainSignificance.Permutation?
        var bootstrap: [(lo: Double, hi: Double)]?
        var transitions: TransitionTest?
        let resamples = result.bootstrapResamples
        let permutationSeed = result.permutationSeed
        let bootstrapSeed = result.bootstrapSeed
        ParallelLoop.forEach(count: 3) { task in
            switch task {
            case 0: permutation = sig.permutation(limit: relabelingCount, seed: permutationSeed)
            case 1: bootstrap = sig.bootstrap(resamples: resamples, seed: bootstrapSeed)
            default: transitions = transitionTest(a, b, pairIndex: pairIndex)
            }
        }
        guard let perm = permutation, let boot = bootstrap else { return result }
        for l in 0..<layers {
            result.layers[l].p = perm.pValues[l]
            result.layers[l].nullMean = perm.nullMean[l]
            result.layers[l].ci = boot[l]
            result.layers[l].adjustedP = perm.adjustedP[l]
            result.layers[l].nullP95 = perm.nullP95[l]
        }
        result.permutation = perm
        result.transitions = transitions
        return result
    }

    /// Cell additions one domain test (the usage permutation test, or its bootstrap) may spend:
    /// 2^30, about a second. Up to it the full ``relabelings`` and ``resamples`` run (every
    /// Mixtral-shaped run below about 8,000 problems); beyond it fewer, never under 200, and the
    /// report states the number used.
    public static let finishWorkBudget = 1 << 30

    /// `wanted` repetitions, or as many as fit ``finishWorkBudget`` at `cellsEach` additions each
    /// (at least `min(wanted, 200)`).
    public static func repetitions(_ wanted: Int, cellsEach: Int) -> Int {
        max(min(wanted, 200), min(wanted, finishWorkBudget / max(1, cellsEach)))
    }

    /// The transition domain test of a pair, or nil when problems keep no transition matrices
    /// (see ``maximumProblemTransitionCells``).
    ///
    /// - Complexity: O(R (n + 1) (L-1) E^2) for R relabelings or resamples of n problems.
    func transitionTest(_ a: DomainSummary, _ b: DomainSummary, pairIndex: Int) -> TransitionTest? {
        guard problemPairsEnabled, layers > 1 else { return nil }
        let EE = experts * experts
        let cells = pairCells
        var rows: [Double] = []
        rows.reserveCapacity((a.slots.count + b.slots.count) * cells)
        for s in a.slots + b.slots {
            let o = problemSmallOffset[s]
            guard o >= 0 else { return nil }  // unreachable: every problem has one when enabled
            for c in 0..<cells { rows.append(Double(smallPairs[o + c])) }
        }
        let sig = DomainSignificance(rows: rows, nA: a.slots.count, nB: b.slots.count, layers: layers - 1, experts: EE)
        let permutationSeed = DomainStatistics.derivedSeed(seed, tag: 0x7472_0000 + UInt64(2 * pairIndex + 1))
        let bootstrapSeed = DomainStatistics.derivedSeed(seed, tag: 0x7472_0000 + UInt64(2 * pairIndex + 2))
        let resamples = min(self.resamples, Self.transitionResampleLimit)
        let relabelingCount = min(relabelings, Self.transitionRelabelingLimit)
        var permutation: DomainSignificance.Permutation?
        var bootstrap: [(lo: Double, hi: Double)]?
        ParallelLoop.forEach(count: 2) { task in
            if task == 0 {
                permutation = sig.permutation(limit: relabelingCount, seed: permutationSeed)
            } else {
                bootstrap = sig.bootstrap(resamples: resamples, seed: bootstrapSeed)
            }
        }
        guard let perm = permutation, let boot = bootstrap else { return nil }
        var out: [TransitionLayer] = []
        for l in 0..<(layers - 1) {
            let fa = Array(a.pairs[(l * EE)..<((l + 1) * EE)])
            let fb = Array(b.pairs[(l * EE)..<((l + 1) * EE)])
            out.append(
                TransitionLayer(
                    js: DomainStatistics.jsBits(fa, fb),
                    tv: DomainStatistics.totalVariation(fa, fb),
                    p: perm.pValues[l],
                    adjustedP: perm.adjustedP[l],
                    ci: boot[l],
                    nullMean: perm.nullMean[l],
                    nullP95: perm.nullP95[l]
                )
            )
        }
        return TransitionTest(
            layers: out,
            permutation: perm,
            permutationSeed: permutationSeed,
            bootstrapSeed: bootstrapSeed,
            resamples: resamples
        )
    }

    // MARK: - Transfer

    struct CrossValidation {
        var score: TransferScore
        var method: String
        var folds: Int
        /// Each test problem's score under the predictor of its own fold (empty when problems
        /// keep no transition matrices).
        var parts: [ProblemScore] = []
        var intervals: AccuracyIntervals?
    }

    /// One test problem's next-layer prediction counts, pooled over layer pairs.
    struct ProblemScore {
        var correct: Double
        var baseline: Double
        var total: Double
    }

    /// 95% percentile bootstrap intervals over test problems.
    struct AccuracyIntervals {
        var accuracy: (lo: Double, hi: Double)
        var baseline: (lo: Double, hi: Double)
        /// Of accuracy minus baseline, paired within each resample.
        var difference: (lo: Double, hi: Double)
    }

    /// The top-1 -> top-1 matrix of problem slot `s`, when it keeps one.
    func problemPairs(_ s: Int) -> [Double]? {
        let o = problemSmallOffset[s]
        guard o >= 0 else { return nil }
        return (0..<pairCells).map { Double(smallPairs[o + $0]) }
    }

    /// The counts of `predictor` on one problem's matrix.
    func problemScore(_ predictor: NextLayerPredictor, _ pairs: [Double]) -> ProblemScore {
        var score = TransferScore(layerPairs: layers - 1)
        predictor.score(pairs, into: &score)
        return ProblemScore(
            correct: score.correct.reduce(0, +),
            baseline: score.baseline.reduce(0, +),
            total: score.total.reduce(0, +)
        )
    }

    /// Percentile bootstrap (2.5%, 97.5%, type 7) over problems of pooled accuracy, baseline
    /// accuracy and their difference: each resample draws `parts.count` problems with
    /// replacement (SplitMix64 seeded with `seed`). Nil below two problems with test pairs.
    static func bootstrapAccuracy(_ parts: [ProblemScore], resamples: Int, seed: UInt64) -> AccuracyIntervals? {
        let n = parts.count
        guard parts.filter({ $0.total > 0 }).count >= 2 else { return nil }
        var rng = SeededRandom(seed: seed)
        var acc: [Double] = []
        var base: [Double] = []
        var diff: [Double] = []
        acc.reserveCapacity(resamples)
        base.reserveCapacity(resamples)
        diff.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var c = 0.0
            var b = 0.0
            var t = 0.0
            for _ in 0..<n {
                let x = parts[rng.nextIndex(below: n)]
                c += x.correct
                b += x.baseline
                t += x.total
            }
            guard t > 0 else { continue }
            acc.append(c / t)
            base.append(b / t)
            diff.append((c - b) / t)
        }
        func interval(_ v: [Double]) -> (lo: Double, hi: Double) {
            let s = v.sorted()
            return (DomainStatistics.quantile(sorted: s, 0.025), DomainStatistics.quantile(sorted: s, 0.975))
        }
        return AccuracyIntervals(accuracy: interval(acc), baseline: interval(base), difference: interval(diff))
    }

    /// Within-domain cross-validation by problem: leave-one-problem-out below
    /// ``crossValidationFolds`` problems, otherwise the project's ``ProblemFolds`` rule. `nil`
    /// below two problems.
    /// `index` is the domain's place in sorted name order (it seeds the bootstrap, so the result
    /// does not depend on the order in which shards registered domains).
    func crossValidate(_ d: DomainSummary, index: Int, folds: UnsafeBufferPointer<Int>) -> CrossValidation? {
        let n = d.slots.count
        guard transitionsEnabled, n >= 2 else { return nil }
        let LE = layers * experts
        let cells = pairCells
        let F = Self.crossValidationFolds
        var score = TransferScore(layerPairs: layers - 1)
        var parts: [ProblemScore] = []
        func run(foldPairs: [Double], foldTop1: [Double], members: [Int]) {
            let trainPairs = zip(d.pairs, foldPairs).map { $0 - $1 }
            let trainTop1 = zip(d.top1, foldTop1).map { $0 - $1 }
            let predictor = NextLayerPredictor(pairs: trainPairs, top1: trainTop1, layers: layers, experts: experts)
            predictor.score(foldPairs, into: &score)
            guard problemPairsEnabled else { return }
            for s in members {
                if let m = problemPairs(s) { parts.append(problemScore(predictor, m)) }
            }
        }
        func finished(_ method: String, folds: Int) -> CrossValidation {
            let tag = 0x6376_0000 + UInt64(index)
            let intervals = Self.bootstrapAccuracy(
                parts,
                resamples: resamples,
                seed: DomainStatistics.derivedSeed(seed, tag: tag)
            )
            return CrossValidation(score: score, method: method, folds: folds, parts: parts, intervals: intervals)
        }
        if n < F {
            for s in d.slots {
                let o = problemSmallOffset[s]
                guard o >= 0 else { return nil }  // unreachable: every problem of a small domain has one
                let fp = (0..<cells).map { Double(smallPairs[o + $0]) }
                let ft = (0..<LE).map { Double(problemTop1[s * LE + $0]) }
                run(foldPairs: fp, foldTop1: ft, members: [s])
            }
            return finished("leave-one-problem-out", folds: n)
        }
        var used = 0
        for f in 0..<F {
            let members = d.slots.filter { problemFold[$0] == f }
            guard !members.isEmpty else { continue }
            used += 1
            var ft = [Double](repeating: 0, count: LE)
            for s in members {
                for c in 0..<LE { ft[c] += Double(problemTop1[s * LE + c]) }
            }
            let base = (d.local * F + f) * cells
            let fp = (0..<cells).map { Double(folds[base + $0]) }
            run(foldPairs: fp, foldTop1: ft, members: members)
        }
        return finished(
            "\(F)-fold by problem (fold = (problem id mod \(F) + fnv1a(domain) mod \(F)) mod \(F))",
            folds: used
        )
    }

    struct Transfer {
        var train: String
        var test: String
        var score: TransferScore
        var cv: CrossValidation?
        /// Bootstrap over the test domain's problems; nil without per-problem matrices or with
        /// fewer than two test problems.
        var intervals: AccuracyIntervals?

        /// Whether the predictor does worse than its most-frequent baseline.
        var belowBaseline: Bool {
            let a = score.accuracy
            let b = score.baselineAccuracy
            return a.isFinite && b.isFinite && a < b
        }

        /// Whether the within-test cross-validated predictor does worse than its baseline.
        var cvBelowBaseline: Bool? {
            guard let cv else { return nil }
            let a = cv.score.accuracy
            let b = cv.score.baselineAccuracy
            guard a.isFinite && b.isFinite else { return nil }
            return a < b
        }
    }

    func transfers(_ domains: [DomainSummary], folds: UnsafeBufferPointer<Int>) -> [Transfer] {
        guard transitionsEnabled else { return [] }
        let cvs = domains.enumerated().map { crossValidate($1, index: $0, folds: folds) }
        var out: [Transfer] = []
        for (i, a) in domains.enumerated() {
            let predictor = NextLayerPredictor(pairs: a.pairs, top1: a.top1, layers: layers, experts: experts)
            for (j, b) in domains.enumerated() where i != j {
                var score = TransferScore(layerPairs: layers - 1)
                predictor.score(b.pairs, into: &score)
                var intervals: AccuracyIntervals?
                if problemPairsEnabled {
                    let parts = b.slots.compactMap { s in problemPairs(s).map { problemScore(predictor, $0) } }
                    let tag = 0x7466_0000 + UInt64(out.count)
                    intervals = Self.bootstrapAccuracy(
                        parts,
                        resamples: resamples,
                        seed: DomainStatistics.derivedSeed(seed, tag: tag)
                    )
                }
                out.append(Transfer(train: a.name, test: b.name, score: score, cv: cvs[j], intervals: intervals))
            }
        }
        return out
    }

    // MARK: - finish

    public func finish() throws -> AnalyzerReport {
        guard shape != nil else {
            throw RoutingError.analyzerFailed(
                name: name,
                message: "finish was called before begin; call begin(_:) first"
            )
        }
        // withFoldPairs spills the 16-bit counters into the totals read below.
        let (domains, transfer) = withFoldPairs { folds in
            let domains = summaries(folds: folds)
            return (domains, domains.count >= 2 ? transfers(domains, folds: folds) : [])
        }
        guard domains.count >= 2 else { return notApplicable(domains) }
        var pairs: [PairComparison] = []
        var pairIndex = 0
        for i in 0..<domains.count {
            for j in (i + 1)..<domains.count {
                pairs.append(
                    compare(domains[i], domains[j], pairIndex: pairIndex, test: pairIndex < Self.maximumTestedPairs)
                )
                pairIndex += 1
            }
        }
        return report(domains: domains, pairs: pairs, transfer: transfer)
    }

    private func domainJSON(_ d: DomainSummary) -> ReportValue {
        [
            "name": .string(d.name), "problems": .int(d.slots.count), "tokens": .int(d.tokens),
            "records": .int(d.records), "incomplete_tokens": .int(d.incomplete),
        ]
    }

    private func domainTable(_ domains: [DomainSummary]) -> ReportTable {
        ReportTable(
            title: "Domains (problems are the units of the significance tests)",
            columns: ["domain", "problems", "tokens", "records", "incomplete tokens"],
            rows: domains.map {
                ["\($0.name)", "\($0.slots.count)", "\($0.tokens)", "\($0.records)", "\($0.incomplete)"]
            }
        )
    }

    private var seedValue: ReportValue { .integer(seed) }

    private func notApplicable(_ domains: [DomainSummary]) -> AnalyzerReport {
        let note =
            domains.isEmpty
            ? "no tokens were seen; the domain comparison needs two or more domains"
            : "only one domain (\(domains[0].name)) was seen; the domain comparison needs two or more domains"
        return AnalyzerReport(
            analyzer: name,
            title: "Domain comparison",
            json: ["applicable": false, "note": .string(note), "domains": .array(domains.map(domainJSON))],
            tables: domains.isEmpty ? [] : [domainTable(domains)],
            notes: [note]
        )
    }

    private static func ci(_ c: (lo: Double, hi: Double)) -> ReportValue {
        c.lo.isFinite && c.hi.isFinite ? [.number(c.lo), .number(c.hi)] : .null
    }

    /// `true`/`false` for p below ``alpha``, null when p is not finite (not tested).
    private static func significant(_ p: Double) -> ReportValue {
        p.isFinite ? .bool(p < alpha) : .null
    }

    private func layerJSON(_ c: LayerComparison, layer l: Int) -> [ReportValue.Member] {
        [
            .init("layer", .int(l)),
            .init("js_divergence_bits", .number(c.js)),
            .init("total_variation", .number(c.tv)),
            .init("p_value", .number(c.p)),
            .init("ci95", Self.ci(c.ci)),
            .init("null_mean_js_bits", .number(c.nullMean)),
            .init("affinity_js_divergence_bits", .number(c.affinityJS)),
            .init("affinity_total_variation", .number(c.affinityTV)),
            .init("p_value_adjusted", .number(c.adjustedP)),
            .init("null_p95_js_bits", .number(c.nullP95)),
            .init("significant", Self.significant(c.adjustedP)),
        ]
    }

    /// Layers (or layer pairs) whose adjusted p is below ``alpha``.
    private static func significantIndices(_ adjusted: [Double]) -> [Int] {
        adjusted.indices.filter { adjusted[$0].isFinite && adjusted[$0] < alpha }
    }

    private func permutationJSON(_ p: DomainSignificance.Permutation?, seed pairSeed: UInt64) -> ReportValue {
        guard let p else { return .null }
        return [
            "method": .string(p.method), "relabelings": .int(p.relabelings), "seed": seedValue,
            "derived_seed": .string(String(pairSeed)),
            "statistic": "per-layer JS divergence (bits) of pooled usage counts; labels permuted across whole problems",
            "minimum_p_value": .number(p.minimumP), "max_layer_p_value": .number(p.maxLayerP),
            "adjustment":
                "single-step max-T over layers (Westfall-Young): p_value_adjusted = share of relabelings whose maximum over layers reaches the layer's JS",
            "null_max_p95_js_bits": .number(p.nullMaxP95),
            "alpha": .number(Self.alpha),
            "significant": Self.significant(p.maxLayerP),
            "significant_layers": .array(Self.significantIndices(p.adjustedP).map { .int($0) }),
            "can_reach_alpha": .bool(p.minimumP < Self.alpha),
        ]
    }

    private func transitionJSON(_ t: TransitionTest?) -> ReportValue {
        guard let t else { return .null }
        let p = t.permutation
        return [
            "statistic":
                "per layer pair l -> l+1: JS divergence (bits) between the joint distributions of (top1_l, top1_{l+1}) over tokens with both layers present; labels permuted across whole problems",
            "permutation": [
                "method": .string(p.method), "relabelings": .int(p.relabelings),
                "derived_seed": .string(String(t.permutationSeed)),
                "minimum_p_value": .number(p.minimumP), "max_layer_pair_p_value": .number(p.maxLayerP),
                "null_max_p95_js_bits": .number(p.nullMaxP95), "alpha": .number(Self.alpha),
                "significant": Self.significant(p.maxLayerP),
                "significant_layer_pairs": .array(Self.significantIndices(p.adjustedP).map { .int($0) }),
                "can_reach_alpha": .bool(p.minimumP < Self.alpha),
            ],
            "bootstrap": ["resamples": .int(t.resamples), "derived_seed": .string(String(t.bootstrapSeed))],
            "layer_pairs": .array(
                t.layers.enumerated().map { l, c in
                    [
                        "from": .int(l), "to": .int(l + 1), "js_divergence_bits": .number(c.js),
                        "total_variation": .number(c.tv),
                        "p_value": .number(c.p), "p_value_adjusted": .number(c.adjustedP), "ci95": Self.ci(c.ci),
                        "null_mean_js_bits": .number(c.nullMean), "null_p95_js_bits": .number(c.nullP95),
                        "significant": Self.significant(c.adjustedP),
                    ]
                }
            ),
        ]
    }

    /// Nil intervals read as null.
    private static func optionalCI(_ c: (lo: Double, hi: Double)?) -> ReportValue {
        guard let c else { return .null }
        return ci(c)
    }

    /// "[lo, hi]" with 4 decimals, or "n/a".
    private static func interval(_ c: (lo: Double, hi: Double)?) -> String {
        guard let c, c.lo.isFinite, c.hi.isFinite else { return "n/a" }
        return "[\(DomainStatistics.fixed(c.lo, 4)), \(DomainStatistics.fixed(c.hi, 4))]"
    }

    private func report(domains: [DomainSummary], pairs: [PairComparison], transfer: [Transfer]) -> AnalyzerReport {
        let f = DomainStatistics.fixed
        let E = experts
        let first = pairs[0]
        let a = first.a
        let b = first.b
        let nA = a.slots.count
        let nB = b.slots.count

        // JSON.
        var layersJSON: [ReportValue] = []
        for (l, c) in first.layers.enumerated() {
            var m = layerJSON(c, layer: l)
            let usage = ReportValue.object(
                domains.map { .init($0.name, .array($0.usageShares(layer: l, experts: E).map { .number($0) })) }
            )
            m.insert(.init("usage", usage), at: 6)
            layersJSON.append(.object(m))
        }
        let pairsJSON: [ReportValue] = pairs.map { p in
            [
                "a": .string(p.a.name), "b": .string(p.b.name),
                "problems": [.int(p.a.slots.count), .int(p.b.slots.count)],
                "permutation": permutationJSON(p.permutation, seed: p.permutationSeed),
                "bootstrap_derived_seed": p.permutation == nil ? .null : .string(String(p.bootstrapSeed)),
                "layers": .array(p.layers.enumerated().map { .object(layerJSON($1, layer: $0)) }),
                "transitions": transitionJSON(p.transitions),
            ]
        }
        let transferJSON: [ReportValue] = transfer.map { t in
            let cvByPair = t.cv?.score.accuracyByPair ?? []
            return [
                "train": .string(t.train), "test": .string(t.test),
                "top1_accuracy": .number(t.score.accuracy),
                "within_test_cv_top1_accuracy": .number(t.cv?.score.accuracy),
                "baseline_most_frequent": .number(t.score.baselineAccuracy),
                "within_test_cv_baseline_most_frequent": .number(t.cv?.score.baselineAccuracy),
                "coverage": .number(t.score.coverage),
                "chance": .number(1 / Double(E)),
                "evaluated": .int(t.score.evaluated),
                "cv": t.cv.map { ["method": .string($0.method), "folds": .int($0.folds)] } ?? .null,
                "top1_accuracy_ci95": Self.optionalCI(t.intervals?.accuracy),
                "baseline_most_frequent_ci95": Self.optionalCI(t.intervals?.baseline),
                "top1_minus_baseline_ci95": Self.optionalCI(t.intervals?.difference),
                "within_test_cv_top1_accuracy_ci95": Self.optionalCI(t.cv?.intervals?.accuracy),
                "within_test_cv_baseline_most_frequent_ci95": Self.optionalCI(t.cv?.intervals?.baseline),
                "below_baseline": .bool(t.belowBaseline),
                "within_test_cv_below_baseline": t.cvBelowBaseline.map { .bool($0) } ?? .null,
                "by_layer_pair": .array(
                    t.score.accuracyByPair.enumerated().map { l, acc in
                        [
                            "from": .int(l), "to": .int(l + 1), "top1_accuracy": .number(acc),
                            "within_test_cv_top1_accuracy": .number(l < cvByPair.count ? cvByPair[l] : nil),
                            "baseline_most_frequent": .number(t.score.baselineByPair[l]),
                        ]
                    }
                ),
            ]
        }
        let json: ReportValue = [
            "applicable": true,
            "shape": ["layers": .int(layers), "experts": .int(E), "top_k": .int(topK)],
            "phases": "all (prefill and decode tokens alike)",
            "compared": [.string(a.name), .string(b.name)],
            "domains": .array(domains.map(domainJSON)),
            "layers": .array(layersJSON),
            "permutation": permutationJSON(first.permutation, seed: first.permutationSeed),
            "bootstrap": [
                "resamples": .int(first.bootstrapResamples), "seed": seedValue,
                "derived_seed": .string(String(first.bootstrapSeed)),
                "interval":
                    "percentile 2.5% and 97.5% (type 7), problems resampled with replacement within each domain",
            ],
            "pairs": .array(pairsJSON),
            "transfer": .array(transferJSON),
            "transitions": transitionJSON(first.transitions),
            "transfer_bootstrap": problemPairsEnabled
                ? [
                    "resamples": .int(resamples), "seed": seedValue,
                    "unit": "problems of the test domain, resampled with replacement",
                    "interval":
                        "percentile 2.5% and 97.5% (type 7) of pooled accuracy; the difference from the baseline is paired within each resample",
                ] : .null,
        ]

        // Tables.
        var tables = [domainTable(domains)]
        tables.append(
            ReportTable(
                title: "Expert usage divergence per layer: \(a.name) vs \(b.name) (\(nA) vs \(nB) problems)",
                columns: [
                    "layer", "JS (bits)", "TV", "p (permutation)", "p adjusted (max-T)", "95% CI (bootstrap)",
                    "null mean JS",
                    "null 95th pct.", "affinity JS l->l+1", "affinity TV",
                ],
                rows: first.layers.enumerated().map { l, c in
                    [
                        "\(l)", f(c.js, 4), f(c.tv, 4), f(c.p, 4), f(c.adjustedP, 4),
                        "[\(f(c.ci.lo, 4)), \(f(c.ci.hi, 4))]",
                        f(c.nullMean, 4), f(c.nullP95, 4), c.affinityJS.map { f($0, 4) } ?? "-",
                        c.affinityTV.map { f($0, 4) } ?? "-",
                    ]
                }
            )
        )
        if let t = first.transitions {
            tables.append(
                ReportTable(
                    title:
                        "Top-1 -> top-1 transition divergence per layer pair: \(a.name) vs \(b.name) (\(nA) vs \(nB) problems)",
                    columns: [
                        "layer pair", "JS (bits)", "TV", "p (permutation)", "p adjusted (max-T)", "95% CI (bootstrap)",
                        "null mean JS", "null 95th pct.",
                    ],
                    rows: t.layers.enumerated().map { l, c in
                        [
                            "\(l)->\(l + 1)", f(c.js, 4), f(c.tv, 4), f(c.p, 4), f(c.adjustedP, 4), Self.interval(c.ci),
                            f(c.nullMean, 4), f(c.nullP95, 4),
                        ]
                    }
                )
            )
        }
        if pairs.count > 1 {
            tables.append(
                ReportTable(
                    title: "All pairs of domains",
                    columns: [
                        "a", "b", "problems", "max-layer JS (bits)", "at layer", "p at that layer",
                        "p (max over layers)",
                    ],
                    rows: pairs.map { p in
                        let (l, js) = Self.maxLayer(p)
                        return [
                            p.a.name, p.b.name, "\(p.a.slots.count) vs \(p.b.slots.count)", f(js, 4),
                            l.map { "\($0)" } ?? "-",
                            l.map { f(p.layers[$0].p, 4) } ?? "-", f(p.permutation?.maxLayerP ?? .nan, 4),
                        ]
                    }
                )
            )
        }
        if !transfer.isEmpty {
            tables.append(
                ReportTable(
                    title:
                        "Transfer: next-layer top-1 predictor fitted on one domain, scored on another (pooled over layer pairs)",
                    columns: [
                        "train", "test", "top-1 acc.", "95% CI", "within-test CV", "95% CI (CV)",
                        "most frequent (train)",
                        "most frequent (CV)", "coverage", "chance", "below baseline",
                    ],
                    rows: transfer.map { t in
                        [
                            t.train, t.test, f(t.score.accuracy, 4), Self.interval(t.intervals?.accuracy),
                            f(t.cv?.score.accuracy ?? .nan, 4), Self.interval(t.cv?.intervals?.accuracy),
                            f(t.score.baselineAccuracy, 4), f(t.cv?.score.baselineAccuracy ?? .nan, 4),
                            f(t.score.coverage, 4), f(1 / Double(E), 4),
                            [t.belowBaseline ? "yes" : "no", t.cvBelowBaseline == true ? "CV yes" : nil].compactMap {
                                $0
                            }.joined(separator: ", "),
                        ]
                    }
                )
            )
        }

        // Figures.
        var figures: [ReportFigure] = domains.map { d in
            .heatmap(
                ReportFigure.Heatmap(
                    title: "Expert usage share per layer: \(d.name) (\(d.slots.count) problems, \(d.tokens) tokens)",
                    xLabel: "expert",
                    yLabel: "layer",
                    rowLabels: (0..<layers).map { "\($0)" },
                    columnLabels: (0..<E).map { "\($0)" },
                    values: (0..<layers).map { d.usageShares(layer: $0, experts: E) }
                )
            )
        }
        let tested = first.permutation != nil
        figures.append(
            .bars(
                ReportFigure.BarChart(
                    title: "JS divergence of expert usage per layer: \(a.name) vs \(b.name) (\(nA) vs \(nB) problems; "
                        + (tested
                            ? "error bars: 95% bootstrap CI by problem; marker: permutation null's 95th percentile; highlighted: p < 0.05 adjusted over \(layers) layers)"
                            : "not tested)"),
                    xLabel: "layer",
                    yLabel: "JS divergence (bits)",
                    labels: (0..<layers).map { "\($0)" },
                    values: first.layers.map { $0.js.isFinite ? $0.js : 0 },
                    highlighted: first.layers.map { $0.adjustedP.isFinite && $0.adjustedP < Self.alpha },
                    lower: tested ? first.layers.map(\.ci.lo) : nil,
                    upper: tested ? first.layers.map(\.ci.hi) : nil,
                    reference: tested ? first.layers.map(\.nullP95) : nil,
                    referenceLabel: tested ? "permutation null, 95th percentile" : nil
                )
            )
        )
        if let t = first.transitions {
            figures.append(
                .bars(
                    ReportFigure.BarChart(
                        title:
                            "JS divergence of top-1 -> top-1 transitions per layer pair l -> l+1: \(a.name) vs \(b.name) (\(nA) vs \(nB) problems; "
                            + "error bars: 95% bootstrap CI by problem; marker: permutation null's 95th percentile; highlighted: p < 0.05 adjusted over \(layers - 1) layer pairs)",
                        xLabel: "layer pair (source layer l)",
                        yLabel: "JS divergence (bits)",
                        labels: (0..<(layers - 1)).map { "\($0)" },
                        values: t.layers.map { $0.js.isFinite ? $0.js : 0 },
                        highlighted: t.layers.map { $0.adjustedP.isFinite && $0.adjustedP < Self.alpha },
                        lower: t.layers.map(\.ci.lo),
                        upper: t.layers.map(\.ci.hi),
                        reference: t.layers.map(\.nullP95),
                        referenceLabel: "permutation null, 95th percentile"
                    )
                )
            )
        }
        if !transfer.isEmpty {
            var labels: [String] = []
            var values: [Double] = []
            var lower: [Double] = []
            var upper: [Double] = []
            var reference: [Double] = []
            var below: [Bool] = []
            for t in transfer {
                labels.append("\(t.train) -> \(t.test)")
                values.append(t.score.accuracy)
                lower.append(t.intervals?.accuracy.lo ?? .nan)
                upper.append(t.intervals?.accuracy.hi ?? .nan)
                reference.append(t.score.baselineAccuracy)
                below.append(t.belowBaseline)
            }
            var seenCV = Set<String>()
            for t in transfer where !seenCV.contains(t.test) {
                seenCV.insert(t.test)
                guard let cv = t.cv else { continue }
                labels.append("within \(t.test) (CV)")
                values.append(cv.score.accuracy)
                lower.append(cv.intervals?.accuracy.lo ?? .nan)
                upper.append(cv.intervals?.accuracy.hi ?? .nan)
                reference.append(cv.score.baselineAccuracy)
                below.append(t.cvBelowBaseline == true)
            }
            figures.append(
                .bars(
                    ReportFigure.BarChart(
                        title:
                            "Next-layer top-1 accuracy: fitted on one domain and scored on another, and cross-validated within each (error bars: 95% bootstrap CI over test problems; marker: most-frequent baseline; highlighted: below its baseline; chance \(f(1 / Double(E), 4)))",
                        xLabel: "predictor",
                        yLabel: "top-1 accuracy",
                        labels: labels,
                        values: values,
                        highlighted: below,
                        lower: problemPairsEnabled ? lower : nil,
                        upper: problemPairsEnabled ? upper : nil,
                        reference: reference,
                        referenceLabel: "most-frequent baseline"
                    )
                )
            )
        }

        // Headlines and notes.
        var headlines: [AnalyzerReport.Headline] = []
        var notes: [String] = []
        let (maxL, maxJS) = Self.maxLayer(first)
        if let l = maxL {
            let c = first.layers[l]
            headlines.append(
                .init(
                    label: "max per-layer usage JS, \(a.name) vs \(b.name) (layer \(l))",
                    value: "\(f(maxJS, 4)) bits, p = \(f(c.p, 4)) (\(nA) vs \(nB) problems)",
                    reference:
                        "null mean \(f(c.nullMean, 4)) bits; p over max of layers \(f(first.permutation?.maxLayerP ?? .nan, 4))"
                )
            )
        }
        let finiteJS = first.layers.map(\.js).filter(\.isFinite)
        let finiteNull = first.layers.map(\.nullMean).filter(\.isFinite)
        if !finiteJS.isEmpty {
            headlines.append(
                .init(
                    label: "mean per-layer usage JS, \(a.name) vs \(b.name)",
                    value: "\(f(finiteJS.reduce(0, +) / Double(finiteJS.count), 4)) bits",
                    reference: finiteNull.isEmpty
                        ? "no null" : "null mean \(f(finiteNull.reduce(0, +) / Double(finiteNull.count), 4)) bits"
                )
            )
        }
        if let p = first.permutation {
            headlines.append(
                significanceHeadline(
                    label:
                        "usage differs, \(a.name) vs \(b.name) (p adjusted over \(Self.counted(layers, "layer", "layers")))",
                    unit: ("layer", "layers"),
                    permutation: p,
                    nA: nA,
                    nB: nB
                )
            )
        }
        if let t = first.transitions {
            var best: Int?
            for (l, c) in t.layers.enumerated() where c.js.isFinite {
                if best == nil || c.js > t.layers[best ?? 0].js { best = l }
            }
            if let l = best {
                let c = t.layers[l]
                headlines.append(
                    .init(
                        label: "max per-layer-pair top-1 transition JS, \(a.name) vs \(b.name) (\(l)->\(l + 1))",
                        value: "\(f(c.js, 4)) bits, p = \(f(c.p, 4)), adjusted \(f(c.adjustedP, 4))",
                        reference:
                            "null mean \(f(c.nullMean, 4)) bits, 95th percentile \(f(c.nullP95, 4)); 95% CI \(Self.interval(c.ci))"
                    )
                )
            }
            headlines.append(
                significanceHeadline(
                    label:
                        "top-1 transitions differ, \(a.name) vs \(b.name) (p adjusted over \(Self.counted(layers - 1, "layer pair", "layer pairs")))",
                    unit: ("layer pair", "layer pairs"),
                    permutation: t.permutation,
                    nA: nA,
                    nB: nB
                )
            )
        }
        for t in transfer where (t.train == a.name && t.test == b.name) || (t.train == b.name && t.test == a.name) {
            headlines.append(
                .init(
                    label: "next-layer top-1 accuracy, fitted on \(t.train), tested on \(t.test)",
                    value: f(t.score.accuracy, 4),
                    reference:
                        "95% CI \(Self.interval(t.intervals?.accuracy)); within-\(t.test) CV \(f(t.cv?.score.accuracy ?? .nan, 4)) \(Self.interval(t.cv?.intervals?.accuracy)); most frequent \(f(t.score.baselineAccuracy, 4)); chance \(f(1 / Double(E), 4))"
                )
            )
        }
        // Every predictor that does worse than its baseline is flagged in the summary.
        for t in transfer where t.belowBaseline {
            headlines.append(
                .init(
                    label: "BELOW BASELINE: next-layer predictor fitted on \(t.train), tested on \(t.test)",
                    value: "\(f(t.score.accuracy, 4)) < \(f(t.score.baselineAccuracy, 4))",
                    reference:
                        "most frequent top-1 of the training split; accuracy minus baseline 95% CI \(Self.interval(t.intervals?.difference))"
                )
            )
        }
        var flaggedCV = Set<String>()
        for t in transfer where t.cvBelowBaseline == true && !flaggedCV.contains(t.test) {
            flaggedCV.insert(t.test)
            guard let cv = t.cv else { continue }
            headlines.append(
                .init(
                    label: "BELOW BASELINE: next-layer predictor cross-validated within \(t.test)",
                    value: "\(f(cv.score.accuracy, 4)) < \(f(cv.score.baselineAccuracy, 4))",
                    reference:
                        "most frequent top-1 of each training fold; accuracy minus baseline 95% CI \(Self.interval(cv.intervals?.difference))"
                )
            )
        }

        notes.append(
            "Headline pair: the first two domains in sorted name order (\(a.name), \(b.name)); every pair is under \"pairs\" in the JSON."
        )
        if let p = first.permutation {
            var s =
                "Permutation test: domain labels permuted across whole problems (\(a.name): \(nA), \(b.name): \(nB) problems), "
            if p.method == "exact" {
                s +=
                    "all C(\(nA + nB), \(nA)) = \(p.relabelings) relabelings enumerated (the observed one included); p = share with JS >= observed."
            } else {
                s +=
                    "\(p.relabelings) relabelings sampled (SplitMix64, derived from seed \(seed)); p = (1 + count with JS >= observed) / (1 + \(p.relabelings))."
            }
            if let (num, den) = p.minimumFraction {
                s += " Smallest attainable p-value: \(num)/\(den) = \(f(p.minimumP, 4))"
                s +=
                    nA == nB
                    ? " (a relabeling and its mirror give the same JS when both sides have equal problem counts)." : "."
            } else {
                s += " Smallest attainable p-value: 1/\(p.relabelings + 1) = \(f(p.minimumP, 6))."
            }
            if p.minimumP >= 0.05 {
                s += " With so few problems no layer can reach p < 0.05."
            }
            notes.append(s)
        }
        notes.append(
            "Per-layer p-values (p_value) are not corrected for testing \(layers) layers. p_value_adjusted is (single-step max-T, Westfall-Young: the share of relabelings whose maximum over layers reaches the layer's JS; it controls the family-wise error rate), and \"significant\" and the highlighted bars use it at alpha = 0.05; the p-value of the maximum over layers (max_layer_p_value) is the smallest adjusted p. The chart's marker is each layer's own null 95th percentile (uncorrected). Token-level tests are not used: tokens of one problem are not independent."
        )
        notes.append(
            "Plug-in JS divergence is biased upward in small samples: compare it with the null mean (its average over relabelings). Bootstrap intervals (\(first.bootstrapResamples) resamples of problems within each domain, percentile) carry the same bias."
        )
        let fewest = domains.map(\.slots.count).min() ?? 0
        if fewest < 10 {
            notes.append(
                "A domain has only \(fewest) problem\(fewest == 1 ? "" : "s"): a bootstrap over so few problems has few distinct resamples (3 for two problems), so its intervals understate the uncertainty; read them with the problem counts."
            )
        }
        if let t = first.transitions {
            let perm = t.permutation
            var s =
                "Transition test: per layer pair l->l+1, JS divergence (bits) between the two domains' joint distributions of (top1_l, top1_{l+1}) over tokens with both layers present (flattened E x E counts, normalised to sum 1); domain labels permuted across whole problems, "
            s +=
                perm.method == "exact"
                ? "all \(perm.relabelings) relabelings enumerated"
                : "\(perm.relabelings) relabelings sampled (at most \(Self.transitionRelabelingLimit))"
            s +=
                ", smallest attainable p \(f(perm.minimumP, 4)); bootstrap \(t.resamples) resamples of problems within each domain; p adjusted over \(layers - 1) layer pairs by max-T."
            notes.append(s)
        } else if transitionsEnabled && !problemPairsEnabled {
            notes.append(
                "Transition domain test and transfer intervals skipped: a problem would keep (L-1) E^2 = \(pairCells) cells, above \(Self.maximumProblemTransitionCells). The affinity divergences and the transfer accuracies (pooled over each domain's problems) are still reported, without permutation p-values or intervals."
            )
        }
        if problemPairsEnabled && !transfer.isEmpty {
            notes.append(
                "Transfer intervals: \(resamples) bootstrap resamples of the test domain's problems (percentile 95%); accuracy pools the resampled problems' layer pairs. A predictor whose accuracy is below its most-frequent baseline is flagged BELOW BASELINE in the summary."
            )
        }
        if transitionsEnabled {
            notes.append(
                "Affinity l->l+1: the joint distribution of (i in S_l, j in S_{l+1}) over the k x k id pairs of every token with both layers present, normalised to sum 1; expert ids are local to a layer."
            )
            notes.append(
                "Transfer: predictor = argmax of the top-1 -> top-1 counts of layer l -> l+1 (ties to the lowest id; unseen rows fall back to the training split's most frequent top-1 of layer l+1). Within-test CV splits by problem: leave-one-problem-out below \(Self.crossValidationFolds) problems, otherwise \(Self.crossValidationFolds) folds with fold = (problem id + fnv1a(domain)) mod \(Self.crossValidationFolds) (consecutive ids go round-robin). Top-1 accuracy: the prediction equals top1_{l+1}."
            )
        } else {
            notes.append(
                "Affinity and transfer skipped: \(layers == 1 ? "a single layer has no layer pairs" : "(L-1) E^2 = \((layers - 1) * experts * experts) exceeds \(Self.maximumTransitionCells) cells (each domain would keep six such tables); the usage divergences, their p-values and intervals cover every layer")."
            )
        }
        let incomplete = domains.reduce(0) { $0 + $1.incomplete }
        if incomplete > 0 {
            notes.append(
                "\(incomplete) tokens lack some layers; usage counts the layers present and cross-layer counts use only the layer pairs present."
            )
        }
        if pairs.count > Self.maximumTestedPairs {
            notes.append(
                "Significance is computed for the first \(Self.maximumTestedPairs) pairs in sorted order only; the others show divergences without p-values."
            )
        }

        return AnalyzerReport(
            analyzer: name,
            title: "Domain comparison",
            json: json,
            tables: tables,
            figures: figures,
            headlines: headlines,
            notes: notes
        )
    }

    /// "1 layer", "32 layers".
    static func counted(_ n: Int, _ one: String, _ many: String) -> String { n == 1 ? "1 \(one)" : "\(n) \(many)" }

    /// "significant at layers 3, 8" or "not significant", against the smallest attainable p.
    private func significanceHeadline(
        label: String,
        unit: (one: String, many: String),
        permutation p: DomainSignificance.Permutation,
        nA: Int,
        nB: Int
    ) -> AnalyzerReport.Headline {
        let f = DomainStatistics.fixed
        let hits = Self.significantIndices(p.adjustedP)
        let value: String
        if hits.count == 1 {
            value = "significant at \(unit.one) \(hits[0]); p = \(f(p.maxLayerP, 4))"
        } else if !hits.isEmpty {
            let shown = hits.prefix(8).map(String.init).joined(separator: ", ") + (hits.count > 8 ? ", ..." : "")
            value = "significant at \(hits.count) \(unit.many) (\(shown)); p = \(f(p.maxLayerP, 4))"
        } else if p.maxLayerP.isFinite {
            value = "not significant (p = \(f(p.maxLayerP, 4)) for the maximum)"
        } else {
            value = "not tested"
        }
        var reference =
            "alpha \(f(Self.alpha, 2)); smallest attainable p \(f(p.minimumP, 4)) with \(nA) vs \(nB) problems"
        if p.minimumP >= Self.alpha { reference += ": too few problems to reach alpha" }
        return .init(label: label, value: value, reference: reference)
    }

    /// The layer with the largest finite usage JS of a pair, and that JS.
    static func maxLayer(_ p: PairComparison) -> (Int?, Double) {
        var best: Int?
        for (l, c) in p.layers.enumerated() where c.js.isFinite {
            if best == nil || c.js > p.layers[best ?? 0].js { best = l }
        }
        return (best, best.map { p.layers[$0].js } ?? .nan)
    }
}
