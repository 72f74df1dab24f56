// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Entropy, divergences and distances between discrete distributions, in bits.
///
/// Functions take raw counts (or unnormalised weights) and normalise them; an all-zero input has
/// entropy 0. Sums run in index order, so results are deterministic.
///
/// ```swift
/// InformationTheory.entropyBits([1, 1, 2])                      // 1.5
/// InformationTheory.jensenShannonBits([1, 0], [0, 1])           // 1.0
/// ```
public enum InformationTheory {
    /// Shannon entropy in bits of the distribution proportional to `counts` (plug-in estimate).
    ///
    /// - Complexity: O(n).
    public static func entropyBits(_ counts: [Int]) -> Double {
        var total = 0
        for c in counts where c > 0 { total += c }
        guard total > 0 else { return 0 }
        let n = Double(total)
        var s = 0.0
        for c in counts where c > 0 {
            let x = Double(c)
            s += x * log2(x)
        }
        return max(0, log2(n) - s / n)
    }

    /// Shannon entropy in bits of the distribution proportional to non-negative `weights`.
    public static func entropyBits(weights: [Double]) -> Double {
        var total = 0.0
        for w in weights where w > 0 { total += w }
        guard total > 0 else { return 0 }
        var h = 0.0
        for w in weights where w > 0 {
            let p = w / total
            h -= p * log2(p)
        }
        return max(0, h)
    }

    /// Miller–Madow bias-corrected entropy in bits: the plug-in estimate plus `(m - 1) / (2 n ln 2)`,
    /// where m is the number of non-empty cells and n the total count.
    public static func millerMadowEntropyBits(_ counts: [Int]) -> Double {
        var total = 0
        var m = 0
        for c in counts where c > 0 {
            total += c
            m += 1
        }
        guard total > 0 else { return 0 }
        return entropyBits(counts) + Double(m - 1) / (2 * Double(total) * log(2.0))
    }

    /// Kullback–Leibler divergence D(p || q) in bits of the distributions proportional to `p` and
    /// `q` (same length). Infinite when p has mass where q has none; 0 when p is empty.
    public static func kullbackLeiblerBits(_ p: [Double], _ q: [Double]) -> Double {
        let sp = p.reduce(0) { $0 + max(0, $1) }
        let sq = q.reduce(0) { $0 + max(0, $1) }
        guard sp > 0 else { return 0 }
        guard sq > 0 else { return .infinity }
        var d = 0.0
        for i in 0..<min(p.count, q.count) where p[i] > 0 {
            let pi = p[i] / sp
            let qi = max(0, q[i]) / sq
            if qi == 0 { return .infinity }
            d += pi * log2(pi / qi)
        }
        return max(0, d)
    }

    /// Jensen–Shannon divergence in bits (between 0 and 1) of the distributions proportional to
    /// `p` and `q` (same length): `H(m) - (H(p) + H(q)) / 2` with `m = (p + q) / 2`.
    /// An all-zero side counts as missing: the result is 0 when either side is empty.
    public static func jensenShannonBits(_ p: [Double], _ q: [Double]) -> Double {
        let n = min(p.count, q.count)
        let sp = p.prefix(n).reduce(0) { $0 + max(0, $1) }
        let sq = q.prefix(n).reduce(0) { $0 + max(0, $1) }
        guard sp > 0, sq > 0 else { return 0 }
        var mix = [Double](repeating: 0, count: n)
        var pn = [Double](repeating: 0, count: n)
        var qn = [Double](repeating: 0, count: n)
        for i in 0..<n {
            pn[i] = max(0, p[i]) / sp
            qn[i] = max(0, q[i]) / sq
            mix[i] = (pn[i] + qn[i]) / 2
        }
        let js = entropyBits(weights: mix) - (entropyBits(weights: pn) + entropyBits(weights: qn)) / 2
        return min(1, max(0, js))
    }

    /// Jensen–Shannon divergence in bits of two count vectors.
    public static func jensenShannonBits(_ p: [Int], _ q: [Int]) -> Double {
        jensenShannonBits(p.map(Double.init), q.map(Double.init))
    }

    /// Total variation distance (between 0 and 1) of the distributions proportional to `p` and
    /// `q`: half the L1 distance. 0 when either side is empty.
    public static func totalVariation(_ p: [Double], _ q: [Double]) -> Double {
        let n = min(p.count, q.count)
        let sp = p.prefix(n).reduce(0) { $0 + max(0, $1) }
        let sq = q.prefix(n).reduce(0) { $0 + max(0, $1) }
        guard sp > 0, sq > 0 else { return 0 }
        var d = 0.0
        for i in 0..<n { d += abs(max(0, p[i]) / sp - max(0, q[i]) / sq) }
        return min(1, d / 2)
    }

    /// Total variation distance of two count vectors.
    public static func totalVariation(_ p: [Int], _ q: [Int]) -> Double {
        totalVariation(p.map(Double.init), q.map(Double.init))
    }

    /// The natural log of the binomial coefficient C(n, r) (via log-gamma); `-inf` outside 0...n.
    public static func logBinomial(_ n: Int, _ r: Int) -> Double {
        guard r >= 0, r <= n else { return -.infinity }
        return logFactorial(n) - logFactorial(r) - logFactorial(n - r)
    }

    /// `ln(n!)`, `lgamma(n + 1)`: from a table for n below ``logFactorialTableSize`` (the same
    /// values `lgamma` returns, so results do not depend on the table), `lgamma` above.
    public static func logFactorial(_ n: Int) -> Double {
        n >= 0 && n < logFactorialTableSize ? logFactorials[n] : lgamma(Double(n) + 1)
    }

    /// Entries of the log-factorial table (512 KB, built once on first use).
    public static let logFactorialTableSize = 1 << 16

    static let logFactorials: [Double] = (0..<logFactorialTableSize).map { lgamma(Double($0) + 1) }
}
