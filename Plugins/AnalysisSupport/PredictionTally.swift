// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Hits of a predictor of an expert, summed over test tokens.
///
/// - top-1 accuracy: the first guess equals the true top-1;
/// - top-2 accuracy (the seed's meaning): the true top-1 is among the two best guesses;
/// - set recall: `|best k guesses ∩ true top-k set| / k`, what an expert prefetcher needs;
/// - coverage: the share of predictions made from a fitted row rather than a fallback.
///
/// ```swift
/// var t = PredictionTally()
/// t.predictions += 10; t.top1Hits += 4
/// t.top1Accuracy   // 0.4
/// ```
public struct PredictionTally: Sendable, Equatable {
    /// Test tokens predicted.
    public var predictions = 0
    /// Predictions whose first guess was the true top-1.
    public var top1Hits = 0
    /// Predictions whose true top-1 was among the first two guesses.
    public var top2Hits = 0
    /// Sum over predictions of `|best k guesses ∩ true set|`.
    public var setHits = 0
    /// Predictions made from a fitted context (not a fallback).
    public var covered = 0

    /// An empty tally.
    public init() {}

    /// Top-1 accuracy, nil without predictions.
    public var top1Accuracy: Double? { ratio(top1Hits) }
    /// Top-2 accuracy, nil without predictions.
    public var top2Accuracy: Double? { ratio(top2Hits) }
    /// Coverage, nil without predictions.
    public var coverage: Double? { ratio(covered) }
    /// Set recall for top-`topK` sets, nil without predictions.
    public func setRecall(topK: Int) -> Double? {
        predictions > 0 && topK > 0 ? Double(setHits) / Double(predictions * topK) : nil
    }

    private func ratio(_ x: Int) -> Double? { predictions > 0 ? Double(x) / Double(predictions) : nil }

    /// Adds another tally.
    public static func += (a: inout PredictionTally, b: PredictionTally) {
        a.predictions += b.predictions
        a.top1Hits += b.top1Hits
        a.top2Hits += b.top2Hits
        a.setHits += b.setHits
        a.covered += b.covered
    }

    /// The sum of two tallies.
    public static func + (a: PredictionTally, b: PredictionTally) -> PredictionTally {
        var c = a
        c += b
        return c
    }

    /// `{"top1_accuracy", "top2_accuracy", "set_recall"[, "coverage"]}`; set recall is null when
    /// `hasSetRecall` is false, every value null without predictions.
    public func json(topK: Int, hasSetRecall: Bool = true, includeCoverage: Bool = false) -> ReportValue {
        var m: [ReportValue.Member] = [
            .init("top1_accuracy", .number(top1Accuracy)),
            .init("top2_accuracy", .number(top2Accuracy)),
            .init("set_recall", hasSetRecall ? .number(setRecall(topK: topK)) : .null),
        ]
        if includeCoverage { m.append(.init("coverage", .number(coverage))) }
        return .object(m)
    }
}
