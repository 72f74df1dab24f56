// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The statistics the domain comparator needs, private to this module: Jensen-Shannon divergence
// and total variation of count vectors, binomial coefficients, percentiles, derived seeds and
// fixed-point formatting. The generator (SeededRandom) and number formatting (ReportFormat) come
// from AnalysisSupport; what stays here differs from AnalysisSupport in its results.

import AnalysisSupport

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
    /// Kept apart from `InformationTheory.jensenShannonBits`: that one sums entropies
    /// (`H(M) - (H(P) + H(Q))/2`), which differs in the last bits, and it returns 0, not NaN,
    /// for an empty side.
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
    ///
    /// Kept apart from `InformationTheory.totalVariation`: that one returns 0, not NaN, for an
    /// empty side, clamps negative and NaN weights to 0, and takes no buffer (the hot loops here
    /// do).
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
        onArrays(a, b) { jsBits($0, $1, count: $2, totalA: $3, totalB: $4) }
    }

    /// Total variation of two count arrays of equal length.
    static func totalVariation(_ a: [Double], _ b: [Double]) -> Double {
        onArrays(a, b) { totalVariation($0, $1, count: $2, totalA: $3, totalB: $4) }
    }

    /// Applies a buffer statistic to two arrays with their totals; NaN when the lengths differ
    /// or an array is empty.
    @inline(__always)
    private static func onArrays(
        _ a: [Double],
        _ b: [Double],
        _ statistic: (UnsafePointer<Double>, UnsafePointer<Double>, Int, Double, Double) -> Double
    ) -> Double {
        guard a.count == b.count else { return .nan }
        let ta = a.reduce(0, +)
        let tb = b.reduce(0, +)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return .nan }
                return statistic(x, y, a.count, ta, tb)
            }
        }
    }

    /// `C(n, m)` when it is at most `cap`, otherwise `nil` (computed without overflow).
    /// Exact integers, unlike `InformationTheory.logBinomial` (log-gamma), hence kept here.
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

    /// A seed derived from the run's seed and a tag, so that each test draws its own stream: the
    /// first SplitMix64 output from `seed ^ (tag · 0xD1B54A32D192ED03)`. (Not
    /// `SeededRandom(seed:stream:)`, which mixes differently and would change reported seeds.)
    static func derivedSeed(_ seed: UInt64, tag: UInt64) -> UInt64 {
        SeededRandom(seed: seed ^ (tag &* 0xD1B5_4A32_D192_ED03)).seedValue
    }

    /// `x` with `digits` decimals (0...12, half away from zero), or "n/a" when not finite
    /// (`ReportFormat.fixed` writes "-" there).
    static func fixed(_ x: Double, _ digits: Int) -> String {
        x.isFinite ? ReportFormat.fixed(x, digits) : "n/a"
    }
}
