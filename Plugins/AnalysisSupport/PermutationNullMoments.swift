// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// PermutationNullMoments: the mean and standard deviation of the plug-in MI under the permutation
// null computed from the margins, without drawing a table, for tables whose replicates would cost
// too much (E >= 128 with much data).

import Foundation

extension ContingencyTable {
    /// The shuffled-token null of the mutual information from its moments instead of replicates:
    /// the **exact** mean and an approximate standard deviation, in O(rows x columns x sd) time
    /// whatever n, deterministic (no seed).
    ///
    /// With fixed margins the plug-in MI is `(S - sum r ln r - sum c ln c + n ln n) / (n ln 2)`
    /// with `S = sum x ln x` over the cells, and under the permutation null every cell count x is
    /// hypergeometric (population n, successes its column total, draws its row total). So:
    ///
    /// - the mean is exact by linearity: `E[S] = sum E[x ln x]`, each cell's expectation summed
    ///   over its hypergeometric pmf from the mode outward (to 1e-17 of the mode's probability),
    ///   or, for a cell expecting `e = r c / n >= 64` tokens, from the Taylor series of
    ///   `x ln x` about e (exact central moments to the fourth, the fifth and sixth from their
    ///   leading cumulants: error O(e^-3) a cell);
    /// - the variance: `x ln x` minus its tangent at e differs from S by a constant (the tangents'
    ///   slopes `ln r + ln c - ln n + 1` sum to a constant over any table with these margins),
    ///   so `Var S` is the variance of the sum of those convex remainders. Their per-cell
    ///   variances are exact (same sums); the covariances between cells are replaced by the
    ///   factor `(R - 1)(C - 1) / ((R - 2 + sum p^2)(C - 2 + sum q^2))` (R, C non-empty rows and
    ///   columns, p, q their shares), which makes the sum exactly the chi-square limit
    ///   `Var G = 2 (R - 1)(C - 1)` when every cell is large. Against 600 replicates it was
    ///   within 6% from 2 to 60 tokens a cell (the test allows 12%); it is not used below 2.
    ///
    /// ``shuffledNull(replicates:seed:)`` takes it only when replicates would cost more than
    /// ``replicateBudget`` and the table holds at least ``momentsMinimumPerCell`` tokens a cell.
    public func permutationNullMoments() -> NullDistribution {
        let rt = rowTotals.filter { $0 > 0 }
        let ct = columnTotals.filter { $0 > 0 }
        let n = rt.reduce(0, +)
        guard rt.count > 1, ct.count > 1, n > 1 else {
            return NullDistribution(mean: 0, standardDeviation: 0, replicates: 0, method: .moments)
        }
        let lf = InformationTheory.logFactorial
        let logN = lf(n)
        let rowLog = rt.map { lf($0) + lf(n - $0) }
        let columnLog = ct.map { lf($0) + lf(n - $0) }
        let rowLn = rt.map { log(Double($0)) }
        let columnLnOverN = ct.map { log(Double($0)) - log(Double(n)) }
        var expectedS = 0.0
        var remainderVariance = 0.0
        InformationTheory.logFactorials.withUnsafeBufferPointer { logFactorials in
            Self.xLnXTable.withUnsafeBufferPointer { xLnX in
                for (i, r) in rt.enumerated() {
                    for (j, c) in ct.enumerated() {
                        let m = Self.cellMoments(
                            rowTotal: r,
                            columnTotal: c,
                            total: n,
                            logNormalizer: rowLog[i] + columnLog[j] - logN,
                            logExpected: rowLn[i] + columnLnOverN[j],
                            taylorFrom: 64,
                            logFactorials: logFactorials,
                            xLnX: xLnX
                        )
                        expectedS += m.mean
                        remainderVariance += m.remainderVariance
                    }
                }
            }
        }
        let dn = Double(n)
        func xLnX(_ x: Int) -> Double { Double(x) * log(Double(x)) }
        let margins = rt.reduce(0) { $0 + xLnX($1) } + ct.reduce(0) { $0 + xLnX($1) }
        let meanNats = (expectedS - margins + xLnX(n)) / dn
        let rowShares = rt.reduce(0.0) { $0 + (Double($1) / dn) * (Double($1) / dn) }
        let columnShares = ct.reduce(0.0) { $0 + (Double($1) / dn) * (Double($1) / dn) }
        let rr = Double(rt.count)
        let cc = Double(ct.count)
        let factor = (rr - 1) * (cc - 1) / ((rr - 2 + rowShares) * (cc - 2 + columnShares))
        let sdNats = (max(0, factor * remainderVariance)).squareRoot() / dn
        return NullDistribution(
            mean: max(0, meanNats / log(2.0)),
            standardDeviation: sdNats / log(2.0),
            replicates: 0,
            method: .moments
        )
    }

    /// ``shuffledNull(replicates:seed:)`` draws replicates while one costs at most this many
    /// shuffled labels (an urn replicate costs n, a sequential one about 16 a cell): about 0.7 ms
    /// on the benchmark machine.
    public static let replicateBudget = 1 << 17

    /// The moments are used only from this many tokens per non-empty cell: below, sparse cells
    /// make the standard deviation's covariance factor too rough, and the urn is cheap anyway.
    public static let momentsMinimumPerCell = 2

    /// Whether ``shuffledNull(replicates:seed:)`` computes the null from its moments.
    func prefersMoments(replicates: Int) -> Bool {
        guard replicates > 0 else { return false }
        let rt = rowTotals
        let ct = columnTotals
        let n = rt.reduce(0, +)
        let cells = rt.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } * ct.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        let replicateCost = min(n, 16 * cells)
        return replicateCost > Self.replicateBudget && n >= Self.momentsMinimumPerCell * cells
    }

    /// `x ln x` (natural log) for x below 2^16.
    static let xLnXTable: [Double] = (0..<(1 << 16)).map { $0 < 2 ? 0 : Double($0) * log(Double($0)) }

    /// The expectation of `x ln x` and the variance of `x ln x - e ln e - (ln e + 1)(x - e)` (its
    /// convex remainder about `e = r c / n`) for x hypergeometric: population `total`, successes
    /// `columnTotal`, draws `rowTotal`. `logNormalizer` is `ln r! + ln (n-r)! + ln c! + ln (n-c)! -
    /// ln n!`. `taylorFrom` is the expected count from which the Taylor series replaces the sum.
    static func cellMoments(
        rowTotal r: Int,
        columnTotal c: Int,
        total n: Int,
        logNormalizer: Double,
        taylorFrom: Double = 64
    ) -> (mean: Double, remainderVariance: Double) {
        InformationTheory.logFactorials.withUnsafeBufferPointer { logFactorials in
            xLnXTable.withUnsafeBufferPointer { xLnX in
                cellMoments(
                    rowTotal: r,
                    columnTotal: c,
                    total: n,
                    logNormalizer: logNormalizer,
                    logExpected: log(Double(r)) + log(Double(c)) - log(Double(n)),
                    taylorFrom: taylorFrom,
                    logFactorials: logFactorials,
                    xLnX: xLnX
                )
            }
        }
    }

    /// ``cellMoments(rowTotal:columnTotal:total:logNormalizer:taylorFrom:)`` with `ln e` given and
    /// the tables fetched once by the caller.
    @inline(__always)
    static func cellMoments(
        rowTotal r: Int,
        columnTotal c: Int,
        total n: Int,
        logNormalizer: Double,
        logExpected logE: Double,
        taylorFrom: Double,
        logFactorials: UnsafeBufferPointer<Double>,
        xLnX: UnsafeBufferPointer<Double>
    ) -> (mean: Double, remainderVariance: Double) {
        let e = Double(r) * Double(c) / Double(n)
        let eLnE = e * logE
        if e >= taylorFrom {
            let m = Hypergeometric.centralMoments(population: n, successes: c, draws: r)
            let e2 = e * e
            // Terms to the sixth moment, the fifth and sixth from their leading cumulants
            // (10 m2 m3 and 15 m2^3): the error is O(e^-3).
            let mean =
                eLnE + m.m2 / (2 * e) - m.m3 / (6 * e2) + m.m4 / (12 * e2 * e) - m.m2 * m.m3 / (2 * e2 * e2)
                + m.m2 * m.m2 * m.m2 / (2 * e2 * e2 * e)
            let variance =
                (m.m4 - m.m2 * m.m2) / (4 * e2) - 1.5 * m.m2 * m.m3 / (e2 * e)
                + (51.0 / 36.0) * m.m2 * m.m2 * m.m2 / (e2 * e2)
            return (mean, max(0, variance))
        }
        let lo = max(0, r + c - n)
        let hi = min(r, c)
        let rest = n - r - c
        var mode = Int((Double(r + 1) * Double(c + 1)) / Double(n + 2))
        mode = min(max(mode, lo), hi)
        @inline(__always) func lf(_ x: Int) -> Double {
            if x < logFactorials.count { return logFactorials[x] }
            // Stirling's series: past 2^16 its next term is below 1e-37.
            let dx = Double(x)
            let inverse = 1 / dx
            let inverse2 = inverse * inverse
            return (dx + 0.5) * log(dx) - dx + 0.918_938_533_204_672_7
                + inverse * (1.0 / 12 - inverse2 * (1.0 / 360 - inverse2 / 1260))
        }
        let pMode = exp(logNormalizer - lf(mode) - lf(c - mode) - lf(r - mode) - lf(rest + mode))
        let slope = logE + 1
        @inline(__always) func remainder(_ x: Int) -> Double {
            let dx = Double(x)
            let xLogX = x < xLnX.count ? xLnX[x] : dx * log(dx)
            return xLogX - eLnE - slope * (dx - e)
        }
        let floor = pMode * 1e-10
        let hMode = remainder(mode)
        var s0 = pMode
        var s1 = pMode * hMode
        var s2 = pMode * hMode * hMode
        // Both tails at once (two independent chains of products), the recurrence's factors kept
        // as doubles that step by one: `p(x+1) = p(x) (c-x)(r-x) / ((x+1)(rest+x+1))` upward,
        // `p(x-1) = p(x) x (rest+x) / ((c-x+1)(r-x+1))` downward.
        var pUp = pMode
        var up = mode
        var upA = Double(c - mode)
        var upB = Double(r - mode)
        var upC = Double(mode + 1)
        var upD = Double(rest + mode + 1)
        var pDown = pMode
        var down = mode
        var downA = Double(mode)
        var downB = Double(rest + mode)
        var downC = Double(c - mode + 1)
        var downD = Double(r - mode + 1)
        var upOpen = up < hi
        var downOpen = down > lo
        while upOpen || downOpen {
            if upOpen {
                pUp *= (upA * upB) / (upC * upD)
                up += 1
                upA -= 1
                upB -= 1
                upC += 1
                upD += 1
                let h = remainder(up)
                s0 += pUp
                s1 += pUp * h
                s2 += pUp * h * h
                upOpen = up < hi && pUp >= floor
            }
            if downOpen {
                pDown *= (downA * downB) / (downC * downD)
                down -= 1
                downA -= 1
                downB -= 1
                downC += 1
                downD += 1
                let h = remainder(down)
                s0 += pDown
                s1 += pDown * h
                s2 += pDown * h * h
                downOpen = down > lo && pDown >= floor
            }
        }
        let meanH = s1 / s0
        return (eLnE + meanH, max(0, s2 / s0 - meanH * meanH))
    }
}

extension Hypergeometric {
    /// The mean and the second, third and fourth central moments of the number of successes among
    /// `draws` items taken without replacement from `population` items, `successes` of them
    /// successes (exact closed forms; the third and fourth need a population above 3).
    public static func centralMoments(
        population: Int,
        successes: Int,
        draws: Int
    ) -> (mean: Double, m2: Double, m3: Double, m4: Double) {
        let bigN = Double(population)
        let bigK = Double(successes)
        let n = Double(draws)
        guard population > 3, successes > 0, successes < population, draws > 0, draws < population else {
            let mean = population > 0 ? n * bigK / bigN : 0
            return (mean, 0, 0, 0)
        }
        let p = bigK / bigN
        let mean = n * p
        let m2 = n * p * (1 - p) * (bigN - n) / (bigN - 1)
        let m3 = m2 * (bigN - 2 * bigK) * (bigN - 2 * n) / (bigN * (bigN - 2))
        let excess =
            ((bigN - 1) * bigN * bigN * (bigN * (bigN + 1) - 6 * bigK * (bigN - bigK) - 6 * n * (bigN - n))
                + 6 * n * bigK * (bigN - bigK) * (bigN - n) * (5 * bigN - 6))
            / (n * bigK * (bigN - bigK) * (bigN - n) * (bigN - 2) * (bigN - 3))
        return (mean, m2, m3, (excess + 3) * m2 * m2)
    }
}
