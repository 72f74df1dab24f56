// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The next-layer top-1 predictor the domain comparator fits on one domain and scores on another,
// and its problem-level cross-validation within a domain.

/// The next-layer top-1 predictor: for layer pair `l -> l+1`, the prediction for top-1 expert `i`
/// at `l` is the argmax over `j` of the training count of (top1_l = i, top1_{l+1} = j), ties to
/// the lowest id. A row never seen in training falls back to the training split's most frequent
/// top-1 expert of layer `l+1` (ties to the lowest id; expert 0 when the split has no record at
/// `l+1`).
struct NextLayerPredictor {
    let layers: Int
    let experts: Int
    /// Prediction per (l, i): [(L-1)][E].
    let prediction: [Int]
    /// Whether row (l, i) had training counts.
    let seen: [Bool]
    /// The most frequent top-1 expert of layer l+1, per layer pair.
    let mostFrequent: [Int]

    /// Fits from top-1 -> top-1 counts `pairs` [(L-1)][E][E] and top-1 counts `top1` [L][E].
    init(pairs: [Double], top1: [Double], layers: Int, experts: Int) {
        let E = experts
        self.layers = layers
        self.experts = experts
        var prediction = [Int](repeating: 0, count: (layers - 1) * E)
        var seen = [Bool](repeating: false, count: (layers - 1) * E)
        var mostFrequent = [Int](repeating: 0, count: max(0, layers - 1))
        for l in 0..<(layers - 1) {
            var best = 0
            for j in 0..<E where top1[(l + 1) * E + j] > top1[(l + 1) * E + best] { best = j }
            mostFrequent[l] = best
            for i in 0..<E {
                let row = (l * E + i) * E
                var arg = 0
                var rowSum = 0.0
                for j in 0..<E {
                    rowSum += pairs[row + j]
                    if pairs[row + j] > pairs[row + arg] { arg = j }
                }
                seen[l * E + i] = rowSum > 0
                prediction[l * E + i] = rowSum > 0 ? arg : best
            }
        }
        self.prediction = prediction
        self.seen = seen
        self.mostFrequent = mostFrequent
    }

    /// Scores the predictor on test counts [(L-1)][E][E] and adds the result into `score`.
    func score(_ test: [Double], into score: inout TransferScore) {
        let E = experts
        for l in 0..<(layers - 1) {
            for i in 0..<E {
                let row = (l * E + i) * E
                var rowSum = 0.0
                for j in 0..<E { rowSum += test[row + j] }
                guard rowSum > 0 else { continue }
                score.total[l] += rowSum
                score.correct[l] += test[row + prediction[l * E + i]]
                score.baseline[l] += test[row + mostFrequent[l]]
                if seen[l * E + i] { score.covered[l] += rowSum }
            }
        }
    }
}

/// Top-1 prediction counts per layer pair, pooled over folds.
struct TransferScore {
    /// Test (token, l) pairs with both layers present.
    var total: [Double]
    /// Pairs predicted right.
    var correct: [Double]
    /// Pairs the most-frequent baseline got right.
    var baseline: [Double]
    /// Pairs whose layer-l top-1 row was seen in training.
    var covered: [Double]

    init(layerPairs: Int) {
        total = [Double](repeating: 0, count: layerPairs)
        correct = total
        baseline = total
        covered = total
    }

    private static func ratio(_ a: [Double], _ b: [Double]) -> Double {
        let d = b.reduce(0, +)
        return d > 0 ? a.reduce(0, +) / d : .nan
    }

    /// Accuracy pooled over layer pairs.
    var accuracy: Double { Self.ratio(correct, total) }
    /// Baseline accuracy pooled over layer pairs.
    var baselineAccuracy: Double { Self.ratio(baseline, total) }
    /// Coverage pooled over layer pairs.
    var coverage: Double { Self.ratio(covered, total) }
    /// Accuracy of each layer pair.
    var accuracyByPair: [Double] { zip(correct, total).map { $1 > 0 ? $0 / $1 : .nan } }
    /// Baseline accuracy of each layer pair.
    var baselineByPair: [Double] { zip(baseline, total).map { $1 > 0 ? $0 / $1 : .nan } }
    /// Pairs evaluated in all.
    var evaluated: Int { Int(total.reduce(0, +)) }
}
