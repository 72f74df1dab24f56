// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// AnalysisSupport: statistics shared by the analyzer plugins (chance values, information
// measures, contingency tables and their shuffled nulls, problem-level folds, per-problem counts,
// count-table predictors and their cross-validation, per-fold tallies for the spread of an
// accuracy over folds, and the "insufficient" reasons of statistics that cannot be computed).

/// What the same-id figures would be if two layers chose their top-k sets independently and
/// uniformly at random: the chance level every same-id rate is reported beside.
///
/// For E experts and top-k: top-1 equal `1/E`; mean overlap fraction `|S ∩ S'|/k` is `k/E`;
/// any overlap `1 - C(E-k, k)/C(E, k)`; identical sets `1/C(E, k)`. Binomial ratios are computed
/// as exact products, so no factorial overflows.
///
/// ```swift
/// let c = ChanceRates(experts: 8, topK: 2)
/// // c.top1Same == 0.125, c.overlapFraction == 0.25, c.anyOverlap == 13/28, c.setSame == 1/28
/// ```
public struct ChanceRates: Sendable, Equatable {
    /// Number of experts (E).
    public let experts: Int
    /// Experts selected per layer (k).
    public let topK: Int
    /// Probability that two uniform top-1 picks are equal: `1/E`.
    public let top1Same: Double
    /// Expected `|S ∩ S'| / k` for two uniform k-sets: `k/E`.
    public let overlapFraction: Double
    /// Probability that two uniform k-sets intersect: `1 - C(E-k, k)/C(E, k)`.
    public let anyOverlap: Double
    /// Probability that two uniform k-sets are equal: `1/C(E, k)`.
    public let setSame: Double
    /// Random top-1 accuracy of a predictor: `1/E`.
    public let top1Accuracy: Double
    /// Random "top-2" accuracy (the true top-1 among two uniform distinct guesses): `min(2, E)/E`.
    public let top2Accuracy: Double
    /// Random set recall of k uniform distinct guesses against a k-set: `k/E`.
    public let setRecall: Double

    /// Chance values for `experts` experts and top-`topK` (1 <= topK <= experts).
    public init(experts: Int, topK: Int) {
        let e = max(1, experts)
        let k = min(max(1, topK), e)
        self.experts = e
        self.topK = k
        top1Same = 1 / Double(e)
        overlapFraction = Double(k) / Double(e)
        // C(E-k, k) / C(E, k) = prod_{i<k} (E-k-i) / (E-i); zero when E-k < k.
        var disjoint = 1.0
        if e - k < k {
            disjoint = 0
        } else {
            for i in 0..<k { disjoint *= Double(e - k - i) / Double(e - i) }
        }
        anyOverlap = 1 - disjoint
        setSame = Self.inverseBinomial(e, k)
        top1Accuracy = 1 / Double(e)
        top2Accuracy = Double(min(2, e)) / Double(e)
        setRecall = Double(k) / Double(e)
    }

    /// `1 / C(n, r)` as the exact product `prod_{i<r} (i+1)/(n-i)`.
    public static func inverseBinomial(_ n: Int, _ r: Int) -> Double {
        guard r >= 0, r <= n else { return 0 }
        let rr = min(r, n - r)
        var x = 1.0
        for i in 0..<rr { x *= Double(i + 1) / Double(n - i) }
        return x
    }
}
