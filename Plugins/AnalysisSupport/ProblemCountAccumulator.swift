// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Per-problem count vectors of a fixed width (for example expert usage `[L][E]` flattened), for
/// analyses that permute or bootstrap whole problems. Memory: problems x width.
///
/// Rows are stored in first-seen order, which depends on block and merge order; read results
/// through ``sortedKeys`` (or ``forEachSorted(_:)``) to stay deterministic.
///
/// ```swift
/// var acc = ProblemCountAccumulator(width: shape.layers * shape.experts)
/// let rows = acc.rows(for: block)                 // one row per token
/// for t in 0..<block.tokenCount { acc.add(row: rows[t], index: 3) }
/// try acc.merge(otherShard)
/// for key in acc.sortedKeys { let v = acc.counts(for: key)! }
/// ```
public struct ProblemCountAccumulator: Sendable, Equatable {
    /// Length of every problem's count vector.
    public let width: Int
    /// Problems in row order (first seen).
    public private(set) var keys: [ProblemKey] = []
    private var index: [ProblemKey: Int] = [:]
    /// All counts, row-major: problem row `r` occupies `r * width ..< (r + 1) * width`.
    private(set) var storage: [Int] = []

    /// An empty accumulator of vectors of `width` counts.
    public init(width: Int) {
        self.width = max(0, width)
    }

    /// Number of problems seen.
    public var problemCount: Int { keys.count }

    /// Problems sorted by domain, then id.
    public var sortedKeys: [ProblemKey] { keys.sorted() }

    /// The row of a problem, adding an all-zero row when new.
    public mutating func row(for key: ProblemKey) -> Int {
        if let r = index[key] { return r }
        let r = keys.count
        keys.append(key)
        index[key] = r
        storage.append(contentsOf: repeatElement(0, count: width))
        return r
    }

    /// The row of every token of a block (adding new problems); consecutive tokens of one problem
    /// cost one comparison.
    public mutating func rows(for block: RoutingBlock) -> [Int] {
        var out = [Int](repeating: 0, count: block.tokenCount)
        var cache: [Int64: [UInt16: Int]] = [:]
        var lastDomain: UInt16 = .max
        var lastProblem: Int64 = .min
        var lastRow = -1
        for t in 0..<block.tokenCount {
            let d = block.domain[t]
            let p = block.problemID[t]
            if d == lastDomain, p == lastProblem, lastRow >= 0 {
                out[t] = lastRow
                continue
            }
            let r: Int
            if let hit = cache[p]?[d] {
                r = hit
            } else {
                let name = Int(d) < block.domains.count ? block.domains[Int(d)] : ""
                r = row(for: ProblemKey(domain: name, problemID: p))
                cache[p, default: [:]][d] = r
            }
            out[t] = r
            lastDomain = d
            lastProblem = p
            lastRow = r
        }
        return out
    }

    /// Adds `count` to entry `index` of problem row `row`.
    public mutating func add(row: Int, index: Int, count: Int = 1) {
        storage[row * width + index] += count
    }

    /// Gives direct access to one problem row's counts (for tight loops).
    public mutating func withRow<R>(_ row: Int, _ body: (UnsafeMutableBufferPointer<Int>) throws -> R) rethrows -> R {
        let lo = row * width
        return try storage.withUnsafeMutableBufferPointer { all in
            try body(UnsafeMutableBufferPointer(rebasing: all[lo..<(lo + width)]))
        }
    }

    /// The counts of a problem row.
    public func counts(row: Int) -> ArraySlice<Int> { storage[(row * width)..<((row + 1) * width)] }

    /// The counts of a problem, or nil when it was never seen.
    public func counts(for key: ProblemKey) -> ArraySlice<Int>? {
        index[key].map { counts(row: $0) }
    }

    /// Calls `body` for every problem in sorted order with its counts.
    public func forEachSorted(_ body: (ProblemKey, ArraySlice<Int>) throws -> Void) rethrows {
        for key in sortedKeys {
            if let r = index[key] { try body(key, counts(row: r)) }
        }
    }

    /// The sum over all problems.
    public func totals() -> [Int] {
        var t = [Int](repeating: 0, count: width)
        for r in 0..<keys.count {
            let lo = r * width
            for i in 0..<width { t[i] += storage[lo + i] }
        }
        return t
    }

    /// Adds another accumulator's problems and counts (same width).
    ///
    /// - Throws: ``RoutingError/incompatibleMerge(_:)`` when the widths differ.
    public mutating func merge(_ other: ProblemCountAccumulator) throws {
        guard other.width == width else {
            throw RoutingError.incompatibleMerge(
                "per-problem counts of width \(other.width) cannot merge into width \(width)"
            )
        }
        for (r, key) in other.keys.enumerated() {
            let mine = row(for: key)
            let a = mine * width
            let b = r * width
            for i in 0..<width { storage[a + i] += other.storage[b + i] }
        }
    }

    /// Whether both hold the same problems with the same counts, whatever their row order.
    public static func == (a: ProblemCountAccumulator, b: ProblemCountAccumulator) -> Bool {
        guard a.width == b.width, a.keys.count == b.keys.count else { return false }
        for key in a.keys {
            guard let x = a.counts(for: key), let y = b.counts(for: key), x.elementsEqual(y) else { return false }
        }
        return true
    }
}
