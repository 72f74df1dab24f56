// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A fixed-size array of counters kept as 32-bit integers for cache-friendly hot loops, spilling
/// into 64-bit totals before any counter could overflow.
///
/// The caller promises how many increments any one cell may receive before its next
/// ``reserve(increments:)`` (for example one per token of the block about to be consumed); when
/// that could overflow 32 bits, the small counters are first added into 64-bit totals.
///
/// ```swift
/// var c = CompactCounts(count: 64)
/// c.reserve(increments: block.tokenCount)
/// c.withCounters { p in p[5] &+= 1 }
/// c[5]   // 1
/// ```
public struct CompactCounts: Sendable {
    /// Number of counters.
    public let count: Int
    @usableFromInline var small: [UInt32]
    @usableFromInline var spilled: [Int] = []
    @usableFromInline var headroom: Int = Int(UInt32.max)

    /// `count` zero counters.
    public init(count: Int) {
        self.count = max(0, count)
        small = [UInt32](repeating: 0, count: self.count)
    }

    /// Counters holding `values` (for counts expanded from another layout).
    public init(values: [Int]) {
        count = values.count
        small = [UInt32](repeating: 0, count: count)
        spilled = values
    }

    /// Makes room for up to `increments` more increments of any one counter.
    public mutating func reserve(increments: Int) {
        if increments > headroom { spill() }
        headroom -= max(0, increments)
    }

    /// Moves the 32-bit counters into the 64-bit totals.
    mutating func spill() {
        if spilled.isEmpty { spilled = [Int](repeating: 0, count: count) }
        for i in 0..<count { spilled[i] += Int(small[i]) }
        for i in 0..<count { small[i] = 0 }
        headroom = Int(UInt32.max)
    }

    /// Calls `body` with the 32-bit counters, to increment them with `&+=` (within what was
    /// reserved).
    @inlinable public mutating func withCounters<R>(_ body: (UnsafeMutablePointer<UInt32>) throws -> R) rethrows -> R {
        try small.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// The value of counter `i`.
    @inlinable public subscript(i: Int) -> Int {
        spilled.isEmpty ? Int(small[i]) : spilled[i] + Int(small[i])
    }

    /// All values.
    public var values: [Int] {
        var v = [Int](repeating: 0, count: count)
        for i in 0..<count { v[i] = self[i] }
        return v
    }

    /// The values of `length` counters from `start`.
    public func values(from start: Int, length: Int) -> [Int] {
        var v = [Int](repeating: 0, count: length)
        for i in 0..<length { v[i] = self[start + i] }
        return v
    }

    /// Adds `n` to counter `i` (slow path: spills first).
    public mutating func add(_ n: Int, at i: Int) {
        if spilled.isEmpty { spill() }
        spilled[i] += n
    }

    /// Adds another set of counters of the same size.
    public mutating func add(_ other: CompactCounts) {
        precondition(other.count == count, "counter sizes differ")
        spill()
        for i in 0..<count { spilled[i] += other[i] }
    }
}
