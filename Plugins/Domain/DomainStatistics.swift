// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The statistics the domain comparator needs, private to this module: Jensen-Shannon divergence
// and total variation of count vectors, binomial coefficients, percentiles, a seeded generator
// and fixed-point formatting.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum DomainStatistics {
    /// Jensen-Shannon divergence in bits between the distributions of two count vectors, each
    /// normalised by its own total: `JS = ½ KL(P‖M) + ½ KL(Q‖M)`, `M = (P + Q)/2`, log base 2,
    /// `0 · log 0 = 0`. NaN when either total is zero. Clamped to [0, 1] against rounding.
    ///
    /// - Complexity: O(count).
    @inline(__always)
    static func jsBits(
        _ a: UnsafePointer<Double>,
        _ b: UnsafePointer<Double>,
        count: Int,
        totalA: Double,
        totalB: Double
    ) -> Double {
        guard totalA > 0, totalB > 0 else { return .nan }
        let ia = 1 / totalA
        let ib = 1 / totalB
        var s = 0.0
        for e in 0..<count {
            let p = a[e] * ia
            let q = b[e] * ib
            let m = 0.5 * (p + q)
            if p > 0 { s += p * log2(p / m) }
            if q > 0 { s += q * log2(q / m) }
        }
        return min(1, max(0, 0.5 * s))
    }

    /// Total variation distance `½ Σ |p - q|` between two count vectors, each normalised by its
    /// own total. NaN when either total is zero.
    @inline(__always)
    static func totalVariation(
        _ a: UnsafePointer<Double>,
        _ b: UnsafePointer<Double>,
        count: Int,
        totalA: Double,
        totalB: Double
    ) -> Double {
        guard totalA > 0, totalB > 0 else { return .nan }
        var s = 0.0
        for e in 0..<count { s += abs(a[e] / totalA - b[e] / totalB) }
        return min(1, max(0, 0.5 * s))
    }

    /// JS divergence (bits) of two count arrays of equal length.
    static func jsBits(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .nan }
        let ta = a.reduce(0, +)
        let tb = b.reduce(0, +)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return .nan }
                return jsBits(x, y, count: a.count, totalA: ta, totalB: tb)
            }
        }
    }

    /// Total variation of two count arrays of equal length.
    static func totalVariation(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .nan }
        let ta = a.reduce(0, +)
        let tb = b.reduce(0, +)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return .nan }
                return totalVariation(x, y, count: a.count, totalA: ta, totalB: tb)
            }
        }
    }

    /// `C(n, m)` when it is at most `cap`, otherwise `nil` (computed without overflow).
    static func binomial(_ n: Int, _ m: Int, cap: Int) -> Int? {
        guard m >= 0, n >= m else { return 0 }
        let r = min(m, n - m)
        var c = 1
        for i in 0..<r {
            // c * (n - i) / (i + 1) is exact at every step (it is C(n, i + 1)).
            let (prod, overflow) = c.multipliedReportingOverflow(by: n - i)
            if overflow { return nil }
            c = prod / (i + 1)
            if c > cap { return nil }
        }
        return c
    }

    /// The `q`-quantile (0...1) of sorted values, linear interpolation between order statistics
    /// (Hyndman-Fan type 7, R's default): `h = (n - 1) q`. NaN when empty.
    static func quantile(sorted v: [Double], _ q: Double) -> Double {
        guard !v.isEmpty else { return .nan }
        let h = Double(v.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, v.count - 1)
        return v[lo] + (h - Double(lo)) * (v[hi] - v[lo])
    }

    /// The SplitMix64 output function applied to one value: a well-mixed 64-bit hash.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A seed derived from the run's seed and a tag, so that each test draws its own stream.
    static func derivedSeed(_ seed: UInt64, tag: UInt64) -> UInt64 {
        mix(seed ^ (tag &* 0xD1B5_4A32_D192_ED03))
    }

    /// `x` with `digits` decimals (half away from zero), or "n/a" when not finite.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "n/a" }
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let r = (abs(x) * Double(scale)).rounded()
        guard r < 9e15 else { return "\(x)" }
        let n = Int(r)
        var frac = String(n % scale)
        frac = String(repeating: "0", count: max(0, digits - frac.count)) + frac
        let sign = x < 0 && n != 0 ? "-" : ""
        return digits > 0 ? "\(sign)\(n / scale).\(frac)" : "\(sign)\(n / scale)"
    }
}

/// SplitMix64, implemented here so this module needs no test kit: identical on every platform,
/// so seeded permutation tests and bootstraps reproduce byte for byte.
struct DomainRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (n >= 1), by Lemire's multiply-shift with rejection: no
    /// modulo bias, and the same values on every platform and Swift version.
    @inline(__always)
    mutating func below(_ n: Int) -> Int {
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}
