// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Counts of distinct full-depth top-1 paths, keyed by the path packed into 64-bit words, in an
/// open-addressing hash table over a flat key arena (no allocation per token), bounded: exact
/// while it holds at most ``capacity`` distinct paths; past that the table is dropped
/// (``overflowed``) and only a bottom-K sketch of the paths' hashes (the ``sketchSize``
/// smallest distinct hashes, always kept) estimates the number of distinct paths, with relative
/// standard error about `1 / sqrt(sketchSize - 2)`.
///
/// Both the table and the sketch merge exactly: a merged table overflows exactly when one table
/// of the whole stream would (a shard that overflowed holds more than ``capacity`` paths of the
/// union), and the sketch of a union is the bottom K of the two sketches.
///
/// Memory: at most `capacity x (8 x wordsPerKey + 8) + 8 x capacity` bytes for the table (after
/// its last growth, slots of 4 bytes, at most 4 per entry) plus `16 x sketchSize` bytes.
struct FullPathTable: Sendable {
    /// 64-bit words per key.
    let wordsPerKey: Int
    /// The most distinct paths counted exactly.
    let capacity: Int
    /// Hashes kept by the distinct-count sketch.
    static let sketchSize = 1024
    /// Whether more than ``capacity`` distinct paths were seen (the table was dropped).
    private(set) var overflowed = false
    /// The smallest distinct path hashes seen (up to twice ``sketchSize`` between compactions).
    private var sketch: [UInt64] = []
    private var sketchThreshold = UInt64.max
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

    init(wordsPerKey: Int, capacity: Int = 1 << 16) {
        self.wordsPerKey = max(1, wordsPerKey)
        self.capacity = max(0, capacity)
        slots = [UInt32](repeating: 0, count: 1024)
        slotMask = 1023
        slotShift = 10
    }

    /// The tag of a hash for the current slot count (0 bits when the count reaches 2^32).
    private func tag(_ h: Int) -> UInt32 {
        slotShift >= 32 ? 0 : UInt32(truncatingIfNeeded: UInt64(bitPattern: Int64(h)) >> 32) << UInt32(slotShift)
    }

    /// Number of distinct keys: exact unless ``overflowed``, then the sketch's estimate.
    var distinct: Int {
        guard overflowed else { return counts.count }
        let kept = canonicalSketch
        guard kept.count >= Self.sketchSize, let last = kept.last else { return kept.count }
        let u = (Double(last) + 1) / 0x1p64
        return Int(((Double(Self.sketchSize) - 1) / u).rounded())
    }

    /// The sketch's K smallest distinct hashes, ascending.
    private var canonicalSketch: [UInt64] {
        var seen = Array(Set(sketch)).sorted()
        if seen.count > Self.sketchSize { seen.removeLast(seen.count - Self.sketchSize) }
        return seen
    }

    private mutating func remember(_ h: UInt64) {
        guard h <= sketchThreshold else { return }
        sketch.append(h)
        if sketch.count >= 2 * Self.sketchSize {
            sketch = canonicalSketch
            if sketch.count >= Self.sketchSize, let last = sketch.last { sketchThreshold = last }
        }
    }

    /// Drops the table once it holds more than ``capacity`` paths.
    private mutating func overflow() {
        overflowed = true
        keys = []
        counts = []
        slots = [UInt32](repeating: 0, count: 1024)
        slotMask = 1023
        slotShift = 10
    }

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
        remember(UInt64(bitPattern: Int64(h)))
        if overflowed { return }
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
        if counts.count > capacity {
            overflow()
            return
        }
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
        for h in other.sketch { remember(h) }
        if other.overflowed, !overflowed { overflow() }
        if overflowed { return }
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
