// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A lookup predictor fitted on a count table (row = what is known, for example the top-1 of
/// layer l; column = the expert to predict, for example the top-1 of layer l+1), and its
/// problem-level cross-validation from per-fold tables.
///
/// Guesses for a row are its columns by training count, highest first, ties to the lowest
/// column. A row without training counts falls back to the training column totals (the most
/// frequent target expert), and such a prediction is not covered. The baseline predicts the
/// most frequent target experts for every row.
///
/// ```swift
/// // per-fold top-1 -> top-1 tables and membership tables (row = top1_l, column j counts test
/// // tokens with j in S_{l+1}) for 5 folds:
/// if let cv = CountTablePredictor.crossValidate(top1: foldTables, membership: foldMembership, topK: 2) {
///     print(cv.model.top1Accuracy!, cv.baseline.top1Accuracy!)
/// }
/// let guesses = CountTablePredictor.ranking([3, 9, 9, 0], limit: 2)   // [1, 2]
/// ```
public enum CountTablePredictor {
    /// The indices of the `limit` largest counts, highest first, ties to the lowest index.
    ///
    /// - Complexity: O(n x limit).
    public static func ranking(_ counts: [Int], limit: Int) -> [Int] {
        counts.withUnsafeBufferPointer { ranking($0, limit: limit) }
    }

    /// The indices of the `limit` largest counts of a buffer, highest first, ties to the lowest.
    public static func ranking(_ counts: UnsafeBufferPointer<Int>, limit: Int) -> [Int] {
        let m = min(max(0, limit), counts.count)
        var chosen: [Int] = []
        chosen.reserveCapacity(m)
        for _ in 0..<m {
            var best = -1
            var bestCount = Int.min
            for j in 0..<counts.count where counts[j] > bestCount && !chosen.contains(j) {
                best = j
                bestCount = counts[j]
            }
            if best < 0 { break }
            chosen.append(best)
        }
        return chosen
    }

    /// The result of a cross-validation.
    public struct CrossValidation: Sendable, Equatable {
        /// The fitted table's predictions on held-out folds.
        public var model: PredictionTally
        /// The most-frequent-target baseline fitted on the same training folds.
        public var baseline: PredictionTally
        /// Folds that held test data.
        public var foldsWithData: Int
        /// The model's hits per fold (their sum is ``model``), for the spread over folds.
        public var modelByFold: FoldTallies
        /// The baseline's hits per fold (their sum is ``baseline``).
        public var baselineByFold: FoldTallies
    }

    /// Adds the hits of predicting one test row with `guesses` (best first).
    ///
    /// - Parameters:
    ///   - testTop1: counts of the test row's true top-1 per column.
    ///   - testMembership: counts of test tokens of this row having each column in their true
    ///     set, or nil when set recall is not measured.
    @inlinable
    public static func tally(
        _ t: inout PredictionTally,
        guesses: [Int],
        testTop1: UnsafeBufferPointer<Int>,
        testMembership: UnsafeBufferPointer<Int>?,
        topK: Int,
        covered: Bool
    ) {
        var n = 0
        for x in testTop1 { n += x }
        guard n > 0 else { return }
        t.predictions += n
        if covered { t.covered += n }
        if let g0 = guesses.first { t.top1Hits += testTop1[g0] }
        for g in guesses.prefix(2) { t.top2Hits += testTop1[g] }
        if let m = testMembership {
            for g in guesses.prefix(topK) { t.setHits += m[g] }
        }
    }

    /// Cross-validates the row -> column lookup: for each fold with test counts, fits on the sum
    /// of the other folds' tables and predicts that fold's tokens.
    ///
    /// - Parameters:
    ///   - top1: one table per fold (all the same size); cell (i, j) counts tokens of that fold
    ///     with row value i and true top-1 j.
    ///   - membership: one table per fold, cell (i, j) counting tokens with row value i and j in
    ///     their true top-k set; nil leaves set hits at 0.
    ///   - topK: k, for the number of guesses scored by set recall.
    /// - Returns: nil when fewer than two folds hold data (cross-validation is impossible).
    public static func crossValidate(
        top1: [ContingencyTable],
        membership: [ContingencyTable]?,
        topK: Int
    ) -> CrossValidation? {
        guard let first = top1.first else { return nil }
        let rows = first.rows
        let cols = first.columns
        let foldTotals = top1.map { $0.total }
        let withData = foldTotals.filter { $0 > 0 }.count
        guard withData >= 2 else { return nil }
        var all = ContingencyTable(rows: rows, columns: cols)
        for t in top1 { all.add(t) }
        let limit = max(2, topK)
        var modelByFold = FoldTallies(folds: top1.count)
        var baselineByFold = FoldTallies(folds: top1.count)
        var train = [Int](repeating: 0, count: rows * cols)
        var columnTotals = [Int](repeating: 0, count: cols)
        for (f, test) in top1.enumerated() where foldTotals[f] > 0 {
            for i in 0..<(rows * cols) { train[i] = all.counts[i] - test.counts[i] }
            for j in 0..<cols { columnTotals[j] = 0 }
            for i in 0..<rows {
                for j in 0..<cols { columnTotals[j] += train[i * cols + j] }
            }
            let fallback = ranking(columnTotals, limit: limit)
            let member = membership.flatMap { f < $0.count ? $0[f] : nil }
            var model = PredictionTally()
            var baseline = PredictionTally()
            test.counts.withUnsafeBufferPointer { testBuf in
                train.withUnsafeBufferPointer { trainBuf in
                    for i in 0..<rows {
                        let lo = i * cols
                        let testRow = UnsafeBufferPointer(rebasing: testBuf[lo..<(lo + cols)])
                        let trainRow = UnsafeBufferPointer(rebasing: trainBuf[lo..<(lo + cols)])
                        var fitted = 0
                        for x in trainRow { fitted += x }
                        let guesses = fitted > 0 ? ranking(trainRow, limit: limit) : fallback
                        if let member {
                            member.counts.withUnsafeBufferPointer { mb in
                                let memberRow = UnsafeBufferPointer(rebasing: mb[lo..<(lo + cols)])
                                tally(
                                    &model,
                                    guesses: guesses,
                                    testTop1: testRow,
                                    testMembership: memberRow,
                                    topK: topK,
                                    covered: fitted > 0
                                )
                                tally(
                                    &baseline,
                                    guesses: fallback,
                                    testTop1: testRow,
                                    testMembership: memberRow,
                                    topK: topK,
                                    covered: true
                                )
                            }
                        } else {
                            tally(
                                &model,
                                guesses: guesses,
                                testTop1: testRow,
                                testMembership: nil,
                                topK: topK,
                                covered: fitted > 0
                            )
                            tally(
                                &baseline,
                                guesses: fallback,
                                testTop1: testRow,
                                testMembership: nil,
                                topK: topK,
                                covered: true
                            )
                        }
                    }
                }
            }
            modelByFold[f] = model
            baselineByFold[f] = baseline
        }
        return CrossValidation(
            model: modelByFold.total,
            baseline: baselineByFold.total,
            foldsWithData: withData,
            modelByFold: modelByFold,
            baselineByFold: baselineByFold
        )
    }
}
