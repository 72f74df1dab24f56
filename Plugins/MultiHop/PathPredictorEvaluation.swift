// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting

/// Cross-validates the path predictor from its per-fold context tables.
///
/// The stored table of order c, target layer t (1..L-1), fold f, context x, target expert e counts
/// tokens of fold f whose top-1 at t is e and whose **longest** hole-free context has c layers,
/// with top-1 at layers t-1, ..., t-c the digits of x (base E, layer t-1 least significant).
/// Order 0 has one context. The table of all tokens having a context x of order c (whatever
/// longer context they also have) is the stored one plus the sums over x's one-layer extensions.
///
/// A test token is predicted from its longest hole-free context (at most the effective order);
/// if the training folds never saw that context, the predictor backs off to shorter suffixes,
/// then to the training most frequent expert of layer t.
struct PathPredictorEvaluation {
    let layers: Int
    let experts: Int
    let folds: Int
    let order: Int
    let counts: CounterBuffer
    let orderOffset: [Int]

    struct TargetResult {
        var layer: Int
        /// Tallies by the order that answered (index 0 = fallback).
        var byOrder: [PredictionTally]
        var total: PredictionTally
        var baseline: PredictionTally
        /// `total` and `baseline` per fold, for the spread over folds.
        var totalByFold: FoldTallies
        var baselineByFold: FoldTallies
        /// Tokens with a top-1 at the target layer, and the folds they fill.
        var tokensAtTarget = 0
        var foldsAtTarget = 0
    }

    struct Result {
        var order: Int
        var folds: Int
        var byTarget: [TargetResult]
        var byOrder: [PredictionTally]
        var total: PredictionTally
        var baseline: PredictionTally
        var totalByFold: FoldTallies
        var baselineByFold: FoldTallies

        struct OrderRow {
            var label: String
            var share: Double?
            var accuracy: Double?
        }

        func orderRows(maxOrder: Int) -> [OrderRow] {
            var rows: [OrderRow] = []
            for c in stride(from: max(maxOrder, order), through: 1, by: -1) {
                let t = c < byOrder.count ? byOrder[c] : PredictionTally()
                rows.append(OrderRow(label: "order_\(c)", share: share(t), accuracy: t.top1Accuracy))
            }
            let fb = byOrder.first ?? PredictionTally()
            rows.append(OrderRow(label: "fallback", share: share(fb), accuracy: fb.top1Accuracy))
            return rows
        }

        private func share(_ t: PredictionTally) -> Double? {
            total.predictions > 0 ? Double(t.predictions) / Double(total.predictions) : nil
        }

        /// Whether the predictor's top-1 accuracy is below the most-frequent baseline's.
        var belowBaseline: Bool? {
            guard let m = total.top1Accuracy, let b = baseline.top1Accuracy else { return nil }
            return m < b
        }

        /// The JSON object; `problems` names the problem count in an interval's reason, and
        /// `insufficient` (when the predictor made no predictions) says why.
        func json(maxOrder: Int, chance: ChanceRates, problems: Int, insufficient: String?) -> ReportValue {
            let rows = orderRows(maxOrder: maxOrder)
            func coverageJSON(_ r: TargetResult) -> ReportValue {
                var m: [ReportValue.Member] = []
                for c in stride(from: max(maxOrder, order), through: 1, by: -1) {
                    let t = c < r.byOrder.count ? r.byOrder[c] : PredictionTally()
                    m.append(
                        .init(
                            "order_\(c)",
                            .number(r.total.predictions > 0 ? Double(t.predictions) / Double(r.total.predictions) : nil)
                        )
                    )
                }
                let fb = r.byOrder.first ?? PredictionTally()
                m.append(
                    .init(
                        "fallback",
                        .number(r.total.predictions > 0 ? Double(fb.predictions) / Double(r.total.predictions) : nil)
                    )
                )
                return .object(m)
            }
            func interval(_ t: FoldTallies, _ n: Int) -> ReportValue {
                n > 0 ? t.intervalJSON(topK: 1, hasSetRecall: false, problems: problems) : .null
            }
            let baselineJSON: (PredictionTally, FoldTallies) -> ReportValue = { b, folds in
                .object([
                    .init("top1_accuracy", .number(b.top1Accuracy)), .init("top2_accuracy", .number(b.top2Accuracy)),
                    .init("interval", interval(folds, b.predictions)),
                ])
            }
            var members: [ReportValue.Member] = [
                .init("max_order", .int(maxOrder)),
                .init("effective_max_order", .int(order)),
                .init("predictions", .int(total.predictions)),
                .init("accuracy", .number(total.top1Accuracy)),
                .init("top2_accuracy", .number(total.top2Accuracy)),
                .init("coverage", .number(total.coverage)),
                .init("interval", interval(totalByFold, total.predictions)),
                .init("order_coverage", .object(rows.map { .init($0.label, .number($0.share)) })),
                .init("order_accuracy", .object(rows.map { .init($0.label, .number($0.accuracy)) })),
                .init("baseline_most_frequent", baselineJSON(baseline, baselineByFold)),
                .init(
                    "random",
                    .object([
                        .init("top1_accuracy", .number(chance.top1Accuracy)),
                        .init("top2_accuracy", .number(chance.top2Accuracy)),
                    ])
                ),
                .init("folds", .int(folds)),
                .init("below_baseline", belowBaseline.map(ReportValue.bool) ?? .null),
                .init(
                    "by_target_layer",
                    .array(
                        byTarget.map { r in
                            var m: [ReportValue.Member] = [
                                .init("layer", .int(r.layer)),
                                .init("predictions", .int(r.total.predictions)),
                                .init("top1_accuracy", .number(r.total.top1Accuracy)),
                                .init("top2_accuracy", .number(r.total.top2Accuracy)),
                                .init("coverage", .number(r.total.coverage)),
                                .init("interval", interval(r.totalByFold, r.total.predictions)),
                                .init("order_coverage", coverageJSON(r)),
                                .init("baseline_most_frequent", baselineJSON(r.baseline, r.baselineByFold)),
                            ]
                            if r.total.predictions == 0 {
                                let reason =
                                    r.tokensAtTarget == 0
                                    ? Insufficient.noRows(layer: r.layer)
                                    : Insufficient.folds(problems: problems, filled: r.foldsAtTarget)
                                m.append(.init(Insufficient.key, .string(reason)))
                            }
                            return .object(m)
                        }
                    )
                ),
            ]
            if let insufficient, total.predictions == 0 {
                members.append(.init(Insufficient.key, .string(insufficient)))
            }
            return .object(members)
        }
    }

    func run() -> Result {
        let L = layers
        let E = experts
        let F = folds
        var powers = [1]
        for _ in 0..<max(0, order) { powers.append(powers.last! * E) }
        // Index of the stored (order c, target t, context x, fold f, expert e); layout [c][t][f][x][e].
        func index(_ c: Int, _ t: Int, _ x: Int, _ f: Int, _ e: Int) -> Int {
            orderOffset[c] + ((((t - 1) * F + f) * powers[c]) + x) * E + e
        }
        var byTarget: [TargetResult] = []
        var byOrderAll = [PredictionTally](repeating: PredictionTally(), count: order + 1)
        var totalAll = PredictionTally()
        var baselineAll = PredictionTally()
        var totalAllByFold = FoldTallies(folds: F)
        var baselineAllByFold = FoldTallies(folds: F)
        var exact = [Int](repeating: 0, count: E)
        var train = [Int](repeating: 0, count: E)
        for t in 1..<max(1, L) where !orderOffset.isEmpty {
            let cmax = min(t, order)
            // Cumulative tables of this target: tokens having context x of order c.
            var cumulative: [[Int]] = (0...cmax).map { [Int](repeating: 0, count: F * powers[$0] * E) }
            for c in stride(from: cmax, through: 0, by: -1) {
                for f in 0..<F {
                    for x in 0..<powers[c] {
                        for e in 0..<E {
                            var v = counts[index(c, t, x, f, e)]
                            if c < cmax {
                                for ext in 0..<E {
                                    v += cumulative[c + 1][(f * powers[c + 1] + x + ext * powers[c]) * E + e]
                                }
                            }
                            cumulative[c][(f * powers[c] + x) * E + e] = v
                        }
                    }
                }
            }
            func total(_ c: Int, _ x: Int, _ f: Int, _ e: Int) -> Int { cumulative[c][(f * powers[c] + x) * E + e] }
            var foldTotals = [Int](repeating: 0, count: F)
            for f in 0..<F {
                for e in 0..<E { foldTotals[f] += total(0, 0, f, e) }
            }
            var result = TargetResult(
                layer: t,
                byOrder: [PredictionTally](repeating: PredictionTally(), count: order + 1),
                total: PredictionTally(),
                baseline: PredictionTally(),
                totalByFold: FoldTallies(folds: F),
                baselineByFold: FoldTallies(folds: F)
            )
            result.tokensAtTarget = foldTotals.reduce(0, +)
            result.foldsAtTarget = foldTotals.filter { $0 > 0 }.count
            guard result.foldsAtTarget >= 2 else {
                byTarget.append(result)
                continue
            }
            // Training row (all folds but f) of order c, context x, into `train`; returns its sum.
            func trainingRow(_ c: Int, _ x: Int, _ f: Int) -> Int {
                var s = 0
                for e in 0..<E {
                    var v = 0
                    for g in 0..<F where g != f { v += total(c, x, g, e) }
                    train[e] = v
                    s += v
                }
                return s
            }
            for f in 0..<F where foldTotals[f] > 0 {
                _ = trainingRow(0, 0, f)
                let fallback = CountTablePredictor.ranking(train, limit: 2)
                for c in stride(from: cmax, through: 0, by: -1) {
                    for x in 0..<powers[c] {
                        var n = 0
                        for e in 0..<E {
                            exact[e] = counts[index(c, t, x, f, e)]
                            n += exact[e]
                        }
                        guard n > 0 else { continue }
                        var guesses = fallback
                        var answered = 0
                        var cc = c
                        while cc >= 1 {
                            if trainingRow(cc, x % powers[cc], f) > 0 {
                                guesses = CountTablePredictor.ranking(train, limit: 2)
                                answered = cc
                                break
                            }
                            cc -= 1
                        }
                        var tally = PredictionTally()
                        tally.predictions = n
                        if answered > 0 { tally.covered = n }
                        if let g = guesses.first { tally.top1Hits = exact[g] }
                        for g in guesses.prefix(2) { tally.top2Hits += exact[g] }
                        result.byOrder[answered] += tally
                        result.total += tally
                        result.totalByFold[f] += tally
                        var base = PredictionTally()
                        base.predictions = n
                        base.covered = n
                        if let g = fallback.first { base.top1Hits = exact[g] }
                        for g in fallback.prefix(2) { base.top2Hits += exact[g] }
                        result.baseline += base
                        result.baselineByFold[f] += base
                    }
                }
            }
            for c in 0...order { byOrderAll[c] += result.byOrder[c] }
            totalAll += result.total
            baselineAll += result.baseline
            totalAllByFold += result.totalByFold
            baselineAllByFold += result.baselineByFold
            byTarget.append(result)
        }
        return Result(
            order: order,
            folds: F,
            byTarget: byTarget,
            byOrder: byOrderAll,
            total: totalAll,
            baseline: baselineAll,
            totalByFold: totalAllByFold,
            baselineByFold: baselineAllByFold
        )
    }
}
