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
    let top1Counts: [Int]
    let extraMembers: [Int]
    let affinity: [Int]

    static let title = "Layer-to-layer transitions (l -> l+1)"

    static func emptyReport(name: String) -> AnalyzerReport {
        AnalyzerReport(
            analyzer: name,
            title: title,
            json: .object([
                .init("layers", .array([])), .init("pooled", .null), .init("chance", .null), .init("shape", .null),
                .init("tokens", .int(0)), .init("pairs", .int(0)),
            ]),
            notes: ["the stream was empty: no blocks were consumed"]
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
        var top1: ContingencyTable
        var mi: Double
        var null: ContingencyTable.NullDistribution
        var millerMadow: Double
        var conditionalEntropy: Double
        var cv: CountTablePredictor.CrossValidation?
    }

    func build() -> AnalyzerReport {
        let L = shape.layers, E = shape.experts, k = shape.topK
        let P = max(0, L - 1)
        let ee = E * E
        let F = folds.count
        let chance = ChanceRates(experts: E, topK: k)
        var results: [LayerResult] = []
        var pooledRates = Rates()
        var pooledTop1 = ContingencyTable(rows: E, columns: E)
        var pooledAffinity = [Int](repeating: 0, count: ee)
        var emptyRowsTotal = 0
        for l in 0..<P {
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
                let t = ContingencyTable(rows: E, columns: E, counts: Array(top1Counts[base..<(base + ee)]))
                var m = t
                for i in 0..<ee { m.counts[i] += extraMembers[base + i] }
                foldTables.append(t)
                foldMembers.append(m)
                table.add(t)
            }
            for a in 0..<E { rates.top1Same += table[a, a] }
            let affBase = l * ee
            let aff = Array(affinity[affBase..<(affBase + ee)])
            for i in 0..<ee { pooledAffinity[i] += aff[i] }
            let (matrix, empty) = Self.affinityMatrix(aff, experts: E, topK: k)
            emptyRowsTotal += empty.count
            let nullSeed = SeededRandom(seed: seed, stream: UInt64(l + 1)).seedValue
            results.append(
                LayerResult(
                    layer: l,
                    rates: rates,
                    affinity: matrix,
                    emptyAffinityRows: empty,
                    top1: table,
                    mi: table.mutualInformationBits,
                    null: table.shuffledNull(replicates: nullReplicates, seed: nullSeed),
                    millerMadow: table.millerMadowMutualInformationBits,
                    conditionalEntropy: table.conditionalEntropyBits,
                    cv: CountTablePredictor.crossValidate(top1: foldTables, membership: foldMembers, topK: k)
                )
            )
            pooledRates.pairs += rates.pairs
            pooledRates.top1Same += rates.top1Same
            pooledRates.overlapSum += rates.overlapSum
            pooledRates.anyOverlap += rates.anyOverlap
            pooledRates.setSame += rates.setSame
            pooledTop1.add(table)
        }

        // Pair-weighted means over layer pairs of the information figures.
        func weighted(_ value: (LayerResult) -> Double) -> Double? {
            let n = results.reduce(0) { $0 + $1.rates.pairs }
            guard n > 0 else { return nil }
            return results.reduce(0.0) { $0 + value($1) * Double($1.rates.pairs) } / Double(n)
        }
        let pooledMI = weighted { $0.mi }
        let pooledNull = weighted { $0.null.mean }
        let pooledNullSD = weighted { $0.null.standardDeviation }
        let pooledMM = weighted { $0.millerMadow }
        let pooledCond = weighted { $0.conditionalEntropy }
        var pooledModel = PredictionTally(), pooledBaseline = PredictionTally()
        var anyCV = false
        for r in results {
            if let cv = r.cv {
                anyCV = true
                pooledModel += cv.model
                pooledBaseline += cv.baseline
            }
        }
        let (pooledMatrix, pooledEmpty) = Self.affinityMatrix(pooledAffinity, experts: E, topK: k)
        let foldsWithProblems = problems.nonEmptyFolds(of: folds)

        // MARK: JSON
        func ratesJSON(_ r: Rates) -> [ReportValue.Member] {
            [
                .init("top1_same", .number(r.share(r.top1Same))),
                .init("overlap_fraction", .number(r.overlapFraction(k: k))),
                .init("any_overlap", .number(r.share(r.anyOverlap))),
                .init("set_same", .number(r.share(r.setSame))),
            ]
        }
        func predictionJSON(model: PredictionTally?, baseline: PredictionTally?, foldsWithData: Int) -> ReportValue {
            let empty = PredictionTally()
            return .object([
                .init("top1_accuracy", .number(model?.top1Accuracy)),
                .init("top2_accuracy", .number(model?.top2Accuracy)),
                .init("set_recall", .number(model?.setRecall(topK: k))),
                .init("coverage", .number(model?.coverage)),
                .init("baseline_most_frequent", (baseline ?? empty).json(topK: k)),
                .init("random", ReportFormat.randomPrediction(chance)),
                .init("folds", .int(F)),
                .init("folds_with_data", .int(foldsWithData)),
                .init("problems", .int(problems.count)),
            ])
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
                .init("top1_matrix", .matrix(r.top1.rowNormalized())),
                .init("top1_counts", .array(r.top1.matrix.map { .array($0.map(ReportValue.int)) })),
                .init("mutual_information_bits", .number(r.mi)),
                .init("mutual_information_null_bits", .number(r.null.mean)),
                .init("mutual_information_null_sd_bits", .number(r.null.standardDeviation)),
                .init("mutual_information_excess_bits", .number(r.mi - r.null.mean)),
                .init("mutual_information_miller_madow_bits", .number(r.millerMadow)),
                .init("conditional_entropy_bits", .number(r.conditionalEntropy)),
                .init("empty_affinity_rows", .array(r.emptyAffinityRows.map(ReportValue.int))),
                .init("prediction", predictionJSON(model: r.cv?.model, baseline: r.cv?.baseline, foldsWithData: r.cv?.foldsWithData ?? min(1, r.rates.pairs))),
            ]
            return .object(m)
        }
        var pooled: [ReportValue.Member] = [
            .init("pairs", .int(pooledRates.pairs)),
            .init("skipped_pairs", .int(tokens * P - pooledRates.pairs)),
        ]
        pooled += ratesJSON(pooledRates)
        pooled += [
            .init("matrix", .matrix(pooledMatrix)),
            .init("top1_matrix", .matrix(pooledTop1.rowNormalized())),
            .init("top1_counts", .array(pooledTop1.matrix.map { .array($0.map(ReportValue.int)) })),
            .init("mutual_information_bits", .number(pooledMI)),
            .init("mutual_information_null_bits", .number(pooledNull)),
            .init("mutual_information_null_sd_bits", .number(pooledNullSD)),
            .init("mutual_information_excess_bits", .number(pooledMI.flatMap { mi in pooledNull.map { mi - $0 } })),
            .init("mutual_information_miller_madow_bits", .number(pooledMM)),
            .init("conditional_entropy_bits", .number(pooledCond)),
            .init("empty_affinity_rows", .array(pooledEmpty.map(ReportValue.int))),
            .init("prediction", predictionJSON(model: anyCV ? pooledModel : nil, baseline: anyCV ? pooledBaseline : nil, foldsWithData: results.map { $0.cv?.foldsWithData ?? 0 }.max() ?? 0)),
        ]
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
            .init("seed", .string(String(seed))),
        ])

        // MARK: Tables
        let fx = { (x: Double?) in ReportFormat.fixed(x, 3) }
        let fx4 = { (x: Double?) in ReportFormat.fixed(x, 4) }
        var rateRows: [[String]] = results.map { r in
            ["\(r.layer)->\(r.layer + 1)", "\(r.rates.pairs)", "\(tokens - r.rates.pairs)", fx(r.rates.share(r.rates.top1Same)),
             fx(r.rates.overlapFraction(k: k)), fx(r.rates.share(r.rates.anyOverlap)), fx4(r.rates.share(r.rates.setSame))]
        }
        rateRows.append(["pooled", "\(pooledRates.pairs)", "\(tokens * P - pooledRates.pairs)", fx(pooledRates.share(pooledRates.top1Same)),
                         fx(pooledRates.overlapFraction(k: k)), fx(pooledRates.share(pooledRates.anyOverlap)), fx4(pooledRates.share(pooledRates.setSame))])
        rateRows.append(["chance", "", "", fx(chance.top1Same), fx(chance.overlapFraction), fx(chance.anyOverlap), fx4(chance.setSame)])
        var infoRows: [[String]] = results.map { r in
            ["\(r.layer)->\(r.layer + 1)", fx4(r.mi), fx4(r.null.mean) + " ± " + fx4(r.null.standardDeviation), fx4(r.mi - r.null.mean),
             fx4(r.millerMadow), fx(r.conditionalEntropy)]
        }
        infoRows.append(["pooled (pair-weighted mean)", fx4(pooledMI), fx4(pooledNull) + " ± " + fx4(pooledNullSD),
                         fx4(pooledMI.flatMap { mi in pooledNull.map { mi - $0 } }), fx4(pooledMM), fx(pooledCond)])
        var predRows: [[String]] = results.map { r in
            [
                "\(r.layer)->\(r.layer + 1)", fx(r.cv?.model.top1Accuracy), fx(r.cv?.model.top2Accuracy), fx(r.cv?.model.setRecall(topK: k)),
                fx(r.cv?.model.coverage), fx(r.cv?.baseline.top1Accuracy), fx(r.cv?.baseline.top2Accuracy), fx(r.cv?.baseline.setRecall(topK: k)),
            ]
        }
        predRows.append([
            "pooled", fx(anyCV ? pooledModel.top1Accuracy : nil), fx(anyCV ? pooledModel.top2Accuracy : nil),
            fx(anyCV ? pooledModel.setRecall(topK: k) : nil), fx(anyCV ? pooledModel.coverage : nil),
            fx(anyCV ? pooledBaseline.top1Accuracy : nil), fx(anyCV ? pooledBaseline.top2Accuracy : nil),
            fx(anyCV ? pooledBaseline.setRecall(topK: k) : nil),
        ])
        predRows.append(["random", fx(chance.top1Accuracy), fx(chance.top2Accuracy), fx(chance.setRecall), "", "", "", ""])
        var tables = [
            ReportTable(
                title: "Same-id rates, layer l -> l+1 (expert ids are not shared across layers: compare with chance)",
                columns: ["layers", "pairs", "skipped", "top-1 same", "overlap fraction", "any overlap", "same set"],
                rows: rateRows
            ),
            ReportTable(
                title: "Mutual information I(top1_l; top1_l+1), bits, with a shuffled-token null (\(nullReplicates) replicates)",
                columns: ["layers", "MI", "null mean ± sd", "excess", "Miller-Madow", "H(top1_l+1 | top1_l)"],
                rows: infoRows
            ),
            ReportTable(
                title: "Next-layer prediction from this layer's top-1, \(F)-fold cross-validation by problem (\(problems.count) problems)",
                columns: ["layers", "top-1 acc", "top-2 acc", "set recall", "coverage", "most-freq top-1", "most-freq top-2", "most-freq set recall"],
                rows: predRows
            ),
        ]
        if E <= 16 {
            tables.append(
                ReportTable(
                    title: "Pooled affinity P(j in S_l+1 | i in S_l) (rows sum to k = \(k); chance \(fx(chance.overlapFraction)) per cell)",
                    columns: ["i \\ j"] + (0..<E).map { "\($0)" },
                    rows: (0..<E).map { i in ["\(i)"] + (0..<E).map { fx(pooledMatrix[i][$0]) } }
                )
            )
        }

        // MARK: Figures
        let labels = (0..<E).map { "\($0)" }
        var figures: [ReportFigure] = results.map { r in
            .heatmap(
                ReportFigure.Heatmap(
                    title: "top-1 layer \(r.layer) -> \(r.layer + 1): P(top1_\(r.layer + 1) = j | top1_\(r.layer) = i)",
                    xLabel: "top-1 expert at layer \(r.layer + 1)", yLabel: "top-1 expert at layer \(r.layer)",
                    rowLabels: labels, columnLabels: labels, values: r.top1.rowNormalized()
                )
            )
        }
        figures.append(
            .heatmap(
                ReportFigure.Heatmap(
                    title: "Pooled affinity P(j in S_l+1 | i in S_l), all layer pairs",
                    xLabel: "expert j at layer l+1", yLabel: "expert i at layer l",
                    rowLabels: labels, columnLabels: labels, values: pooledMatrix
                )
            )
        )
        let xs = results.map { Double($0.layer) }
        figures.append(
            .lines(
                ReportFigure.LineChart(
                    title: "Same-id rates by layer pair, with chance",
                    xLabel: "layer l (pair l -> l+1)", yLabel: "rate",
                    x: xs,
                    series: [
                        .init(name: "top-1 same", values: results.map { $0.rates.share($0.rates.top1Same) ?? .nan }),
                        .init(name: "top-1 same, chance", values: xs.map { _ in chance.top1Same }, dashed: true),
                        .init(name: "overlap fraction", values: results.map { $0.rates.overlapFraction(k: k) ?? .nan }),
                        .init(name: "overlap fraction, chance", values: xs.map { _ in chance.overlapFraction }, dashed: true),
                    ]
                )
            )
        )
        figures.append(
            .lines(
                ReportFigure.LineChart(
                    title: "Mutual information between consecutive top-1 choices, with the shuffled null",
                    xLabel: "layer l (pair l -> l+1)", yLabel: "bits",
                    x: xs,
                    series: [
                        .init(name: "MI", values: results.map { $0.mi }),
                        .init(name: "shuffled null", values: results.map { $0.null.mean }, dashed: true),
                    ]
                )
            )
        )
        figures.append(
            .lines(
                ReportFigure.LineChart(
                    title: "Next-layer top-1 prediction (problem-level CV), with baselines",
                    xLabel: "layer l (predict l+1)", yLabel: "top-1 accuracy",
                    x: xs,
                    series: [
                        .init(name: "top-1 table", values: results.map { $0.cv?.model.top1Accuracy ?? .nan }),
                        .init(name: "most frequent (train)", values: results.map { $0.cv?.baseline.top1Accuracy ?? .nan }, dashed: true),
                        .init(name: "random 1/E", values: xs.map { _ in chance.top1Accuracy }, dashed: true),
                    ]
                )
            )
        )

        // MARK: Headlines and notes
        var headlines = [
            AnalyzerReport.Headline(
                label: "top-1 same id, next layer (pooled)", value: fx(pooledRates.share(pooledRates.top1Same)),
                reference: "chance \(fx(chance.top1Same))"
            ),
            AnalyzerReport.Headline(
                label: "top-\(k) overlap fraction, next layer", value: fx(pooledRates.overlapFraction(k: k)),
                reference: "chance \(fx(chance.overlapFraction))"
            ),
            AnalyzerReport.Headline(
                label: "MI top-1 l -> l+1 (bits, mean over l)", value: fx4(pooledMI),
                reference: "shuffled null \(fx4(pooledNull))"
            ),
        ]
        if anyCV {
            headlines.append(
                AnalyzerReport.Headline(
                    label: "next-layer top-1 prediction (CV by problem)", value: fx(pooledModel.top1Accuracy),
                    reference: "most frequent \(fx(pooledBaseline.top1Accuracy)), random \(fx(chance.top1Accuracy))"
                )
            )
            headlines.append(
                AnalyzerReport.Headline(
                    label: "next-layer set recall (best \(k) guesses)", value: fx(pooledModel.setRecall(topK: k)),
                    reference: "most frequent \(fx(pooledBaseline.setRecall(topK: k))), random \(fx(chance.setRecall))"
                )
            )
        }
        var notes = [
            "Expert ids are local to a layer: same-id rates are only meaningful beside their chance values; the affinity matrix, mutual information and prediction do not assume shared ids.",
            "Affinity P(j in S_l+1 | i in S_l) counts every (i, j) of the two top-\(k) sets; each row sums to k = \(k).",
            "Prediction: problems are split into \(F) folds by (problem id mod \(F) + FNV-1a(domain) mod \(F)) mod \(F); top-1 accuracy = first guess equals the true top-1, top-2 = true top-1 among the two best guesses, set recall = |best \(k) guesses ∩ true set| / \(k). A row unseen in training falls back to the training most frequent expert and is not covered.",
            "Pooled information figures are means over layer pairs weighted by their pair counts; pooled rates and accuracies are micro-averages.",
        ]
        if P == 0 { notes.append("the model has a single layer: there are no layer pairs") }
        if tokens * P > pooledRates.pairs, P > 0 {
            notes.append("\(tokens * P - pooledRates.pairs) of \(tokens * P) layer pairs had a missing layer and were skipped")
        }
        if emptyRowsTotal > 0 {
            notes.append("\(emptyRowsTotal) affinity-matrix rows (over all layer pairs) had no counts and are shown as zeros")
        }
        if !anyCV && P > 0 {
            notes.append(
                "cross-validation needs tokens in at least 2 folds; \(problems.count) problem(s) fill \(foldsWithProblems) fold(s), so prediction figures are null"
            )
        }
        return AnalyzerReport(
            analyzer: "transition", title: Self.title, json: json, tables: tables, figures: figures,
            headlines: headlines, notes: notes
        )
    }

    /// `P(j in S_{l+1} | i in S_l)` from all-combination counts: row i divided by the number of
    /// pairs with i in S_l (row sum / k). Returns the matrix and the rows without counts.
    static func affinityMatrix(_ counts: [Int], experts E: Int, topK k: Int) -> ([[Double]], [Int]) {
        var empty: [Int] = []
        let m: [[Double]] = (0..<E).map { i in
            var s = 0
            for j in 0..<E { s += counts[i * E + j] }
            guard s > 0 else {
                empty.append(i)
                return [Double](repeating: 0, count: E)
            }
            let n = Double(s) / Double(k)
            return (0..<E).map { Double(counts[i * E + $0]) / n }
        }
        return (m, empty)
    }
}
