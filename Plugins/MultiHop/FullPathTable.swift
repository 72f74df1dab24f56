// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Counts of distinct full-depth top-1 paths, keyed by the path packed into 64-bit words, in an
/// open-addressing hash table over a flat key arena (no allocation per token).
///
/// This is the multihop analyzer's one structure that grows with the data: one entry per
/// distinct path, at most one per complete token.
struct FullPathTable: Sendable {
    /// 64-bit words per key.
    let wordsPerKey: Int
    /// Keys, `wordsPerKey` words per entry, in insertion order.
    private(set) var keys: [UInt64] = []
    /// Count of each entry.
    private(set) var counts: [Int] = []
    /// Per slot: entry index + 1 in the low ``slotShift`` bits (0 = empty) and, above them, a
    /// tag of the key's hash, so that a probe reads a colliding entry's key (a likely cache
    /// miss) only when the tags agree.
    private var slots: [UInt32]
    private var slotMask: Int
    /// log2 of the slot count: entries (fewer than half the slots) fit in this many bits.
    private var slotShift: Int
    /// Where ``warm(_:flags:count:)`` leaves the slots it read, so the reads are kept.
    private var warmSink: UInt32 = 0

    init(wordsPerKey: Int) {
        self.wordsPerKey = max(1, wordsPerKey)
        slots = [UInt32](repeating: 0, count: 1024)
        slotMask = 1023
        slotShift = 10
    }

    /// The tag of a hash for the current slot count (0 bits when the count reaches 2^32).
    private func tag(_ h: Int) -> UInt32 {
        slotShift >= 32 ? 0 : UInt32(truncatingIfNeeded: UInt64(bitPattern: Int64(h)) >> 32) << UInt32(slotShift)
    }

    /// Number of distinct keys.
    var distinct: Int { counts.count }

    private static func hash(_ key: UnsafePointer<UInt64>, _ n: Int) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<n {
            h = (h ^ key[i]) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
        }
        h = (h ^ (h >> 32)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Reads the home slot of each flagged key (`wordsPerKey` words per key, one key per flag),
    /// so that the cache misses of a batch overlap instead of stalling the ``add(_:count:)``
    /// calls that follow one at a time. Changes no counts.
    mutating func warm(_ keys: UnsafePointer<UInt64>, flags: UnsafePointer<Bool>, count: Int) {
        let n = wordsPerKey
        let mask = slotMask
        var sink: UInt32 = 0
        slots.withUnsafeBufferPointer { sb in
            guard let base = sb.baseAddress else { return }
            for i in 0..<count where flags[i] { sink |= base[Self.hash(keys + i &* n, n) & mask] }
        }
        warmSink |= sink
    }

    /// Adds `count` to a key of `wordsPerKey` words.
    mutating func add(_ key: UnsafePointer<UInt64>, count: Int = 1) {
        let n = wordsPerKey
        let h = Self.hash(key, n)
        var s = h & slotMask
        let t = tag(h)
        let indexMask = slotShift >= 32 ? UInt32.max : (UInt32(1) << UInt32(slotShift)) - 1
        while true {
            let v = slots[s]
            let e = Int(v & indexMask)
            if e == 0 { break }
            if v & ~indexMask != t {
                s = (s + 1) & slotMask
                continue
            }
            let base = (e - 1) * n
            var equal = true
            for i in 0..<n where keys[base + i] != key[i] {
                equal = false
                break
            }
            if equal {
                counts[e - 1] += count
                return
            }
            s = (s + 1) & slotMask
        }
        for i in 0..<n { keys.append(key[i]) }
        counts.append(count)
        slots[s] = UInt32(truncatingIfNeeded: counts.count) | t
        if counts.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = [UInt32](repeating: 0, count: capacity)
        slotMask = capacity - 1
        slotShift += 1
        let n = wordsPerKey
        keys.withUnsafeBufferPointer { kb in
            for e in 0..<counts.count {
                let h = Self.hash(kb.baseAddress! + e * n, n)
                var s = h & slotMask
                while slots[s] != 0 { s = (s + 1) & slotMask }
                slots[s] = UInt32(truncatingIfNeeded: e + 1) | tag(h)
            }
        }
    }

    /// Adds every entry of another table with the same key width.
    mutating func merge(_ other: FullPathTable) {
        precondition(other.wordsPerKey == wordsPerKey, "path key widths differ")
        other.keys.withUnsafeBufferPointer { kb in
            for e in 0..<other.counts.count { add(kb.baseAddress! + e * wordsPerKey, count: other.counts[e]) }
        }
    }

    /// Entropy in bits of the path distribution; counts are sorted first so the result does not
    /// depend on insertion order.
    var entropyBits: Double {
        let sorted = counts.sorted()
        var total = 0
        for c in sorted { total += c }
        guard total > 0 else { return 0 }
        var s = 0.0
        for c in sorted {
            let x = Double(c)
            s += x * log2(x)
        }
        return max(0, log2(Double(total)) - s / Double(total))
    }

    /// The entries with the largest counts, ties broken by key words ascending.
    func top(_ n: Int) -> [(key: [UInt64], count: Int)] {
        let w = wordsPerKey
        let order = counts.indices.sorted { a, b in
            if counts[a] != counts[b] { return counts[a] > counts[b] }
            for i in 0..<w where keys[a * w + i] != keys[b * w + i] { return keys[a * w + i] < keys[b * w + i] }
            return false
        }
        return order.prefix(max(0, n)).map { (Array(keys[($0 * w)..<(($0 + 1) * w)]), counts[$0]) }
    }
}
