// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A seedable SplitMix64 generator, identical on every platform, for the shuffled nulls and
/// permutation tests of analyzers: the same seed gives the same draws, so reports are
/// reproducible byte for byte.
///
/// It is the project's one SplitMix64: analyzers, the test kit's synthetic traces and the
/// benchmarks all draw from it.
///
/// ```swift
/// var rng = SeededRandom(seed: context.seed, stream: 3)
/// let u = rng.nextUnit()          // uniform in [0, 1)
/// let i = rng.nextIndex(below: 10)
/// ```
public struct SeededRandom: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    /// A generator from a seed.
    public init(seed: UInt64) { state = seed }

    /// A generator for one of several independent streams derived from one seed (for example
    /// one per layer), so each stream's draws do not depend on how many other streams drew.
    public init(seed: UInt64, stream: UInt64) {
        var s = SeededRandom(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = s.next() ^ stream
    }

    /// A fresh seed drawn from this generator's stream (the next 64 bits), for handing to a
    /// sub-computation.
    public var seedValue: UInt64 {
        var copy = self
        return copy.next()
    }

    /// The next 64 random bits.
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inlinable public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A uniform integer in `0..<bound` (bound > 0), unbiased (Lemire's method).
    @inlinable public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }
}
