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
    /// Entry index + 1 per slot; 0 = empty.
    private var slots: [Int32]
    private var slotMask: Int

    init(wordsPerKey: Int) {
        self.wordsPerKey = max(1, wordsPerKey)
        slots = [Int32](repeating: 0, count: 1024)
        slotMask = 1023
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

    /// Adds `count` to a key of `wordsPerKey` words.
    mutating func add(_ key: UnsafePointer<UInt64>, count: Int = 1) {
        let n = wordsPerKey
        var s = Self.hash(key, n) & slotMask
        while true {
            let e = Int(slots[s])
            if e == 0 { break }
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
        slots[s] = Int32(truncatingIfNeeded: counts.count)
        if counts.count * 2 > slots.count { grow() }
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = [Int32](repeating: 0, count: capacity)
        slotMask = capacity - 1
        let n = wordsPerKey
        keys.withUnsafeBufferPointer { kb in
            for e in 0..<counts.count {
                var s = Self.hash(kb.baseAddress! + e * n, n) & slotMask
                while slots[s] != 0 { s = (s + 1) & slotMask }
                slots[s] = Int32(truncatingIfNeeded: e + 1)
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

