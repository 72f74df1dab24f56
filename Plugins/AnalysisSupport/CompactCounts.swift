// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A fixed-size array of counters kept as small integers (`Cell`: `UInt32`, or `UInt16` where a
/// table must fit in the L1 cache) for cache-friendly hot loops, spilling into 64-bit totals
/// before any counter could overflow.
///
/// The caller promises how many increments any one cell may receive before its next
/// ``reserve(increments:)`` (for example one per token of the block about to be consumed); when
/// that could overflow `Cell`, the small counters are first added into wider totals. 16-bit
/// cells spill every 65,535 reserved increments into 32-bit totals (6 bytes a counter in all,
/// not 10), and those into 64-bit ones only before they could overflow in turn; a spill is one
/// pass over the table, rare next to the increments it makes room for.
///
/// ```swift
/// var c = CompactCounts<UInt32>(count: 64)
/// c.reserve(increments: block.tokenCount)
/// c.withCounters { p in p[5] &+= 1 }
/// c[5]   // 1
/// ```
public struct CompactCounts<Cell: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// Number of counters.
    public let count: Int
    @usableFromInline var small: [Cell]
    /// 32-bit totals between `small` and `spilled`, for cells narrower than 32 bits.
    @usableFromInline var middle: [UInt32] = []
    @usableFromInline var spilled: [Int] = []
    @usableFromInline var headroom: Int = Int(Cell.max)
    @usableFromInline var middleHeadroom: Int = Int(UInt32.max)

    /// `count` zero counters.
    @inlinable public init(count: Int) {
        self.count = max(0, count)
        small = [Cell](repeating: 0, count: self.count)
    }

    /// Counters holding `values` (for counts expanded from another layout).
    @inlinable public init(values: [Int]) {
        count = values.count
        small = [Cell](repeating: 0, count: count)
        spilled = values
    }

    /// Makes room for up to `increments` more increments of any one counter; `increments` must
    /// not exceed `Cell.max` (reserve chunk by chunk for a larger block).
    @inlinable public mutating func reserve(increments: Int) {
        precondition(increments <= Int(Cell.max), "reserve at most \(Cell.max) increments at a time")
        if increments > headroom { spill() }
        headroom -= max(0, increments)
    }

    /// Moves the small counters into the wider totals: into the 32-bit ones for cells narrower
    /// than 32 bits (after moving those into the 64-bit ones if they could overflow), else into
    /// the 64-bit ones.
    @inlinable mutating func spill() {
        let added = Int(Cell.max) - headroom
        headroom = Int(Cell.max)
        if Cell.bitWidth < 32 {
            if added > middleHeadroom { spillMiddle() }
            middleHeadroom -= added
            if middle.isEmpty { middle = [UInt32](repeating: 0, count: count) }
            for i in 0..<count { middle[i] &+= UInt32(truncatingIfNeeded: small[i]) }
        } else {
            if spilled.isEmpty { spilled = [Int](repeating: 0, count: count) }
            for i in 0..<count { spilled[i] += Int(small[i]) }
        }
        for i in 0..<count { small[i] = 0 }
    }

    /// Moves the 32-bit totals into the 64-bit ones.
    @inlinable mutating func spillMiddle() {
        middleHeadroom = Int(UInt32.max)
        guard !middle.isEmpty else { return }
        if spilled.isEmpty { spilled = [Int](repeating: 0, count: count) }
        for i in 0..<count { spilled[i] += Int(middle[i]) }
        for i in 0..<count { middle[i] = 0 }
    }

    /// Allocates the 64-bit totals, to add to them directly (the value of a counter is the sum
    /// of all three levels).
    @inlinable mutating func allocateTotals() {
        if spilled.isEmpty { spilled = [Int](repeating: 0, count: count) }
    }

    /// Calls `body` with the small counters, to increment them with `&+=` (within what was
    /// reserved).
    @inlinable public mutating func withCounters<R>(_ body: (UnsafeMutablePointer<Cell>) throws -> R) rethrows -> R {
        try small.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// The value of counter `i`.
    @inlinable public subscript(i: Int) -> Int {
        var v = Int(small[i])
        if !middle.isEmpty { v += Int(middle[i]) }
        if !spilled.isEmpty { v += spilled[i] }
        return v
    }

    /// All values.
    @inlinable public var values: [Int] {
        var v = [Int](repeating: 0, count: count)
        for i in 0..<count { v[i] = self[i] }
        return v
    }

    /// The values of `length` counters from `start`.
    @inlinable public func values(from start: Int, length: Int) -> [Int] {
        var v = [Int](repeating: 0, count: length)
        for i in 0..<length { v[i] = self[start + i] }
        return v
    }

    /// Adds `n` to counter `i` (slow path: spills first).
    @inlinable public mutating func add(_ n: Int, at i: Int) {
        allocateTotals()
        spilled[i] += n
    }

    /// Adds another set of counters of the same size.
    @inlinable public mutating func add(_ other: CompactCounts<some FixedWidthInteger & UnsignedInteger & Sendable>) {
        precondition(other.count == count, "counter sizes differ")
        allocateTotals()
        for i in 0..<count { spilled[i] += other[i] }
    }
}
