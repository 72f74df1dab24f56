// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A two-way table of counts (rows x columns, row-major), with the information measures
/// analyzers report for it: mutual information, conditional entropy, a Miller–Madow correction and
/// a shuffled-token null.
///
/// The null is exact (a permutation of the observations' column labels, never an asymptotic
/// approximation), so it stays valid at large E with little data, where the plug-in MI is
/// strongly biased upwards: see ``shuffledNull(replicates:seed:)`` and docs/analyzers.md.
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
        /// Number of replicates (0 for ``Method/moments``).
        public var replicates: Int
        /// How the figures were obtained.
        public var method: Method

        /// How a ``NullDistribution`` was obtained.
        public enum Method: String, Sendable, Equatable {
            /// The mean and sample standard deviation of drawn tables (``shuffledNullValues(replicates:seed:sampling:)``).
            case replicates
            /// The exact mean and an approximate standard deviation from the margins
            /// (``permutationNullMoments()``).
            case moments
        }

        /// Creates a summary.
        public init(mean: Double, standardDeviation: Double, replicates: Int, method: Method = .replicates) {
            self.mean = mean
            self.standardDeviation = standardDeviation
            self.replicates = replicates
            self.method = method
        }
    }

    /// How ``shuffledNullValues(replicates:seed:sampling:)`` draws its tables. Both samplers are
    /// exact: they draw from the same distribution (the row labels of the n observations paired
    /// with a uniformly random permutation of their column labels), at different costs.
    public enum NullSampling: Sendable, Equatable {
        /// The urn when n is at most ``ContingencyTable/urnFactor`` x (non-empty rows) x
        /// (non-empty columns), else the sequential hypergeometric draw: each replicate then costs
        /// O(min(n, rows x columns)).
        case automatic
        /// A Fisher–Yates shuffle of the n column labels against the row labels, counted row by
        /// row: O(n) per replicate, whatever the table size.
        case urn
        /// ``randomTableWithSameMargins(using:)``: one hypergeometric draw per cell,
        /// O(rows x columns) per replicate, whatever n.
        case sequentialHypergeometric
    }

    /// The shuffled-token null of the mutual information: each replicate pairs the row labels of
    /// the n observations with a uniformly random permutation of their column labels (same
    /// margins, no dependence), and the summary is the mean and standard deviation of the
    /// replicates' plug-in MI. Tables are drawn exactly, by whichever of the two samplers of
    /// ``NullSampling/automatic`` is cheaper for this table, so the cost of a replicate is bounded
    /// by both the table size and n.
    ///
    /// When a replicate would cost more than ``replicateBudget`` shuffled labels and the table
    /// holds at least ``momentsMinimumPerCell`` tokens a cell (E >= 128 with much data), the null
    /// comes from ``permutationNullMoments()`` instead: its mean is exact, its standard deviation
    /// approximate, and `method` says so.
    ///
    /// Deterministic for a given seed.
    ///
    /// - Complexity: O(replicates x replicateBudget) or O(rows x columns x sd).
    public func shuffledNull(replicates: Int, seed: UInt64) -> NullDistribution {
        if prefersMoments(replicates: replicates) { return permutationNullMoments() }
        return Self.summarize(shuffledNullValues(replicates: replicates, seed: seed))
    }

    /// The plug-in mutual information in bits of each of `replicates` tables drawn at random
    /// with this table's margins (see ``shuffledNull(replicates:seed:)``), in draw order: for an
    /// empirical p-value, the share of them at least the observed MI.
    ///
    /// Deterministic for a given seed and sampling.
    public func shuffledNullValues(
        replicates: Int,
        seed: UInt64,
        sampling: NullSampling = .automatic
    ) -> [Double] {
        let count = max(0, replicates)
        guard count > 0 else { return [] }
        var rng = SeededRandom(seed: seed)
        let rt = rowTotals
        let ct = columnTotals
        let n = rt.reduce(0, +)
        let useUrn: Bool
        switch sampling {
        case .automatic:
            let filledRows = rt.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
            let filledColumns = ct.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
            useUrn = n <= Self.urnFactor * filledRows * filledColumns
        case .urn: useUrn = true
        case .sequentialHypergeometric: useUrn = false
        }
        var values: [Double] = []
        values.reserveCapacity(count)
        if useUrn {
            var urn = ShuffleUrn(rowTotals: rt, columnTotals: ct)
            for _ in 0..<count { values.append(urn.shuffledMutualInformationBits(using: &rng)) }
        } else {
            InformationTheory.logFactorials.withUnsafeBufferPointer { table in
                for _ in 0..<count {
                    values.append(randomTableWithSameMargins(using: &rng, logFactorials: table).mutualInformationBits)
                }
            }
        }
        return values
    }

    /// A table drawn uniformly among pairings of the row labels with a random permutation of the
    /// column labels: the same row and column totals, independent variables.
    public func randomTableWithSameMargins(using rng: inout SeededRandom) -> ContingencyTable {
        InformationTheory.logFactorials.withUnsafeBufferPointer {
            randomTableWithSameMargins(using: &rng, logFactorials: $0)
        }
    }

    private func randomTableWithSameMargins(
        using rng: inout SeededRandom,
        logFactorials: UnsafeBufferPointer<Double>
    ) -> ContingencyTable {
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
                    x = Hypergeometric.sample(
                        population: pool,
                        successes: available,
                        draws: draws,
                        using: &rng,
                        logFactorials: logFactorials
                    )
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

    /// The automatic sampler takes the urn up to this many observations per non-empty cell: a
    /// shuffled label costs about a tenth of a hypergeometric draw (measured at E = 128).
    public static let urnFactor = 8

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

/// The urn sampler of the shuffled-token null: the n observations' row labels sorted by row, their
/// column labels in one array that each replicate shuffles (Fisher–Yates) and counts row by row.
///
/// With fixed margins the plug-in MI is `log2 n + (sum x log2 x - sum r log2 r - sum c log2 c) / n`,
/// so a replicate only needs `sum x log2 x` over its non-empty cells (x from a table of `x log2 x`
/// for 0...n): O(n) time, O(n + columns) memory.
struct ShuffleUrn {
    /// The end (exclusive) of each non-empty row's segment of ``labels``.
    private var rowEnds: [Int] = []
    /// Column labels (compact column index) of the n observations, in the last shuffle's order,
    /// in the narrowest integer that holds them: the shuffle's random swaps touch the whole array,
    /// so a byte per label keeps it in cache four times longer than an `Int32`.
    private var labels: Labels
    /// Per-column counts of one row segment, zero between rows.
    private var scratch: [Int32]
    /// `x log2 x` for x in 0...n (or more).
    private var xLog2x: [Double]
    /// `x log2 x` for x below 2^16, built once.
    static let sharedXLog2x: [Double] = (0..<(1 << 16)).map { $0 < 2 ? 0 : Double($0) * log2(Double($0)) }
    /// `log2 n - (sum r log2 r + sum c log2 c) / n`.
    private let constant: Double
    private let n: Int

    init(rowTotals: [Int], columnTotals: [Int]) {
        let total = rowTotals.reduce(0) { $0 + max(0, $1) }
        n = total
        let shared = ShuffleUrn.sharedXLog2x
        if total < shared.count {
            xLog2x = shared
        } else {
            xLog2x = [Double](repeating: 0, count: total + 1)
            for x in stride(from: 2, through: total, by: 1) { xLog2x[x] = Double(x) * log2(Double(x)) }
        }
        var margins = 0.0
        var end = 0
        for r in rowTotals where r > 0 {
            end += r
            rowEnds.append(end)
            margins += Double(r) * log2(Double(r))
        }
        let filled = columnTotals.filter { $0 > 0 }
        for c in filled { margins += Double(c) * log2(Double(c)) }
        if filled.count <= 1 << 8 {
            labels = .narrow(Self.labels(filled, as: UInt8.self, total: total))
        } else if filled.count <= 1 << 16 {
            labels = .medium(Self.labels(filled, as: UInt16.self, total: total))
        } else {
            labels = .wide(Self.labels(filled, as: UInt32.self, total: total))
        }
        scratch = [Int32](repeating: 0, count: filled.count)
        constant = total > 0 ? log2(Double(total)) - margins / Double(total) : 0
    }

    /// Label storage by width.
    private enum Labels {
        case narrow([UInt8])
        case medium([UInt16])
        case wide([UInt32])
    }

    /// Compact column index `i` repeated `filled[i]` times, in order.
    private static func labels<T: FixedWidthInteger & UnsignedInteger>(
        _ filled: [Int],
        as _: T.Type,
        total: Int
    ) -> [T] {
        var out: [T] = []
        out.reserveCapacity(total)
        for (i, c) in filled.enumerated() { out.append(contentsOf: repeatElement(T(truncatingIfNeeded: i), count: c)) }
        return out
    }

    /// Shuffles the column labels and returns the MI of the resulting table.
    mutating func shuffledMutualInformationBits(using rng: inout SeededRandom) -> Double {
        guard n > 1 else { return 0 }
        let sum: Double
        switch labels {
        case .narrow(var l):
            labels = .narrow([])
            sum = shuffledSum(&l, using: &rng)
            labels = .narrow(l)
        case .medium(var l):
            labels = .medium([])
            sum = shuffledSum(&l, using: &rng)
            labels = .medium(l)
        case .wide(var l):
            labels = .wide([])
            sum = shuffledSum(&l, using: &rng)
            labels = .wide(l)
        }
        return max(0, constant + sum / Double(n))
    }

    /// Fisher–Yates shuffles `labels`, then sums `x log2 x` over each row segment's column counts.
    private mutating func shuffledSum<T: FixedWidthInteger & UnsignedInteger>(
        _ labels: inout [T],
        using rng: inout SeededRandom
    ) -> Double {
        let count = n
        let ends = rowEnds
        let table = xLog2x
        var sum = 0.0
        labels.withUnsafeMutableBufferPointer { labels in
            var i = count - 1
            while i > 0 {
                let j = rng.nextIndex(below: i + 1)
                let t = labels[i]
                labels[i] = labels[j]
                labels[j] = t
                i -= 1
            }
            scratch.withUnsafeMutableBufferPointer { scratch in
                table.withUnsafeBufferPointer { table in
                    var start = 0
                    for end in ends {
                        for i in start..<end { scratch[Int(labels[i])] &+= 1 }
                        // Branch-free: a column's later labels read a count of 0, and
                        // `table[0]` is 0, so the sum is the same, in the same order.
                        for i in start..<end {
                            let c = Int(labels[i])
                            sum += table[Int(scratch[c])]
                            scratch[c] = 0
                        }
                        start = end
                    }
                }
            }
        }
        return sum
    }
}
