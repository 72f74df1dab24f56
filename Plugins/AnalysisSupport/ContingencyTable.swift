// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A two-way table of counts (rows x columns, row-major), with the information measures
/// analyzers report for it: mutual information, conditional entropy, a Miller–Madow correction and
/// a shuffled-token null.
///
/// ```swift
/// let t = ContingencyTable(rows: 2, columns: 2, counts: [2, 0, 0, 2])
/// t.mutualInformationBits            // 1.0
/// t.conditionalEntropyBits           // 0.0  (H(column | row))
/// let null = t.shuffledNull(replicates: 20, seed: 7)   // mean MI with the same margins
/// ```
public struct ContingencyTable: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns.
    public let columns: Int
    /// Counts, row-major: `counts[r * columns + c]`.
    public var counts: [Int]

    /// An all-zero table.
    public init(rows: Int, columns: Int) {
        self.rows = max(0, rows)
        self.columns = max(0, columns)
        counts = [Int](repeating: 0, count: self.rows * self.columns)
    }

    /// A table from row-major counts; `counts.count` must be `rows * columns` (extra values are
    /// dropped, missing ones read as 0).
    public init(rows: Int, columns: Int, counts: [Int]) {
        self.init(rows: rows, columns: columns)
        for i in 0..<min(counts.count, self.counts.count) { self.counts[i] = counts[i] }
    }

    /// The count in one cell.
    @inlinable public subscript(row: Int, column: Int) -> Int {
        get { counts[row * columns + column] }
        set { counts[row * columns + column] = newValue }
    }

    /// The sum of all counts.
    public var total: Int { counts.reduce(0, +) }

    /// The sum of each row.
    public var rowTotals: [Int] {
        var t = [Int](repeating: 0, count: rows)
        for r in 0..<rows {
            var s = 0
            for c in 0..<columns { s += counts[r * columns + c] }
            t[r] = s
        }
        return t
    }

    /// The sum of each column.
    public var columnTotals: [Int] {
        var t = [Int](repeating: 0, count: columns)
        for r in 0..<rows {
            for c in 0..<columns { t[c] += counts[r * columns + c] }
        }
        return t
    }

    /// One row of counts.
    public func row(_ r: Int) -> [Int] { Array(counts[(r * columns)..<((r + 1) * columns)]) }

    /// Adds another table of the same size cell by cell.
    public mutating func add(_ other: ContingencyTable) {
        precondition(other.rows == rows && other.columns == columns, "table sizes differ")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    /// Rows scaled to sum to 1; a row without counts stays all zero.
    public func rowNormalized() -> [[Double]] {
        let totals = rowTotals
        return (0..<rows).map { r in
            let t = totals[r]
            return (0..<columns).map { c in t > 0 ? Double(counts[r * columns + c]) / Double(t) : 0 }
        }
    }

    /// The counts as rows of integers.
    public var matrix: [[Int]] { (0..<rows).map { row($0) } }

    /// Entropy in bits of the row variable.
    public var rowEntropyBits: Double { InformationTheory.entropyBits(rowTotals) }

    /// Entropy in bits of the column variable.
    public var columnEntropyBits: Double { InformationTheory.entropyBits(columnTotals) }

    /// Joint entropy in bits.
    public var jointEntropyBits: Double { InformationTheory.entropyBits(counts) }

    /// Plug-in mutual information in bits between the row and column variables:
    /// `sum p(r,c) log2(p(r,c) / (p(r) p(c)))`. 0 for an empty table.
    public var mutualInformationBits: Double {
        let n = total
        guard n > 0 else { return 0 }
        let rt = rowTotals
        let ct = columnTotals
        let dn = Double(n)
        var mi = 0.0
        for r in 0..<rows where rt[r] > 0 {
            for c in 0..<columns {
                let x = counts[r * columns + c]
                guard x > 0 else { continue }
                mi += Double(x) * log2(Double(x) * dn / (Double(rt[r]) * Double(ct[c])))
            }
        }
        return max(0, mi / dn)
    }

    /// Conditional entropy in bits of the column variable given the row variable,
    /// `H(column | row) = H(row, column) - H(row)`.
    public var conditionalEntropyBits: Double { max(0, jointEntropyBits - rowEntropyBits) }

    /// Mutual information with each entropy Miller–Madow corrected: the plug-in value plus
    /// `((m_r - 1) + (m_c - 1) - (m_rc - 1)) / (2 n ln 2)`, m counting non-empty cells.
    /// It can be slightly negative when there is no dependence.
    public var millerMadowMutualInformationBits: Double {
        let n = total
        guard n > 0 else { return 0 }
        let mr = rowTotals.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        let mc = columnTotals.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        let mrc = counts.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        return mutualInformationBits + Double((mr - 1) + (mc - 1) - (mrc - 1)) / (2 * Double(n) * log(2.0))
    }

    /// The mean and standard deviation of a statistic over tables drawn at random with this
    /// table's row and column totals.
    public struct NullDistribution: Sendable, Equatable {
        /// Mean over replicates.
        public var mean: Double
        /// Sample standard deviation over replicates (0 with fewer than 2).
        public var standardDeviation: Double
        /// Number of replicates.
        public var replicates: Int

        /// Creates a summary.
        public init(mean: Double, standardDeviation: Double, replicates: Int) {
            self.mean = mean
            self.standardDeviation = standardDeviation
            self.replicates = replicates
        }
    }

    /// The shuffled-token null of the mutual information: each replicate pairs the row labels of
    /// the n observations with a uniformly random permutation of their column labels (same
    /// margins, no dependence), drawn exactly as a sequence of hypergeometric draws in
    /// O(rows x columns x sd) time, without materialising the n labels.
    ///
    /// Deterministic for a given seed.
    ///
    /// - Complexity: O(replicates x rows x columns x sqrt(n)) at worst.
    public func shuffledNull(replicates: Int, seed: UInt64) -> NullDistribution {
        var rng = SeededRandom(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(max(0, replicates))
        for _ in 0..<max(0, replicates) { values.append(randomTableWithSameMargins(using: &rng).mutualInformationBits) }
        return Self.summarize(values)
    }

    /// A table drawn uniformly among pairings of the row labels with a random permutation of the
    /// column labels: the same row and column totals, independent variables.
    public func randomTableWithSameMargins(using rng: inout SeededRandom) -> ContingencyTable {
        var out = ContingencyTable(rows: rows, columns: columns)
        var remainingColumns = columnTotals
        var remaining = remainingColumns.reduce(0, +)
        let rt = rowTotals
        for r in 0..<rows where rt[r] > 0 {
            var draws = rt[r]
            var pool = remaining
            for c in 0..<columns {
                if draws == 0 { break }
                let available = remainingColumns[c]
                let x: Int
                if c == columns - 1 {
                    x = draws
                } else {
                    x = Hypergeometric.sample(population: pool, successes: available, draws: draws, using: &rng)
                }
                out.counts[r * columns + c] = x
                pool -= available
                remainingColumns[c] -= x
                draws -= x
            }
            remaining -= rt[r]
        }
        return out
    }

    /// Mean and sample standard deviation of values.
    static func summarize(_ values: [Double]) -> NullDistribution {
        guard !values.isEmpty else { return NullDistribution(mean: 0, standardDeviation: 0, replicates: 0) }
        let mean = values.reduce(0, +) / Double(values.count)
        var ss = 0.0
        for v in values { ss += (v - mean) * (v - mean) }
        let sd = values.count > 1 ? (ss / Double(values.count - 1)).squareRoot() : 0
        return NullDistribution(mean: mean, standardDeviation: sd, replicates: values.count)
    }
}
