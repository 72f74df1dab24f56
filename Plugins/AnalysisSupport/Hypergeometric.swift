// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Exact sampling from the hypergeometric distribution: the number of successes among `draws`
/// items taken without replacement from `population` items of which `successes` are successes.
///
/// Inversion from the mode outward: the probability at the mode comes from log-gamma and its
/// neighbours from the ratio recurrence, so a draw costs O(standard deviation) steps, whatever the
/// population size.
///
/// ```swift
/// var rng = SeededRandom(seed: 1)
/// let x = Hypergeometric.sample(population: 1_000_000, successes: 300_000, draws: 500, using: &rng)
/// ```
public enum Hypergeometric {
    /// One draw. Arguments are clamped into a valid range (negative counts read as 0).
    public static func sample(population: Int, successes: Int, draws: Int, using rng: inout SeededRandom) -> Int {
        InformationTheory.logFactorials.withUnsafeBufferPointer {
            sample(population: population, successes: successes, draws: draws, using: &rng, logFactorials: $0)
        }
    }

    /// One draw with `ln k!` read from `logFactorials` (``InformationTheory/logFactorial(_:)``'s
    /// table, fetched once by a caller that draws many times) below its size, `lgamma` above.
    static func sample(
        population: Int,
        successes: Int,
        draws: Int,
        using rng: inout SeededRandom,
        logFactorials: UnsafeBufferPointer<Double>
    ) -> Int {
        let bigN = max(0, population)
        let bigK = min(max(0, successes), bigN)
        let n = min(max(0, draws), bigN)
        if n == 0 || bigK == 0 { return 0 }
        if bigK == bigN { return n }
        if n == bigN { return bigK }
        let lo = max(0, n - (bigN - bigK))
        let hi = min(n, bigK)
        if lo == hi { return lo }
        var mode = Int((Double(n + 1) * Double(bigK + 1)) / Double(bigN + 2))
        mode = min(max(mode, lo), hi)
        func lf(_ x: Int) -> Double { x < logFactorials.count ? logFactorials[x] : lgamma(Double(x) + 1) }
        // ln C(K, mode) + ln C(N-K, n-mode) - ln C(N, n), each term as logBinomial sums it.
        let logP =
            (lf(bigK) - lf(mode) - lf(bigK - mode)) + (lf(bigN - bigK) - lf(n - mode) - lf(bigN - bigK - n + mode))
            - (lf(bigN) - lf(n) - lf(bigN - n))
        let pMode = exp(logP)
        var u = rng.nextUnit()
        if u < pMode { return mode }
        u -= pMode
        var up = mode
        var down = mode
        var pUp = pMode
        var pDown = pMode
        let rest = bigN - bigK - n
        while true {
            var moved = false
            if up < hi, pUp > 0 {
                pUp *= Double(bigK - up) * Double(n - up) / (Double(up + 1) * Double(rest + up + 1))
                up += 1
                moved = true
                if u < pUp { return up }
                u -= pUp
            }
            if down > lo, pDown > 0 {
                pDown *= Double(down) * Double(rest + down) / (Double(bigK - down + 1) * Double(n - down + 1))
                down -= 1
                moved = true
                if u < pDown { return down }
                u -= pDown
            }
            if !moved { return mode }
        }
    }
}
