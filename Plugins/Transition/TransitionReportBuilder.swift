// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting

/// Turns the transition analyzer's counts into its report: JSON, tables, figures, headlines and
/// notes. Every figure is a function of the integer counts only, so merged and single-pass runs
/// give the same bytes.
struct TransitionReportBuilder {
    let shape: ModelShape
    let seed: UInt64
    let folds: ProblemFolds
    let nullReplicates: Int
    let tokens: Int
    let records: Int
    let problems: ProblemSet
    let overlapHistogram: [Int]
    /// Top-1 -> top-1 counts per fold, `[F][L-1][E][E]`, read in place (copying them into
    /// `[Int]` doubled the transition analyzer's peak at Kimi-K2's shape).
    let top1Counts: CompactCounts<UInt16>
    /// Extra-member counts per fold, `[F][L-1][E][E]`.
    let extraMembers: CompactCounts<UInt16>
    /// All-combination counts, `[L-1][E][E]`.
    let affinity: CompactCounts<UInt16>

    static let title = "Layer-to-layer transitions (l -> l+1)"
    /// Why an empty stream's report has no figures.
    static let emptyStream = "the stream was empty: no blocks were consumed"

    static func emptyReport(name: String) -> AnalyzerReport {
        AnalyzerReport(
            analyzer: name,
            title: title,
            json: .object([
                .init("layers", .array([])), .init("pooled", .null), .init("chance", .null), .init("shape", .null),
                .init("tokens", .int(0)), .init("pairs", .int(0)),
                .init(Insufficient.key, .string(emptyStream)),
            ]),
            notes: [emptyStream]
        )
    }

    /// Rates of one layer pair or of the pool.
    struct Rates {
        var pairs = 0
        var top1Same = 0
        var overlapSum = 0
        var anyOverlap = 0
        var setSame = 0

        func share(_ x: Int) -> Double? { pairs > 0 ? Double(x) / Double(pairs) : nil }
        func overlapFraction(k: Int) -> Double? { pairs > 0 ? Double(overlapSum) / Double(pairs * k) : nil }
    }

    struct LayerResult {
        var layer: Int
        var rates: Rates
        var affinity: [[Double]]
        var emptyAffinityRows: [Int]
        var deviation: AffinityDeviation?
        var top1: ContingencyTable
        var mi: Double
        var null: ContingencyTable.NullDistribution
        var millerMadow: Double
        var conditionalEntropy: Double
        var cv: CountTablePredictor.CrossValidation?
        /// Folds whose tokens have this layer pair.
        var foldsWithPairs: Int

        /// The information figures, nil without pairs.
        var hasPairs: Bool { rates.pairs > 0 }
    }

    /// How far the next layer's set, given one expert of this layer's set, is from the next
    /// layer's overall usage (see ``affinityDeviation(_:experts:topK:)``).
    struct AffinityDeviation {
        /// `D`, 0...1.
        var observed: Double
        /// `D` expected when the two layers are independent (normal approximation).
        var independent: Double
    }

    /// The figures of layer pair (l, l+1), from the counts alone.
    private func layerResult(_ l: Int) -> LayerResult {
        let E = shape.experts
        let k = shape.topK
        let P = max(0, shape.layers - 1)
        let ee = E * E
        let F = folds.count
        var rates = Rates()
        for ov in 0...k {
            let h = overlapHistogram[l * (k + 1) + ov]
            rates.pairs += h
            rates.overlapSum += ov * h
            if ov > 0 { rates.anyOverlap += h }
            if ov == k { rates.setSame += h }
        }
        var foldTables: [ContingencyTable] = []
        var foldMembers: [ContingencyTable] = []
        var table = ContingencyTable(rows: E, columns: E)
        for f in 0..<F {
            let base = (f * P + l) * ee
            let t = ContingencyTable(rows: E, columns: E, counts: top1Counts.values(from: base, length: ee))
            var m = t
            for i in 0..<ee { m.counts[i] += extraMembers[base + i] }
            foldTables.append(t)
            foldMembers.append(m)
            table.add(t)
        }
        for a in 0..<E { rates.top1Same += table[a, a] }
        let affBase = l * ee
        let aff = affinity.values(from: affBase, length: ee)
        let (matrix, empty) = Self.affinityMatrix(aff, experts: E, topK: k)
        let nullSeed = SeededRandom(seed: seed, stream: UInt64(l + 1)).seedValue
        return LayerResult(
            layer: l,
            rates: rates,
            affinity: matrix,
            emptyAffinityRows: empty,
            deviation: Self.affinityDeviation(aff, experts: E, topK: k),
            top1: table,
            mi: table.mutualInformationBits,
            null: table.shuffledNull(replicates: nullReplicates, seed: nullSeed),
            millerMadow: table.millerMadowMutualInformationBits,
            conditionalEntropy: table.conditionalEntropyBits,
            cv: CountTablePredictor.crossValidate(top1: foldTables, membership: foldMembers, topK: k),
            foldsWithPairs: foldTables.filter { $0.total > 0 }.count
        )
    }

    func build() -> AnalyzerReport {
        let L = shape.layers
        let E = shape.experts
        let k = shape.topK
        let P = max(0, L - 1)
        let F = folds.count
        let chance = ChanceRates(experts: E, topK: k)
        // Each layer pair's figures are independent (the null seeded per pair): computed on
        // idle cores too, then pooled in layer order.
        var slots = [LayerResult?](repeating: nil, count: P)
        slots.withUnsafeMutableBufferPointer { buffer in
            let out = ParallelLoop.Slots(buffer)
            ParallelLoop.forEach(count: P) { l in out[l] = layerResult(l) }
        }
        let results = slots.compactMap { $0 }
        var pooledRates = Rates()
        var emptyRowsTotal = 0
        for r in results {
            emptyRowsTotal += r.emptyAffinityRows.count
            pooledRates.pairs += r.rates.pairs
            pooledRates.top1Same += r.rates.top1Same
            pooledRates.overlapSum += r.rates.overlapSum
            pooledRates.anyOverlap += r.rates.anyOverlap
            pooledRates.setSame += r.rates.setSame
        }

        // Pair-weighted means over layer pairs of the information figures.
        func weighted(_ value: (LayerResult) -> Double) -> Double? {
            let n = results.reduce(0) { $0 + $1.rates.pairs }
            guard n > 0 else { return nil }
            return results.reduce(0.0) { $0 + ($1.hasPairs ? value($1) * Double($1.rates.pairs) : 0) } / Double(n)
        }
        let pooledMI = weighted { $0.mi }
        let pooledNull = weighted { $0.null.mean }
        let pooledNullSD = weighted { $0.null.standardDeviation }
        let pooledMM = weighted { $0.millerMadow }
        let pooledCond = weighted { $0.conditionalEntropy }
        let pooledDeviation = weighted { $0.deviation?.observed ?? 0 }
        let pooledDeviationIndependent = weighted { $0.deviation?.independent ?? 0 }
        var pooledModel = FoldTallies(folds: F)
        var pooledBaseline = FoldTallies(folds: F)
        var anyCV = false
        for r in results {
            if let cv = r.cv {
                anyCV = true
                pooledModel += cv.modelByFold
                pooledBaseline += cv.baselineByFold
            }
        }
        let foldsWithProblems = problems.nonEmptyFolds(of: folds)
        /// Why a layer pair's (or the pool's) prediction is null.
        func predictionReason(pairs: Int, foldsWithPairs: Int) -> String {
            if P == 0 { return Insufficient.layers(2) }
            if pairs == 0 { return Insufficient.noPairs }
            return Insufficient.folds(problems: problems.count, filled: foldsWithPairs)
        }
        let pooledFoldsWithPairs = results.map(\.foldsWithPairs).max() ?? 0

        // MARK: JSON
        func ratesJSON(_ r: Rates) -> [ReportValue.Member] {
            [
                .init("top1_same", .number(r.share(r.top1Same))),
                .init("overlap_fraction", .number(r.overlapFraction(k: k))),
                .init("any_overlap", .number(r.share(r.anyOverlap))),
                .init("set_same", .number(r.share(r.setSame))),
            ]
        }
        func tallyJSON(_ t: FoldTallies?) -> ReportValue {
            var m = (t?.total ?? PredictionTally()).json(topK: k).objectMembers ?? []
            m.append(.init("interval", t.map { $0.intervalJSON(topK: k, problems: problems.count) } ?? .null))
            return .object(m)
        }
        func predictionJSON(
            model: FoldTallies?,
            baseline: FoldTallies?,
            foldsWithData: Int,
            insufficient: String?
        ) -> ReportValue {
            let total = model?.total
            var m: [ReportValue.Member] = [
                .init("top1_accuracy", .number(total?.top1Accuracy)),
                .init("top2_accuracy", .number(total?.top2Accuracy)),
                .init("set_recall", .number(total?.setRecall(topK: k))),
                .init("coverage", .number(total?.coverage)),
                .init("interval", model.map { $0.intervalJSON(topK: k, problems: problems.count) } ?? .null),
                .init("baseline_most_frequent", tallyJSON(baseline)),
                .init("random", ReportFormat.randomPrediction(chance)),
                .init("folds", .int(F)),
                .init("folds_with_data", .int(foldsWithData)),
                .init("problems", .int(problems.count)),
                .init(
                    "below_baseline",
                    model.flatMap { mo in baseline.map { Self.isBelow(mo.total, $0.total) } }.map(ReportValue.bool)
                        ?? .null
                ),
            ]
            if let insufficient { m.append(.init(Insufficient.key, .string(insufficient))) }
            return .object(m)
        }
        func deviationJSON(_ d: AffinityDeviation?) -> [ReportValue.Member] {
            [
                .init("affinity_deviation", .number(d?.observed)),
                .init("affinity_deviation_independent", .number(d?.independent)),
            ]
        }
        let layersJSON: [ReportValue] = results.map { r in
            var m: [ReportValue.Member] = [
                .init("layer", .int(r.layer)),
                .init("pairs", .int(r.rates.pairs)),
                .init("skipped_pairs", .int(tokens - r.rates.pairs)),
            ]
            m += ratesJSON(r.rates)
            m += [
                .init("matrix", .matrix(r.affinity)),
                .init("top1_matrix", .matrix(Self.rowNormalized(r.top1))),
                .init("top1_counts", .array(r.top1.matrix.map { .array($0.map(ReportValue.int)) })),
                .init("mutual_information_bits", .number(r.hasPairs ? r.mi : nil)),
                .init("mutual_information_null_bits", .number(r.hasPairs ? r.null.mean : nil)),
                .init("mutual_information_null_sd_bits", .number(r.hasPairs ? r.null.standardDeviation : nil)),
                .init("mutual_information_null_method", r.hasPairs ? .string(r.null.method.rawValue) : .null),
                .init("mutual_information_excess_bits", .number(r.hasPairs ? r.mi - r.null.mean : nil)),
                .init("mutual_information_miller_madow_bits", .number(r.hasPairs ? r.millerMadow : nil)),
                .init("conditional_entropy_bits", .number(r.hasPairs ? r.conditionalEntropy : nil)),
                .init("empty_affinity_rows", .array(r.emptyAffinityRows.map(ReportValue.int))),
            ]
            m += deviationJSON(r.deviation)
            m.append(
                .init(
                    "prediction",
                    predictionJSON(
                        model: r.cv?.modelByFold,
                        baseline: r.cv?.baselineByFold,
                        foldsWithData: r.cv?.foldsWithData ?? min(1, r.rates.pairs),
                        insufficient: r.cv == nil
                            ? predictionReason(pairs: r.rates.pairs, foldsWithPairs: r.foldsWithPairs) : nil
                    )
                )
            )
            if !r.hasPairs { m.append(.init(Insufficient.key, .string(Insufficient.noPairs))) }
            return .object(m)
        }
        var pooled: [ReportValue.Member] = [
            .init("pairs", .int(pooledRates.pairs)),
            .init("skipped_pairs", .int(tokens * P - pooledRates.pairs)),
        ]
        pooled += ratesJSON(pooledRates)
        pooled += [
            .init("mutual_information_bits", .number(pooledMI)),
            .init("mutual_information_null_bits", .number(pooledNull)),
            .init("mutual_information_null_sd_bits", .number(pooledNullSD)),
            .init("mutual_information_excess_bits", .number(pooledMI.flatMap { mi in pooledNull.map { mi - $0 } })),
            .init("mutual_information_miller_madow_bits", .number(pooledMM)),
            .init("conditional_entropy_bits", .number(pooledCond)),
            .init("affinity_deviation", .number(pooledDeviation)),
            .init("affinity_deviation_independent", .number(pooledDeviationIndependent)),
            .init(
                "prediction",
                predictionJSON(
                    model: anyCV ? pooledModel : nil,
                    baseline: anyCV ? pooledBaseline : nil,
                    foldsWithData: results.map { $0.cv?.foldsWithData ?? 0 }.max() ?? 0,
                    insufficient: anyCV
                        ? nil : predictionReason(pairs: pooledRates.pairs, foldsWithPairs: pooledFoldsWithPairs)
                )
            ),
        ]
        if P == 0 {
            pooled.append(.init(Insufficient.key, .string(Insufficient.layers(2))))
        } else if pooledRates.pairs == 0 {
            pooled.append(.init(Insufficient.key, .string(Insufficient.noPairs)))
        }
        let json: ReportValue = .object([
            .init("layers", .array(layersJSON)),
            .init("pooled", .object(pooled)),
            .init("chance", ReportFormat.chance(chance)),
            .init("shape", ReportFormat.shape(shape)),
            .init("tokens", .int(tokens)),
            .init("records", .int(records)),
            .init("pairs", .int(pooledRates.pairs)),
            .init("skipped_pairs", .int(tokens * P - pooledRates.pairs)),
            .init("problems", .int(problems.count)),
            .init("folds", .int(F)),
            .init("null_replicates", .int(nullReplicates)),
            .init("seed", .integer(seed)),
        ])

        // MARK: Tables
        let fx = { (x: Double?) in ReportFormat.fixed(x, 3) }
        let fx4 = { (x: Double?) in ReportFormat.fixed(x, 4) }
        var tables: [ReportTable] = []
        var figures: [ReportFigure] = []
        if P > 0 {
            var rateRows: [[String]] = results.map { r in
                [
                    "\(r.layer)->\(r.layer + 1)", "\(r.rates.pairs)", "\(tokens - r.rates.pairs)",
                    fx(r.rates.share(r.rates.top1Same)),
                    fx(r.rates.overlapFraction(k: k)), fx(r.rates.share(r.rates.anyOverlap)),
                    fx4(r.rates.share(r.rates.setSame)),
                ]
            }
            rateRows.append([
                "pooled", "\(pooledRates.pairs)", "\(tokens * P - pooledRates.pairs)",
                fx(pooledRates.share(pooledRates.top1Same)),
                fx(pooledRates.overlapFraction(k: k)), fx(pooledRates.share(pooledRates.anyOverlap)),
                fx4(pooledRates.share(pooledRates.setSame)),
            ])
            rateRows.append([
                "chance", "", "", fx(chance.top1Same), fx(chance.overlapFraction), fx(chance.anyOverlap),
                fx4(chance.setSame),
            ])
            var infoRows: [[String]] = results.map { r in
                guard r.hasPairs else {
                    return ["\(r.layer)->\(r.layer + 1)", Insufficient.cell(Insufficient.noPairs), "", "", "", ""]
                }
                return [
                    "\(r.layer)->\(r.layer + 1)", fx4(r.mi), fx4(r.null.mean) + " ± " + fx4(r.null.standardDeviation),
                    fx4(r.mi - r.null.mean),
                    fx4(r.millerMadow), fx(r.conditionalEntropy),
                ]
            }
            if pooledMI == nil {
                infoRows.append([
                    "pooled (pair-weighted mean)", Insufficient.cell(Insufficient.noPairs), "", "", "", "",
                ])
            } else {
                infoRows.append([
                    "pooled (pair-weighted mean)", fx4(pooledMI), fx4(pooledNull) + " ± " + fx4(pooledNullSD),
                    fx4(pooledMI.flatMap { mi in pooledNull.map { mi - $0 } }), fx4(pooledMM), fx(pooledCond),
                ])
            }
            func predRow(_ label: String, _ model: FoldTallies?, _ baseline: FoldTallies?, _ reason: String) -> [String]
            {
                guard let model, let baseline else {
                    return [label, Insufficient.cell(reason), "", "", "", "", "", "", ""]
                }
                let m = model.total
                let b = baseline.total
                return [
                    label, fx(m.top1Accuracy) + (Self.isBelow(m, b) ? " (below baseline)" : ""),
                    model.rangeText { $0.top1Accuracy },
                    fx(m.top2Accuracy), fx(m.setRecall(topK: k)), fx(m.coverage), fx(b.top1Accuracy),
                    fx(b.top2Accuracy), fx(b.setRecall(topK: k)),
                ]
            }
            var predRows: [[String]] = results.map { r in
                predRow(
                    "\(r.layer)->\(r.layer + 1)",
                    r.cv?.modelByFold,
                    r.cv?.baselineByFold,
                    predictionReason(pairs: r.rates.pairs, foldsWithPairs: r.foldsWithPairs)
                )
            }
            predRows.append(
                predRow(
                    "pooled",
                    anyCV ? pooledModel : nil,
                    anyCV ? pooledBaseline : nil,
                    predictionReason(pairs: pooledRates.pairs, foldsWithPairs: pooledFoldsWithPairs)
                )
            )
            predRows.append([
                "random", fx(chance.top1Accuracy), "", fx(chance.top2Accuracy), fx(chance.setRecall), "", "", "", "",
            ])
            let deviationRows: [[String]] =
                results.map { r in
                    ["\(r.layer)->\(r.layer + 1)", fx(r.deviation?.observed), fx(r.deviation?.independent)]
                } + [["pooled (pair-weighted mean)", fx(pooledDeviation), fx(pooledDeviationIndependent)]]
            tables = [
                ReportTable(
                    title:
                        "Same-id rates, layer l -> l+1 (expert ids are not shared across layers: compare with chance)",
                    columns: [
                        "layers", "pairs", "skipped", "top-1 same", "overlap fraction", "any overlap", "same set",
                    ],
                    rows: rateRows
                ),
                ReportTable(
                    title:
                        "Mutual information I(top1_l; top1_l+1), bits, with a shuffled-token null (\(nullReplicates) replicates)",
                    columns: ["layers", "MI", "null mean ± sd", "excess", "Miller-Madow", "H(top1_l+1 | top1_l)"],
                    rows: infoRows
                ),
                ReportTable(
                    title:
                        "Next-layer prediction from this layer's top-1, \(F) folds by problem (\(problems.count) problems); range: lowest-highest per-fold top-1 accuracy",
                    columns: [
                        "layers", "top-1 acc", "range over folds", "top-2 acc", "set recall", "coverage",
                        "most-freq top-1", "most-freq top-2", "most-freq set recall",
                    ],
                    rows: predRows
                ),
                ReportTable(
                    title:
                        "Affinity deviation per layer pair: mean over i in S_l of the distance of P(. in S_l+1 | i in S_l) from P(. in S_l+1) (0: independent)",
                    columns: ["layers", "deviation", "expected if independent"],
                    rows: deviationRows
                ),
            ]

            // MARK: Figures
            let labels = (0..<E).map { "\($0)" }
            figures = results.map { r in
                .heatmap(
                    ReportFigure.Heatmap(
                        title:
                            "top-1 layer \(r.layer) -> \(r.layer + 1): P(top1_\(r.layer + 1) = j | top1_\(r.layer) = i)",
                        xLabel: "top-1 expert at layer \(r.layer + 1)",
                        yLabel: "top-1 expert at layer \(r.layer)",
                        rowLabels: labels,
                        columnLabels: labels,
                        values: Self.rowNormalized(r.top1)
                    )
                )
            }
            let xs = results.map { Double($0.layer) }
            figures.append(
                .lines(
                    ReportFigure.LineChart(
                        title:
                            "Affinity deviation from independence by layer pair (each pair's own expert ids; none pooled across layers)",
                        xLabel: "layer l (pair l -> l+1)",
                        yLabel: "deviation (0...1)",
                        x: xs,
                        series: [
                            .init(name: "deviation", values: results.map { $0.deviation?.observed ?? .nan }),
                            .init(
                                name: "expected if independent",
                                values: results.map { $0.deviation?.independent ?? .nan },
                                dashed: true
                            ),
                        ]
                    )
                )
            )
            figures.append(
                .lines(
                    ReportFigure.LineChart(
                        title: "Same-id rates by layer pair, with chance",
                        xLabel: "layer l (pair l -> l+1)",
                        yLabel: "rate",
                        x: xs,
                        series: [
                            .init(
                                name: "top-1 same",
                                values: results.map { $0.rates.share($0.rates.top1Same) ?? .nan }
                            ),
                            .init(name: "top-1 same, chance", values: xs.map { _ in chance.top1Same }, dashed: true),
                            .init(
                                name: "overlap fraction",
                                values: results.map { $0.rates.overlapFraction(k: k) ?? .nan }
                            ),
                            .init(
                                name: "overlap fraction, chance",
                                values: xs.map { _ in chance.overlapFraction },
                                dashed: true
                            ),
                        ]
                    )
                )
            )
            figures.append(
                .lines(
                    ReportFigure.LineChart(
                        title: "Mutual information between consecutive top-1 choices, with the shuffled null",
                        xLabel: "layer l (pair l -> l+1)",
                        yLabel: "bits",
                        x: xs,
                        series: [
                            .init(name: "MI", values: results.map { $0.hasPairs ? $0.mi : .nan }),
                            .init(
                                name: "shuffled null",
                                values: results.map { $0.hasPairs ? $0.null.mean : .nan },
                                dashed: true
                            ),
                        ]
                    )
                )
            )
            let modelBounds = results.map { $0.cv?.modelByFold.bounds { $0.top1Accuracy } ?? (.nan, .nan) }
            let baselineBounds = results.map { $0.cv?.baselineByFold.bounds { $0.top1Accuracy } ?? (.nan, .nan) }
            figures.append(
                .lines(
                    ReportFigure.LineChart(
                        title:
                            "Next-layer top-1 prediction (\(F) folds by problem; bands: lowest-highest fold), with baselines",
                        xLabel: "layer l (predict l+1)",
                        yLabel: "top-1 accuracy",
                        x: xs,
                        series: [
                            .init(
                                name: "top-1 table",
                                values: results.map { $0.cv?.model.top1Accuracy ?? .nan },
                                lower: modelBounds.map(\.lower),
                                upper: modelBounds.map(\.upper)
                            ),
                            .init(
                                name: "most frequent (train)",
                                values: results.map { $0.cv?.baseline.top1Accuracy ?? .nan },
                                dashed: true,
                                lower: baselineBounds.map(\.lower),
                                upper: baselineBounds.map(\.upper)
                            ),
                            .init(name: "random 1/E", values: xs.map { _ in chance.top1Accuracy }, dashed: true),
                        ]
                    )
                )
            )
        }

        // MARK: Headlines and notes
        let notComputed = Insufficient.cell(P == 0 ? Insufficient.layers(2) : Insufficient.noPairs)
        func value(_ x: Double?, _ f: (Double?) -> String) -> String { x == nil ? notComputed : f(x) }
        var headlines = [
            AnalyzerReport.Headline(
                label: "top-1 same id, next layer (pooled)",
                value: value(pooledRates.share(pooledRates.top1Same), fx),
                reference: "chance \(fx(chance.top1Same))"
            ),
            AnalyzerReport.Headline(
                label: "top-\(k) overlap fraction, next layer",
                value: value(pooledRates.overlapFraction(k: k), fx),
                reference: "chance \(fx(chance.overlapFraction))"
            ),
            AnalyzerReport.Headline(
                label: "MI top-1 l -> l+1 (bits, mean over l)",
                value: value(pooledMI, fx4),
                reference: "shuffled null \(fx4(pooledNull))"
            ),
        ]
        let model = pooledModel.total
        let baseline = pooledBaseline.total
        if anyCV {
            headlines.append(
                AnalyzerReport.Headline(
                    label: "next-layer top-1 prediction (\(F) folds by problem)",
                    value: fx(model.top1Accuracy) + " (folds \(pooledModel.rangeText { $0.top1Accuracy }))"
                        + (Self.isBelow(model, baseline) ? " WORSE than baseline" : ""),
                    reference: "most frequent \(fx(baseline.top1Accuracy)), random \(fx(chance.top1Accuracy))"
                )
            )
            let setBelow = (model.setRecall(topK: k) ?? 0) < (baseline.setRecall(topK: k) ?? 0)
            headlines.append(
                AnalyzerReport.Headline(
                    label: "next-layer set recall (best \(k) guesses)",
                    value: fx(model.setRecall(topK: k)) + " (folds \(pooledModel.rangeText { $0.setRecall(topK: k) }))"
                        + (setBelow ? " WORSE than baseline" : ""),
                    reference: "most frequent \(fx(baseline.setRecall(topK: k))), random \(fx(chance.setRecall))"
                )
            )
        } else {
            headlines.append(
                AnalyzerReport.Headline(
                    label: "next-layer top-1 prediction (\(F) folds by problem)",
                    value: Insufficient.cell(
                        predictionReason(pairs: pooledRates.pairs, foldsWithPairs: pooledFoldsWithPairs)
                    ),
                    reference: "random \(fx(chance.top1Accuracy))"
                )
            )
        }
        var notes = [
            "Expert ids are local to a layer: same-id rates are only meaningful beside their chance values; the affinity matrix, mutual information and prediction do not assume shared ids.",
            "Affinity P(j in S_l+1 | i in S_l) counts every (i, j) of the two top-\(k) sets; each row sums to k = \(k); a row whose expert i was never selected at layer l has no data (null in JSON). Affinity deviation of a layer pair = sum over i of w_i x sum over j of |P(j in S_l+1 | i in S_l) - P(j in S_l+1)| / (2k), w_i the share of layer-l selections that are i: 0 when the next layer's set ignores this layer's, at most 1; 'expected if independent' is its sampling bias under independence (normal approximation, rough below about 20 tokens per expert). Affinity matrices are never pooled across layer pairs (their ids are unrelated).",
            "Prediction: problems are split into \(F) folds by (problem id mod \(F) + FNV-1a(domain) mod \(F)) mod \(F) (\(F) folds by problem, the default of every analyzer); top-1 accuracy = first guess equals the true top-1, top-2 = true top-1 among the two best guesses, set recall = |best \(k) guesses ∩ true set| / \(k). A row unseen in training falls back to the training most frequent expert and is not covered. Each accuracy's interval is its range over folds (lowest and highest per-fold value among folds with test tokens).",
            "Pooled information figures are means over layer pairs weighted by their pair counts; pooled rates and accuracies are micro-averages.",
        ]
        if P == 0 {
            notes.append(
                Insufficient.note(
                    "layer-to-layer transitions (the model has a single layer: there are no layer pairs)",
                    Insufficient.layers(2)
                )
            )
        }
        if tokens * P > pooledRates.pairs, P > 0 {
            notes.append(
                "\(tokens * P - pooledRates.pairs) of \(tokens * P) layer pairs had a missing layer and were skipped"
            )
        }
        let noPairs = results.filter { !$0.hasPairs }.map { "\($0.layer)->\($0.layer + 1)" }
        if !noPairs.isEmpty, P > 0 {
            notes.append(
                Insufficient.note(
                    "information, affinity and prediction figures of layer pairs \(noPairs.joined(separator: ", "))",
                    Insufficient.noPairs
                )
            )
        }
        if emptyRowsTotal > 0 {
            notes.append(
                "\(emptyRowsTotal) affinity-matrix and top-1 rows (over all layer pairs) had no counts: no data (null in JSON, drawn as no data)"
            )
        }
        let below = results.filter { r in r.cv.map { Self.isBelow($0.model, $0.baseline) } ?? false }.map {
            "\($0.layer)->\($0.layer + 1)"
        }
        if !below.isEmpty {
            notes.append(
                "the next-layer predictor is below its most-frequent baseline (top-1 accuracy) at layer pairs \(below.joined(separator: ", "))"
            )
        }
        if !anyCV && P > 0 && pooledRates.pairs > 0 {
            notes.append(
                Insufficient.note(
                    "next-layer prediction, values are null",
                    Insufficient.folds(problems: problems.count, filled: foldsWithProblems)
                )
            )
        }
        return AnalyzerReport(
            analyzer: "transition",
            title: Self.title,
            json: json,
            tables: tables,
            figures: figures,
            headlines: headlines,
            notes: notes
        )
    }

    /// Whether a predictor's top-1 accuracy is below its baseline's.
    static func isBelow(_ model: PredictionTally, _ baseline: PredictionTally) -> Bool {
        guard let m = model.top1Accuracy, let b = baseline.top1Accuracy else { return false }
        return m < b
    }

    /// A count table's rows scaled to sum to 1; a row without counts is NaN (no data).
    static func rowNormalized(_ t: ContingencyTable) -> [[Double]] {
        let totals = t.rowTotals
        return t.rowNormalized().enumerated().map { i, row in
            totals[i] > 0 ? row : [Double](repeating: .nan, count: row.count)
        }
    }

    /// `P(j in S_{l+1} | i in S_l)` from all-combination counts: row i divided by the number of
    /// pairs with i in S_l (row sum / k). Returns the matrix, in which a row without counts is
    /// NaN (no data), and the rows without counts.
    static func affinityMatrix(_ counts: [Int], experts E: Int, topK k: Int) -> ([[Double]], [Int]) {
        var empty: [Int] = []
        let m: [[Double]] = (0..<E).map { i in
            var s = 0
            for j in 0..<E { s += counts[i * E + j] }
            guard s > 0 else {
                empty.append(i)
                return [Double](repeating: .nan, count: E)
            }
            let n = Double(s) / Double(k)
            return (0..<E).map { Double(counts[i * E + $0]) / n }
        }
        return (m, empty)
    }

    /// The affinity deviation of one layer pair from its all-combination counts `A` (E x E, row
    /// i: i in S_l, column j: j in S_{l+1}): with `n_i = rowsum_i / k` tokens having i in S_l,
    /// `N = sum n_i`, `m_j = colsum_j / N = P(j in S_{l+1})`,
    /// `D = sum_i (n_i / N) sum_j |A_ij / n_i - m_j| / (2k)`, and the same expected under
    /// independence, `sum_i (n_i / N) sum_j sqrt(2 m_j (1 - m_j) / (pi n_i)) / (2k)` (the mean
    /// absolute deviation of a binomial share, normal approximation). Nil without counts.
    static func affinityDeviation(_ counts: [Int], experts E: Int, topK k: Int) -> AffinityDeviation? {
        let total = counts.reduce(0, +)
        guard total > 0, k > 0 else { return nil }
        let N = Double(total) / Double(k)
        var col = [Double](repeating: 0, count: E)
        for i in 0..<E { for j in 0..<E { col[j] += Double(counts[i * E + j]) } }
        let m = col.map { $0 / N }
        var observed = 0.0
        var independent = 0.0
        for i in 0..<E {
            var s = 0
            for j in 0..<E { s += counts[i * E + j] }
            guard s > 0 else { continue }
            let n = Double(s) / Double(k)
            var dev = 0.0
            var exp = 0.0
            for j in 0..<E {
                dev += abs(Double(counts[i * E + j]) / n - m[j])
                exp += (2 * max(0, m[j] * (1 - m[j])) / (Double.pi * n)).squareRoot()
            }
            observed += n / N * dev / Double(2 * k)
            independent += n / N * exp / Double(2 * k)
        }
        return AffinityDeviation(observed: observed, independent: independent)
    }
}
