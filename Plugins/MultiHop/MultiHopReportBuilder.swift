// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting

/// Turns the multihop analyzer's counts into its report. Every figure is a function of the
/// integer counts only (hash tables are read in sorted order), so merged and single-pass runs
/// give the same bytes.
struct MultiHopReportBuilder {
    let shape: ModelShape
    let seed: UInt64
    let folds: ProblemFolds
    let maxOrder: Int
    let effectiveMaxOrder: Int
    let nullReplicates: Int
    let tokens: Int
    let records: Int
    let completeTokens: Int
    let problems: ProblemSet
    /// Per pair: pairs, overlap-size sum, any overlap, equal sets.
    let pairStats: [Int]
    /// `[P][F][E][2E]`: top-1 of the later layer (first E), other members (next E).
    let pairCounts: CounterBuffer
    /// Per pair, its slot in ``pairCounts`` (-1: summarised from the sample).
    let pairSlot: [Int32]
    /// Per summarised pair, tokens with the same top-1 at both layers.
    let pairTop1Same: [Int]
    /// The pairs kept in full, and those wanted in full that did not fit the budget.
    let detailed: [LayerPair]
    let droppedDetail: [LayerPair]
    /// The finalized token sample.
    let sample: TokenSample
    let layerTop1: [Int]
    let pathCounts: CounterBuffer
    let orderOffset: [Int]
    let windows: [WindowCounts]
    let bitsPerID: Int
    let distinctFullPaths: Int
    let fullPathEntropy: Double
    /// Whether the full-path table overflowed (distinct count estimated, entropy not computed).
    let fullPathsOverflowed: Bool
    let fullPathCapacity: Int

    /// Whether some pairs are summarised (then the summary keys are reported).
    var summarised: Bool { detailed.count < pairSlot.count }

    static let title = "Multi-hop routing: layer l -> l+d and path prediction"
    /// How the token sample behind the summarised figures is drawn.
    static let sampleMethod =
        "bottom-N: the N tokens with the smallest hash of (domain, problem id, position, phase); exact when the stream has at most N tokens"
    /// Why a distance has no d-hop prediction when none of its pairs is kept in full.
    static let noDetailedPair =
        "no layer pair at this distance is kept in full; ask for one with detailPairs (CLI: --pairs l:j)"
    /// Window lengths the JSON always lists (those longer than the model are not computed).
    static let windowLengthsReported = MultiHopAnalyzer.windowLengths

    /// Whether a predictor's top-1 accuracy is below its baseline's.
    static func isBelow(_ model: PredictionTally, _ baseline: PredictionTally) -> Bool {
        guard let m = model.top1Accuracy, let b = baseline.top1Accuracy else { return false }
        return m < b
    }

    /// Window counts handed over by the analyzer.
    struct WindowCounts {
        var length: Int
        /// Dense codes are base-E numbers, sparse ones packed `bitsPerID` bits per id; both put
        /// the first layer in the most significant place.
        var dense: Bool
        var entries: [(code: UInt64, count: Int)]
        /// Windows counted per starting layer.
        var starts: [Int]
        /// Set when the counts come from the token sample (the exact dictionary overflowed).
        var sampledTokens: Int? = nil
    }

    static func emptyReport(name: String) -> AnalyzerReport {
        AnalyzerReport(
            analyzer: name,
            title: title,
            json: .object([
                .init("distances", .array([])), .init("chance", .null), .init("per_layer", .null),
                .init("mutual_information_matrix", .array([])), .init("path_predictor", .null), .init("paths", .null),
                .init("shape", .null), .init("tokens", .int(0)),
                .init(Insufficient.key, .string("the stream was empty: no blocks were consumed")),
            ]),
            notes: ["the stream was empty: no blocks were consumed"]
        )
    }

    /// Everything measured for one layer pair (l, j).
    struct PairResult {
        var l: Int, j: Int
        var pairs = 0, top1Same = 0, overlapSum = 0, anyOverlap = 0, setSame = 0
        var mi = 0.0
        var null = ContingencyTable.NullDistribution(mean: 0, standardDeviation: 0, replicates: 0)
        var cv: CountTablePredictor.CrossValidation?
        /// Folds whose tokens have both layers.
        var foldsWithPairs = 0
        /// Figures from the token sample: MI (for a summarised pair) and the affinity mass.
        var sampled: SampledPairFigures?
        /// Whether the pair's full tables are kept (its MI is exact, its prediction computed).
        var detailed = true
        /// The information figures, nil without pairs.
        var hasPairs: Bool { pairs > 0 && (detailed || (sampled?.tokens ?? 0) > 0) }
    }

    /// Everything measured for layer pair (l, j), the `index`-th pair in (l, j) order.
    private func pairResult(_ l: Int, _ j: Int, index p: Int, scratch: inout SampledPairFigures.Scratch) -> PairResult {
        let E = shape.experts
        let k = shape.topK
        let F = folds.count
        let ee = E * E
        var r = PairResult(l: l, j: j)
        r.pairs = pairStats[p * 4]
        r.overlapSum = pairStats[p * 4 + 1]
        r.anyOverlap = pairStats[p * 4 + 2]
        r.setSame = pairStats[p * 4 + 3]
        if summarised {
            r.sampled = SampledPairFigures.compute(
                sample,
                l: l,
                j: j,
                experts: E,
                replicates: nullReplicates,
                seed: SeededRandom(seed: seed, stream: UInt64(p + 1) | (1 << 40)).seedValue,
                scratch: &scratch
            )
        }
        let slot = Int(pairSlot[p])
        if slot < 0 {
            r.detailed = false
            r.top1Same = pairTop1Same[p]
            if let f = r.sampled {
                r.mi = f.mi
                r.null = f.null
            }
            return r
        }
        var foldTables: [ContingencyTable] = []
        var foldMembers: [ContingencyTable] = []
        var table = ContingencyTable(rows: E, columns: E)
        for f in 0..<F {
            let base = (slot * F + f) * 2 * ee
            var t = ContingencyTable(rows: E, columns: E)
            var m = ContingencyTable(rows: E, columns: E)
            for a in 0..<E {
                for b in 0..<E {
                    let top = pairCounts[base + a * 2 * E + b]
                    t[a, b] = top
                    m[a, b] = top + pairCounts[base + a * 2 * E + E + b]
                }
            }
            foldTables.append(t)
            foldMembers.append(m)
            table.add(t)
        }
        for a in 0..<E { r.top1Same += table[a, a] }
        r.mi = table.mutualInformationBits
        r.null = table.shuffledNull(
            replicates: nullReplicates,
            seed: SeededRandom(seed: seed, stream: UInt64(p + 1)).seedValue
        )
        r.cv = CountTablePredictor.crossValidate(top1: foldTables, membership: foldMembers, topK: k)
        r.foldsWithPairs = foldTables.filter { $0.total > 0 }.count
        return r
    }

    func build() -> AnalyzerReport {
        let L = shape.layers
        let E = shape.experts
        let k = shape.topK
        let F = folds.count
        let chance = ChanceRates(experts: E, topK: k)

        // MARK: Pairs
        // Each pair's figures are independent (seeded per pair): computed in chunks of pairs on
        // idle cores too, each chunk with its own scratch.
        var pairList: [(l: Int, j: Int)] = []
        for l in 0..<L {
            for j in (l + 1)..<max(l + 1, L) { pairList.append((l, j)) }
        }
        var slots = [PairResult?](repeating: nil, count: pairList.count)
        let chunk = max(1, (pairList.count + 63) / 64)
        slots.withUnsafeMutableBufferPointer { buffer in
            let out = ParallelLoop.Slots(buffer)
            ParallelLoop.forEach(count: (pairList.count + chunk - 1) / chunk) { c in
                var scratch = SampledPairFigures.Scratch(experts: summarised ? E : 0)
                for p in (c * chunk)..<min(pairList.count, (c + 1) * chunk) {
                    out[p] = pairResult(pairList[p].l, pairList[p].j, index: p, scratch: &scratch)
                }
            }
        }
        var pairs: [[PairResult?]] = Array(repeating: Array(repeating: nil, count: L), count: L)
        for (p, pair) in pairList.enumerated() { pairs[pair.l][pair.j] = slots[p] }
        func share(_ x: Int, _ n: Int) -> Double? { n > 0 ? Double(x) / Double(n) : nil }

        // MARK: Distances
        struct DistanceResult {
            var d: Int
            var pairs = 0, top1Same = 0, overlapSum = 0, anyOverlap = 0, setSame = 0
            var miWeighted = 0.0, nullWeighted = 0.0
            var model = PredictionTally(), baseline = PredictionTally()
            var modelByFold: FoldTallies, baselineByFold: FoldTallies
            var anyCV = false
            /// Layer pairs at this distance with a table (some tokens present at both layers).
            var foldsWithPairs = 0
            /// Pairs behind the MI mean (weights), and layer pairs kept in full / summarised.
            var miPairs = 0, detailedPairs = 0, sampledPairs = 0
            var mi: Double? { miPairs > 0 ? miWeighted / Double(miPairs) : nil }
            var null: Double? { miPairs > 0 ? nullWeighted / Double(miPairs) : nil }
        }
        var distances: [DistanceResult] = []
        for d in 1..<max(1, L) {
            var r = DistanceResult(d: d, modelByFold: FoldTallies(folds: F), baselineByFold: FoldTallies(folds: F))
            for l in 0..<(L - d) {
                guard let pr = pairs[l][l + d] else { continue }
                r.pairs += pr.pairs
                r.top1Same += pr.top1Same
                r.overlapSum += pr.overlapSum
                r.anyOverlap += pr.anyOverlap
                r.setSame += pr.setSame
                if pr.detailed || (pr.sampled?.tokens ?? 0) > 0 {
                    r.miWeighted += pr.mi * Double(pr.pairs)
                    r.nullWeighted += pr.null.mean * Double(pr.pairs)
                    r.miPairs += pr.pairs
                }
                if pr.detailed { r.detailedPairs += 1 } else { r.sampledPairs += 1 }
                r.foldsWithPairs = max(r.foldsWithPairs, pr.foldsWithPairs)
                if let cv = pr.cv {
                    r.anyCV = true
                    r.model += cv.model
                    r.baseline += cv.baseline
                    r.modelByFold += cv.modelByFold
                    r.baselineByFold += cv.baselineByFold
                }
            }
            distances.append(r)
        }
        // Entropy of each layer's top-1, nil for a layer without rows.
        let entropies: [Double?] = (0..<L).map { l in
            let row = Array(layerTop1[(l * E)..<((l + 1) * E)])
            return row.reduce(0, +) > 0 ? InformationTheory.entropyBits(row) : nil
        }

        // MARK: Path predictor and windows
        let path = PathPredictorEvaluation(
            layers: L,
            experts: E,
            folds: F,
            order: effectiveMaxOrder,
            counts: pathCounts,
            orderOffset: orderOffset
        ).run()
        let windowResults = windows.map { topWindows($0) }
        let foldsWithProblems = problems.nonEmptyFolds(of: folds)
        func predictionReason(pairs: Int, foldsWithPairs: Int, detailedPairs: Int = 1) -> String {
            if detailedPairs == 0 { return Self.noDetailedPair }
            return pairs == 0
                ? Insufficient.noPairs : Insufficient.folds(problems: problems.count, filled: foldsWithPairs)
        }
        // What cannot be computed for this depth.
        var insufficient: [ReportValue.Member] = []
        if L < 2 {
            insufficient.append(.init("distances", .string(Insufficient.layers(2))))
            insufficient.append(.init("path_predictor", .string(Insufficient.layers(2))))
        }
        if L < 3 { insufficient.append(.init("distances_2_and_more", .string(Insufficient.layers(3)))) }
        for w in Self.windowLengthsReported where w > L {
            insufficient.append(.init("windows_\(w)", .string(Insufficient.layers(w))))
        }
        let pathReason: String?
        if path.total.predictions > 0 {
            pathReason = nil
        } else if L < 2 {
            pathReason = Insufficient.layers(2)
        } else if path.byTarget.allSatisfy({ $0.tokensAtTarget == 0 }) {
            pathReason = "no token has a routing decision at any layer after the first"
        } else {
            pathReason = Insufficient.folds(
                problems: problems.count,
                filled: path.byTarget.map(\.foldsAtTarget).max() ?? 0
            )
        }

        // MARK: JSON
        let randomJSON = ReportFormat.randomPrediction(chance)
        func distancePredictionJSON(_ r: DistanceResult) -> ReportValue {
            var baseline = (r.anyCV ? r.baseline : PredictionTally()).json(topK: k).objectMembers ?? []
            baseline.append(
                .init("interval", r.anyCV ? r.baselineByFold.intervalJSON(topK: k, problems: problems.count) : .null)
            )
            var m: [ReportValue.Member] = [
                .init("top1_accuracy", .number(r.anyCV ? r.model.top1Accuracy : nil)),
                .init("top2_accuracy", .number(r.anyCV ? r.model.top2Accuracy : nil)),
                .init("set_recall", .number(r.anyCV ? r.model.setRecall(topK: k) : nil)),
                .init("coverage", .number(r.anyCV ? r.model.coverage : nil)),
                .init("interval", r.anyCV ? r.modelByFold.intervalJSON(topK: k, problems: problems.count) : .null),
                .init("baseline_most_frequent", .object(baseline)),
                .init("random", randomJSON),
                .init("below_baseline", r.anyCV ? .bool(Self.isBelow(r.model, r.baseline)) : .null),
            ]
            if !r.anyCV {
                m.append(
                    .init(
                        Insufficient.key,
                        .string(
                            predictionReason(
                                pairs: r.pairs,
                                foldsWithPairs: r.foldsWithPairs,
                                detailedPairs: r.detailedPairs
                            )
                        )
                    )
                )
            }
            return .object(m)
        }
        let distancesJSON: [ReportValue] = distances.map { r in
            let mi = r.mi
            let null = r.null
            var members: [ReportValue.Member] = [
                .init("distance", .int(r.d)),
                .init("pairs", .int(r.pairs)),
                .init("skipped_pairs", .int(tokens * (L - r.d) - r.pairs)),
                .init("top1_same", .number(share(r.top1Same, r.pairs))),
                .init("overlap_fraction", .number(share(r.overlapSum, r.pairs * k))),
                .init("any_overlap", .number(share(r.anyOverlap, r.pairs))),
                .init("set_same", .number(share(r.setSame, r.pairs))),
                .init("mutual_information_bits", .number(mi)),
                .init("mutual_information_null_bits", .number(null)),
                .init("mutual_information_excess_bits", .number(mi.flatMap { m in null.map { m - $0 } })),
                .init("prediction", distancePredictionJSON(r)),
            ]
            if summarised {
                members.append(.init("detailed_pairs", .int(r.detailedPairs)))
                members.append(.init("sampled_pairs", .int(r.sampledPairs)))
            }
            return .object(members)
        }
        func pairMatrix(_ value: (PairResult) -> ReportValue) -> ReportValue {
            .array((0..<L).map { i in .array((0..<L).map { j in pairs[i][j].map(value) ?? .null }) })
        }
        var perLayerMembers: [ReportValue.Member] = [
            .init("pairs", pairMatrix { .int($0.pairs) }),
            .init("top1_same", pairMatrix { .number(share($0.top1Same, $0.pairs)) }),
            .init("overlap_fraction", pairMatrix { .number(share($0.overlapSum, $0.pairs * k)) }),
            .init("any_overlap", pairMatrix { .number(share($0.anyOverlap, $0.pairs)) }),
            .init("set_same", pairMatrix { .number(share($0.setSame, $0.pairs)) }),
            .init("mutual_information_bits", pairMatrix { .number($0.hasPairs ? $0.mi : nil) }),
            .init("mutual_information_null_bits", pairMatrix { .number($0.hasPairs ? $0.null.mean : nil) }),
            .init(
                "mutual_information_null_method",
                pairMatrix { $0.hasPairs ? .string($0.null.method.rawValue) : .null }
            ),
            .init("top1_accuracy", pairMatrix { .number($0.cv?.model.top1Accuracy) }),
            .init("top1_accuracy_low", pairMatrix { .number($0.cv?.modelByFold.range { $0.top1Accuracy }?.low) }),
            .init("top1_accuracy_high", pairMatrix { .number($0.cv?.modelByFold.range { $0.top1Accuracy }?.high) }),
            .init("baseline_top1_accuracy", pairMatrix { .number($0.cv?.baseline.top1Accuracy) }),
        ]
        if summarised {
            perLayerMembers += [
                .init("detailed", pairMatrix { .bool($0.detailed) }),
                .init("sampled_tokens", pairMatrix { $0.detailed ? .null : .int($0.sampled?.tokens ?? 0) }),
                .init(
                    "mutual_information_null_sd_bits",
                    pairMatrix { .number($0.hasPairs ? $0.null.standardDeviation : nil) }
                ),
                .init(
                    "mutual_information_excess_bits",
                    pairMatrix { .number($0.hasPairs ? $0.mi - $0.null.mean : nil) }
                ),
                .init("affinity_top_m_mass", pairMatrix { .number($0.sampled?.affinityMass) }),
                .init("affinity_top_m_mass_permuted", pairMatrix { .number($0.sampled?.affinityMassPermuted) }),
            ]
        }
        let perLayer = ReportValue.object(perLayerMembers)
        // NaN: no data (a layer without rows, a pair of layers no token has both of).
        let miMatrix: [[Double]] = (0..<L).map { i in
            (0..<L).map { j in
                if i == j { return entropies[i] ?? .nan }
                let a = min(i, j)
                let b = max(i, j)
                guard let pr = pairs[a][b], pr.hasPairs else { return .nan }
                return pr.mi
            }
        }
        // The heatmap masks the diagonal (each layer's entropy, which would set the colour
        // scale and wash out every other cell): the off-diagonal cells scale on their own.
        // With summarised pairs, sampled and full-count MI carry different small-sample biases:
        // the figure shows the excess over each pair's own null instead.
        let miFigure: [[Double]] = miMatrix.enumerated().map { i, row in
            row.enumerated().map { j, x in
                if i == j { return .nan }
                guard summarised else { return x }
                guard let pr = pairs[min(i, j)][max(i, j)], pr.hasPairs else { return .nan }
                return pr.mi - pr.null.mean
            }
        }
        let fullPathOverflowJSON: [ReportValue.Member] =
            fullPathsOverflowed
            ? [
                .init("distinct_full_paths_estimated", .bool(true)),
                .init(
                    "distinct_full_paths_relative_error",
                    .number(1 / Double(FullPathTable.sketchSize - 2).squareRoot())
                ),
                .init("exact_capacity", .int(fullPathCapacity)),
            ] : []
        var jsonMembers: [ReportValue.Member] = [
            .init("distances", .array(distancesJSON)),
            .init("chance", ReportFormat.chance(chance)),
            .init("per_layer", perLayer),
            .init("mutual_information_matrix", .matrix(miMatrix)),
            .init(
                "path_predictor",
                path.json(maxOrder: maxOrder, chance: chance, problems: problems.count, insufficient: pathReason)
            ),
            .init(
                "paths",
                .object(
                    [
                        .init(
                            "windows",
                            .array(
                                windowResults.map { $0.json }
                                    + Self.windowLengthsReported.filter { $0 > L }.map { w in
                                        .object([
                                            .init("length", .int(w)), .init("windows", .null), .init("distinct", .null),
                                            .init("top", .null),
                                            .init(Insufficient.key, .string(Insufficient.layers(w))),
                                        ])
                                    }
                            )
                        ),
                        .init("distinct_full_paths", .int(distinctFullPaths)),
                        .init(
                            "full_path_entropy_bits",
                            .number(completeTokens > 0 && !fullPathsOverflowed ? fullPathEntropy : nil)
                        ),
                        .init(
                            "full_path_entropy_max_bits",
                            .number(completeTokens > 0 ? log2(Double(completeTokens)) : nil)
                        ),
                        .init("complete_tokens", .int(completeTokens)),
                    ] + fullPathOverflowJSON
                )
            ),
            .init("shape", ReportFormat.shape(shape)),
            .init("tokens", .int(tokens)),
            .init("records", .int(records)),
            .init("problems", .int(problems.count)),
            .init("folds", .int(F)),
            .init("null_replicates", .int(nullReplicates)),
            .init("seed", .integer(seed)),
        ]
        if summarised {
            jsonMembers.append(
                .init(
                    "detail",
                    .object([
                        .init("pairs", .array(detailed.map { .array([.int($0.earlier), .int($0.later)]) })),
                        .init("not_kept", .array(droppedDetail.map { .array([.int($0.earlier), .int($0.later)]) })),
                        .init("summarised_pairs", .int(pairSlot.count - detailed.count)),
                        .init(
                            "sample",
                            .object([
                                .init("method", .string(Self.sampleMethod)),
                                .init("capacity", .int(sample.capacity)),
                                .init("tokens", .int(sample.count)),
                                .init("exact", .bool(sample.count == tokens)),
                            ])
                        ),
                        .init("affinity_top_m", .int(k)),
                    ])
                )
            )
        }
        if !insufficient.isEmpty { jsonMembers.append(.init(Insufficient.key, .object(insufficient))) }
        let json = ReportValue.object(jsonMembers)

        // MARK: Tables
        let fx = { (x: Double?) in ReportFormat.fixed(x, 3) }
        let fx4 = { (x: Double?) in ReportFormat.fixed(x, 4) }
        var tables: [ReportTable] = []
        if L >= 2 {
            var distanceRows: [[String]] = distances.map { r in
                let mi = r.mi
                let null = r.null
                let prediction: [String] =
                    r.anyCV
                    ? [
                        fx(r.model.top1Accuracy) + (Self.isBelow(r.model, r.baseline) ? " (below baseline)" : ""),
                        r.modelByFold.rangeText { $0.top1Accuracy }, fx(r.model.top2Accuracy),
                        fx(r.model.setRecall(topK: k)),
                        fx(r.baseline.top1Accuracy),
                    ]
                    : [
                        Insufficient.cell(
                            predictionReason(
                                pairs: r.pairs,
                                foldsWithPairs: r.foldsWithPairs,
                                detailedPairs: r.detailedPairs
                            )
                        ), "", "",
                        "", "",
                    ]
                return [
                    "\(r.d)", "\(r.pairs)", fx(share(r.top1Same, r.pairs)), fx(share(r.overlapSum, r.pairs * k)),
                    fx(share(r.anyOverlap, r.pairs)), fx4(share(r.setSame, r.pairs)), fx4(mi), fx4(null),
                ] + prediction
            }
            distanceRows.append([
                "chance", "", fx(chance.top1Same), fx(chance.overlapFraction), fx(chance.anyOverlap),
                fx4(chance.setSame), "", "",
                fx(chance.top1Accuracy), "", fx(chance.top2Accuracy), fx(chance.setRecall), "",
            ])
            tables.append(
                ReportTable(
                    title:
                        "By hop distance d (pairs (l, l+d) pooled over l; prediction of top1_l+d from top1_l, \(F) folds by problem; range: lowest-highest per-fold top-1 accuracy)",
                    columns: [
                        "d", "pairs", "top-1 same", "overlap", "any overlap", "same set", "MI bits", "MI null",
                        "top-1 acc", "range over folds", "top-2 acc", "set recall", "most-freq top-1",
                    ],
                    rows: distanceRows
                )
            )
            var pathRows: [[String]] = path.byTarget.map { t in
                guard t.total.predictions > 0 else {
                    let reason =
                        t.tokensAtTarget == 0
                        ? Insufficient.noRows(layer: t.layer)
                        : Insufficient.folds(problems: problems.count, filled: t.foldsAtTarget)
                    return ["\(t.layer)", "0", Insufficient.cell(reason), "", "", "", "", ""]
                }
                return [
                    "\(t.layer)", "\(t.total.predictions)", fx(t.total.top1Accuracy),
                    t.totalByFold.rangeText { $0.top1Accuracy },
                    fx(t.total.top2Accuracy), fx(t.total.coverage), fx(t.baseline.top1Accuracy),
                    fx(t.baseline.top2Accuracy),
                ]
            }
            if let pathReason {
                pathRows.append(["all", "0", Insufficient.cell(pathReason), "", "", "", "", ""])
            } else {
                pathRows.append([
                    "all", "\(path.total.predictions)",
                    fx(path.total.top1Accuracy) + (path.belowBaseline == true ? " (below baseline)" : ""),
                    path.totalByFold.rangeText { $0.top1Accuracy }, fx(path.total.top2Accuracy),
                    fx(path.total.coverage),
                    fx(path.baseline.top1Accuracy), fx(path.baseline.top2Accuracy),
                ])
            }
            pathRows.append(["random", "", fx(chance.top1Accuracy), "", fx(chance.top2Accuracy), "", "", ""])
            tables.append(
                ReportTable(
                    title:
                        "Path predictor P(top1_l+1 | top1_l-c+1..l), c <= \(effectiveMaxOrder), back-off to shorter contexts then the most frequent expert (\(F) folds by problem)",
                    columns: [
                        "target layer", "predictions", "top-1 acc", "range over folds", "top-2 acc", "coverage",
                        "most-freq top-1", "most-freq top-2",
                    ],
                    rows: pathRows
                )
            )
            if pathReason == nil {
                tables.append(
                    ReportTable(
                        title:
                            "Path predictor: share of predictions answered by each context order, and their top-1 accuracy",
                        columns: ["order", "share", "top-1 acc"],
                        rows: path.orderRows(maxOrder: maxOrder).map { [$0.label, fx($0.share), fx($0.accuracy)] }
                    )
                )
            }
        }
        for w in windowResults where w.total > 0 {
            tables.append(
                ReportTable(
                    title:
                        "Most frequent top-1 paths over \(w.length) consecutive layers (\(w.total) windows, \(w.distinct) distinct); expected if independent = windows x product of each layer's top-1 share",
                    columns: ["path", "count", "share", "expected if independent"],
                    rows: w.top.map {
                        [
                            $0.path.map(String.init).joined(separator: "-"), "\($0.count)", fx4($0.share),
                            ReportFormat.fixed($0.expected, 1),
                        ]
                    }
                )
            )
        }
        tables.append(
            ReportTable(
                title: "Full-depth top-1 paths (tokens with every layer present)",
                columns: ["complete tokens", "distinct paths", "entropy bits", "max possible bits (log2 tokens)"],
                rows: [
                    completeTokens > 0
                        ? [
                            "\(completeTokens)", "\(distinctFullPaths)",
                            fullPathsOverflowed ? "not computed" : fx(fullPathEntropy),
                            fx(log2(Double(completeTokens))),
                        ]
                        : ["0", "0", Insufficient.cell(Insufficient.noCompleteTokens), ""]
                ]
            )
        )

        // MARK: Figures
        let layerLabels = (0..<L).map { "\($0)" }
        let ds = distances.map { Double($0.d) }
        var figures: [ReportFigure] = []
        if L >= 2 {
            let modelBounds = distances.map { $0.anyCV ? $0.modelByFold.bounds { $0.top1Accuracy } : (.nan, .nan) }
            let baselineBounds = distances.map {
                $0.anyCV ? $0.baselineByFold.bounds { $0.top1Accuracy } : (.nan, .nan)
            }
            figures = [
                .heatmap(
                    ReportFigure.Heatmap(
                        title:
                            "Mutual information between top-1 choices of layers i and j (bits; diagonal masked: a layer with itself is its entropy; colour scale from the off-diagonal cells)",
                        xLabel: "layer j",
                        yLabel: "layer i",
                        rowLabels: layerLabels,
                        columnLabels: layerLabels,
                        values: miFigure
                    )
                ),
                .lines(
                    ReportFigure.LineChart(
                        title: "Same-id rates against hop distance, with chance",
                        xLabel: "hop distance d",
                        yLabel: "rate",
                        x: ds,
                        series: [
                            .init(name: "top-1 same", values: distances.map { share($0.top1Same, $0.pairs) ?? .nan }),
                            .init(name: "top-1 same, chance", values: ds.map { _ in chance.top1Same }, dashed: true),
                            .init(
                                name: "overlap fraction",
                                values: distances.map { share($0.overlapSum, $0.pairs * k) ?? .nan }
                            ),
                            .init(
                                name: "overlap fraction, chance",
                                values: ds.map { _ in chance.overlapFraction },
                                dashed: true
                            ),
                            .init(
                                name: "any overlap",
                                values: distances.map { share($0.anyOverlap, $0.pairs) ?? .nan }
                            ),
                            .init(name: "any overlap, chance", values: ds.map { _ in chance.anyOverlap }, dashed: true),
                        ]
                    )
                ),
                .lines(
                    ReportFigure.LineChart(
                        title:
                            "Out-of-sample top-1 accuracy predicting layer l+d from layer l (\(F) folds by problem; bands: lowest-highest fold), with baselines",
                        xLabel: "hop distance d",
                        yLabel: "top-1 accuracy",
                        x: ds,
                        series: [
                            .init(
                                name: "d-hop top-1 table",
                                values: distances.map { $0.anyCV ? ($0.model.top1Accuracy ?? .nan) : .nan },
                                lower: modelBounds.map(\.lower),
                                upper: modelBounds.map(\.upper)
                            ),
                            .init(
                                name: "most frequent (train)",
                                values: distances.map { $0.anyCV ? ($0.baseline.top1Accuracy ?? .nan) : .nan },
                                dashed: true,
                                lower: baselineBounds.map(\.lower),
                                upper: baselineBounds.map(\.upper)
                            ),
                            .init(name: "random 1/E", values: ds.map { _ in chance.top1Accuracy }, dashed: true),
                        ]
                    )
                ),
                .lines(
                    ReportFigure.LineChart(
                        title: "Mutual information against hop distance, with the shuffled null",
                        xLabel: "hop distance d",
                        yLabel: "bits",
                        x: ds,
                        series: [
                            .init(
                                name: "MI (mean over l)",
                                values: distances.map { $0.mi ?? .nan }
                            ),
                            .init(
                                name: "shuffled null",
                                values: distances.map { $0.null ?? .nan },
                                dashed: true
                            ),
                        ]
                    )
                ),
            ]
            if pathReason == nil {
                let targets = path.byTarget
                let tBounds = targets.map { $0.totalByFold.bounds { $0.top1Accuracy } }
                let bBounds = targets.map { $0.baselineByFold.bounds { $0.top1Accuracy } }
                figures.append(
                    .lines(
                        ReportFigure.LineChart(
                            title:
                                "Path predictor top-1 accuracy by target layer (\(F) folds by problem; bands: lowest-highest fold), with baselines",
                            xLabel: "target layer",
                            yLabel: "top-1 accuracy",
                            x: targets.map { Double($0.layer) },
                            series: [
                                .init(
                                    name: "path predictor",
                                    values: targets.map { $0.total.top1Accuracy ?? .nan },
                                    lower: tBounds.map(\.lower),
                                    upper: tBounds.map(\.upper)
                                ),
                                .init(
                                    name: "most frequent (train)",
                                    values: targets.map { $0.baseline.top1Accuracy ?? .nan },
                                    dashed: true,
                                    lower: bBounds.map(\.lower),
                                    upper: bBounds.map(\.upper)
                                ),
                                .init(
                                    name: "random 1/E",
                                    values: targets.map { _ in chance.top1Accuracy },
                                    dashed: true
                                ),
                            ]
                        )
                    )
                )
            }
        }
        for w in windowResults where !w.top.isEmpty {
            figures.append(
                .bars(
                    ReportFigure.BarChart(
                        title:
                            "Most frequent top-1 paths over \(w.length) consecutive layers, beside the count expected if layers were independent (highlighted: over 1.5x that count)",
                        xLabel: "path",
                        yLabel: "count",
                        labels: w.top.map { $0.path.map(String.init).joined(separator: "-") },
                        values: w.top.map { Double($0.count) },
                        highlighted: w.top.map { Double($0.count) > 1.5 * $0.expected },
                        reference: w.top.map(\.expected),
                        referenceLabel: "expected if independent"
                    )
                )
            )
        }

        // MARK: Headlines and notes
        var headlines: [AnalyzerReport.Headline] = []
        if let d1 = distances.first {
            let value = d1.pairs > 0 ? fx(share(d1.top1Same, d1.pairs)) : Insufficient.cell(Insufficient.noPairs)
            headlines.append(
                .init(label: "top-1 same id at distance 1", value: value, reference: "chance \(fx(chance.top1Same))")
            )
        } else {
            headlines.append(
                .init(
                    label: "top-1 same id at distance 1",
                    value: Insufficient.cell(Insufficient.layers(2)),
                    reference: "chance \(fx(chance.top1Same))"
                )
            )
        }
        if distances.count > 1 {
            let far = distances.dropFirst()
            let n = far.reduce(0) { $0 + $1.pairs }
            let same = far.reduce(0) { $0 + $1.top1Same }
            let value = n > 0 ? fx(share(same, n)) : Insufficient.cell(Insufficient.noPairs)
            headlines.append(
                .init(
                    label: "top-1 same id at distances 2..\(L - 1)",
                    value: value,
                    reference: "chance \(fx(chance.top1Same))"
                )
            )
        } else {
            headlines.append(
                .init(
                    label: "top-1 same id at distances 2..",
                    value: Insufficient.cell(Insufficient.layers(3)),
                    reference: "chance \(fx(chance.top1Same))"
                )
            )
        }
        let pathLabel = "path predictor top-1 accuracy (orders <= \(effectiveMaxOrder), \(F) folds by problem)"
        if let pathReason {
            headlines.append(
                .init(
                    label: pathLabel,
                    value: Insufficient.cell(pathReason),
                    reference: "random \(fx(chance.top1Accuracy))"
                )
            )
        } else {
            headlines.append(
                .init(
                    label: pathLabel,
                    value: fx(path.total.top1Accuracy) + " (folds \(path.totalByFold.rangeText { $0.top1Accuracy }))"
                        + (path.belowBaseline == true ? " WORSE than baseline" : ""),
                    reference: "most frequent \(fx(path.baseline.top1Accuracy)), random \(fx(chance.top1Accuracy))"
                )
            )
        }
        headlines.append(
            .init(
                label: "distinct full-depth paths",
                value: (fullPathsOverflowed ? "about " : "")
                    + "\(distinctFullPaths) of \(completeTokens) complete tokens",
                reference: fullPathsOverflowed
                    ? "entropy not computed (over \(fullPathCapacity) distinct paths)"
                    : completeTokens > 0
                        ? "entropy \(fx(fullPathEntropy)) bits (max \(fx(log2(Double(completeTokens)))))"
                        : "entropy " + Insufficient.cell(Insufficient.noCompleteTokens)
            )
        )
        var notes = [
            "Expert ids are local to a layer: same-id rates are only meaningful beside chance; mutual information and prediction do not assume shared ids.",
            "Rates at distance d are micro-averages over all pairs (l, l+d) with both layers present; mutual information at d is the pair-weighted mean over l, beside the shuffled-token null (\(nullReplicates) replicates, same margins).",
            "Prediction uses \(F) folds by problem (the default of every analyzer): fold = (problem id mod \(F) + FNV-1a(domain) mod \(F)) mod \(F); a context unseen in training backs off (path predictor) or falls back to the training most frequent expert of the target layer, which is not covered. Each accuracy's interval is its range over folds (lowest and highest per-fold value among folds with test tokens).",
            "Path predictor: order c uses the top-1 of the c previous layers; tokens with a hole start from their longest hole-free context; set recall is not measured for it. The full-depth path table is exact up to \(fullPathCapacity) distinct paths (beyond that the distinct count is estimated by a bottom-K sketch and the entropy is not computed).",
            "Mutual-information heatmap: diagonal (a layer with itself = its entropy) masked; colour scale from the off-diagonal cells (the JSON matrix keeps the entropies on its diagonal). Frequent paths: expected if independent = sum over starting layers of windows there x product over the window's layers of that layer's top-1 share of the path's expert.",
        ]
        if summarised {
            let sampled = pairSlot.count - detailed.count
            notes.append(
                "\(detailed.count) of \(pairSlot.count) layer pairs are kept in full (adjacent pairs and those asked for): their MI uses all tokens and they carry the d-hop prediction. The other \(sampled) are summarised: same-id and overlap rates count every token; their MI (with a null of \(nullReplicates) token permutations) and the top-m affinity mass (m = k = \(k): share of a layer-l expert's layer-j memberships on its k most frequent layer-j experts, beside the same with layer j permuted) are estimated from \(sample.count) sampled tokens (\(Self.sampleMethod)). Distance means of MI mix both; compare excess over the null. Distances without a pair kept in full have no d-hop prediction."
            )
        }
        if !droppedDetail.isEmpty {
            notes.append(
                "layer pairs \(droppedDetail.map(\.description).joined(separator: ", ")) were not kept in full: their tables would exceed the detail budget; they are summarised"
            )
        }
        for w in windows where w.sampledTokens != nil {
            notes.append(
                "frequent paths over \(w.length) layers: more distinct windows than the exact table holds, so counts, shares and expected counts are over the windows of \(w.sampledTokens ?? 0) sampled tokens"
            )
        }
        if fullPathsOverflowed {
            notes.append(
                "more than \(fullPathCapacity) distinct full-depth paths: their number is estimated from the \(FullPathTable.sketchSize) smallest path hashes (relative standard error about \(ReportFormat.fixed(1 / Double(FullPathTable.sketchSize - 2).squareRoot(), 3))) and their entropy is not computed"
            )
        }
        if effectiveMaxOrder < min(maxOrder, max(0, L - 1)) {
            notes.append(
                "path contexts were limited to order \(effectiveMaxOrder) (requested \(maxOrder)): (L-1) x E^order x folds x E counters would exceed the table budget"
            )
        }
        if tokens > completeTokens {
            notes.append(
                "\(tokens - completeTokens) of \(tokens) tokens lack some layers; their pairs with a missing layer were skipped and counted"
            )
        }
        if L < 2 {
            notes.append(
                Insufficient.note(
                    "hop distances, mutual information between layers and the path predictor",
                    Insufficient.layers(2)
                )
            )
        } else if L < 3 {
            notes.append(
                Insufficient.note("same-id rates and prediction at distances 2 and more", Insufficient.layers(3))
            )
        }
        let missingWindows = Self.windowLengthsReported.filter { $0 > L }
        if !missingWindows.isEmpty {
            notes.append(
                Insufficient.note(
                    "frequent paths over \(missingWindows.map(String.init).joined(separator: " and ")) consecutive layers",
                    missingWindows.count == 1
                        ? Insufficient.layers(missingWindows[0]) : "a window of w layers needs at least w MoE layers"
                )
            )
        }
        let noPairs = pairs.joined().compactMap { $0 }.filter { !$0.hasPairs }.map { "(\($0.l), \($0.j))" }
        if !noPairs.isEmpty {
            notes.append(
                Insufficient.note(
                    "information and prediction figures of layer pairs \(noPairs.joined(separator: ", "))",
                    Insufficient.noPairs
                )
            )
        }
        let below = distances.filter { $0.anyCV && Self.isBelow($0.model, $0.baseline) }.map { "\($0.d)" }
        if !below.isEmpty {
            notes.append(
                "the d-hop predictor is below its most-frequent baseline (top-1 accuracy) at distances \(below.joined(separator: ", "))"
            )
        }
        if !distances.contains(where: { $0.anyCV }) && distances.contains(where: { $0.pairs > 0 }) {
            notes.append(
                "cross-validation needs tokens in at least 2 folds; \(problems.count) problem(s) fill \(foldsWithProblems) fold(s), so prediction figures are null"
            )
        }
        return AnalyzerReport(
            analyzer: "multihop",
            title: Self.title,
            json: json,
            tables: tables,
            figures: figures,
            headlines: headlines,
            notes: notes
        )
    }

    // MARK: - Windows

    struct WindowResult {
        struct Entry {
            var path: [Int]
            var count: Int
            var share: Double
            var expected: Double
        }
        var length: Int
        var total: Int
        var distinct: Int
        var top: [Entry]
        /// Set when counted over the token sample.
        var sampledTokens: Int?

        var json: ReportValue {
            .object(
                [
                    .init("length", .int(length)),
                    .init("windows", .int(total)),
                    .init("distinct", .int(distinct)),
                ] + (sampledTokens.map { [ReportValue.Member.init("sampled_tokens", .int($0))] } ?? []) + [
                    .init(
                        "top",
                        .array(
                            top.map { e in
                                .object([
                                    .init("path", .array(e.path.map(ReportValue.int))),
                                    .init("count", .int(e.count)),
                                    .init("share", .number(e.share)),
                                    .init("expected_independent", .number(e.expected)),
                                ])
                            }
                        )
                    )
                ]
            )
        }
    }

    func topWindows(_ w: WindowCounts) -> WindowResult {
        let E = shape.experts
        let L = shape.layers
        let total = w.starts.reduce(0, +)
        let sorted = w.entries.sorted { $0.count != $1.count ? $0.count > $1.count : $0.code < $1.code }
        let marginals: [[Double]] = (0..<L).map { l in
            let row = layerTop1[(l * E)..<((l + 1) * E)]
            let s = row.reduce(0, +)
            return row.map { s > 0 ? Double($0) / Double(s) : 0 }
        }
        let top = sorted.prefix(MultiHopAnalyzer.topPathCount).map { entry -> WindowResult.Entry in
            var ids = [Int](repeating: 0, count: w.length)
            var code = entry.code
            for i in stride(from: w.length - 1, through: 0, by: -1) {
                if w.dense {
                    ids[i] = Int(code % UInt64(E))
                    code /= UInt64(E)
                } else {
                    ids[i] = Int(code & ((1 << UInt64(bitsPerID)) - 1))
                    code >>= UInt64(bitsPerID)
                }
            }
            var expected = 0.0
            for start in 0..<max(0, L - w.length + 1) where w.starts[start] > 0 {
                var prob = 1.0
                for i in 0..<w.length { prob *= marginals[start + i][ids[i]] }
                expected += Double(w.starts[start]) * prob
            }
            return WindowResult.Entry(
                path: ids,
                count: entry.count,
                share: total > 0 ? Double(entry.count) / Double(total) : 0,
                expected: expected
            )
        }
        return WindowResult(
            length: w.length,
            total: total,
            distinct: w.entries.count,
            top: Array(top),
            sampledTokens: w.sampledTokens
        )
    }
}
