// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// A predictor's hits kept per problem-level fold, so that every accuracy comes with its spread
/// over folds: the interval is the lowest and highest per-fold value among the folds that held
/// test tokens (a range, not a confidence interval). It needs at least two such folds.
///
/// The tallies are sums of integer counts, so merged and single-pass runs give the same
/// interval.
///
/// ```swift
/// var t = FoldTallies(folds: 5)
/// t[0].predictions = 10; t[0].top1Hits = 4
/// t[3].predictions = 10; t[3].top1Hits = 6
/// t.total.top1Accuracy                    // 0.5
/// t.range { $0.top1Accuracy }             // (low: 0.4, high: 0.6)
/// ```
public struct FoldTallies: Sendable, Equatable {
    /// One tally per fold (empty for a fold without test tokens).
    public var byFold: [PredictionTally]

    /// The method, as written into every `"interval"` JSON object.
    public static let method =
        "range over folds by problem: lowest and highest per-fold value among the folds with test tokens"

    /// `folds` empty tallies.
    public init(folds: Int) { byFold = [PredictionTally](repeating: PredictionTally(), count: max(0, folds)) }

    /// The tally of one fold.
    public subscript(fold: Int) -> PredictionTally {
        get { byFold[fold] }
        set { byFold[fold] = newValue }
    }

    /// The sum over folds: the cross-validated figure.
    public var total: PredictionTally { byFold.reduce(PredictionTally(), +) }

    /// Folds holding at least one prediction.
    public var foldsWithData: Int { byFold.reduce(0) { $0 + ($1.predictions > 0 ? 1 : 0) } }

    /// Adds another set of per-fold tallies fold by fold (the larger fold count wins).
    public static func += (a: inout FoldTallies, b: FoldTallies) {
        if a.byFold.count < b.byFold.count {
            a.byFold += [PredictionTally](repeating: PredictionTally(), count: b.byFold.count - a.byFold.count)
        }
        for (f, t) in b.byFold.enumerated() { a.byFold[f] += t }
    }

    /// The lowest and highest value of `metric` over folds with predictions; nil with fewer
    /// than two such folds.
    public func range(_ metric: (PredictionTally) -> Double?) -> (low: Double, high: Double)? {
        let values = byFold.filter { $0.predictions > 0 }.compactMap(metric)
        guard values.count >= 2, let lo = values.min(), let hi = values.max() else { return nil }
        return (lo, hi)
    }

    /// `{"low", "high"}` of a metric, or null.
    public func rangeJSON(_ metric: (PredictionTally) -> Double?) -> ReportValue {
        guard let r = range(metric) else { return .null }
        return .object([.init("low", .number(r.low)), .init("high", .number(r.high))])
    }

    /// The `"interval"` object of a prediction: `{"method", "folds_with_data", "top1_accuracy":
    /// {"low", "high"}, "top2_accuracy": {...}, "set_recall": {...}}` (set recall null when
    /// `hasSetRecall` is false); with fewer than two folds holding test tokens, the ranges are
    /// null and `"insufficient"` says why.
    public func intervalJSON(topK: Int, hasSetRecall: Bool = true, problems: Int) -> ReportValue {
        var m: [ReportValue.Member] = [
            .init("method", .string(Self.method)),
            .init("folds_with_data", .int(foldsWithData)),
            .init("top1_accuracy", rangeJSON { $0.top1Accuracy }),
            .init("top2_accuracy", rangeJSON { $0.top2Accuracy }),
            .init("set_recall", hasSetRecall ? rangeJSON { $0.setRecall(topK: topK) } : .null),
        ]
        if foldsWithData < 2 {
            m.append(.init(Insufficient.key, .string(Insufficient.folds(problems: problems, filled: foldsWithData))))
        }
        return .object(m)
    }

    /// The lower and upper ends of a metric's range for a chart (NaN when there is none).
    public func bounds(_ metric: (PredictionTally) -> Double?) -> (lower: Double, upper: Double) {
        guard let r = range(metric) else { return (.nan, .nan) }
        return (r.low, r.high)
    }

    /// A short "range a-b over folds" text for tables, "-" when there is none.
    public func rangeText(_ metric: (PredictionTally) -> Double?, digits: Int = 3) -> String {
        guard let r = range(metric) else { return "-" }
        return ReportFormat.fixed(r.low, digits) + "–" + ReportFormat.fixed(r.high, digits)
    }
}
