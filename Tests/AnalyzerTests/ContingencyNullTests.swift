// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import Testing

/// The shuffled-token null of the mutual information: both exact samplers against the exact
/// permutation distribution of a small table, the automatic choice between them, and the null's
/// validity at a large E with little data (a planted dependence is found, independence is not).
struct ContingencyNullTests {
    /// A table from paired labels.
    static func table(rows: Int, columns: Int, pairs: [(Int, Int)]) -> ContingencyTable {
        var t = ContingencyTable(rows: rows, columns: columns)
        for (r, c) in pairs { t[r, c] += 1 }
        return t
    }

    /// The mean and variance of the MI over every permutation of the column labels (Heap's
    /// algorithm): the exact null the samplers draw from.
    static func exactPermutationMoments(_ t: ContingencyTable) -> (mean: Double, variance: Double) {
        var rowLabels: [Int] = []
        var columnLabels: [Int] = []
        for (r, n) in t.rowTotals.enumerated() { rowLabels += [Int](repeating: r, count: n) }
        for (c, n) in t.columnTotals.enumerated() { columnLabels += [Int](repeating: c, count: n) }
        var sum = 0.0
        var sumSquares = 0.0
        var permutations = 0
        func visit(_ labels: [Int]) {
            let mi = table(rows: t.rows, columns: t.columns, pairs: Array(zip(rowLabels, labels))).mutualInformationBits
            sum += mi
            sumSquares += mi * mi
            permutations += 1
        }
        var a = columnLabels
        var c = [Int](repeating: 0, count: a.count)
        visit(a)
        var i = 1
        while i < a.count {
            if c[i] < i {
                if i % 2 == 0 { a.swapAt(0, i) } else { a.swapAt(c[i], i) }
                visit(a)
                c[i] += 1
                i = 1
            } else {
                c[i] = 0
                i += 1
            }
        }
        let mean = sum / Double(permutations)
        return (mean, sumSquares / Double(permutations) - mean * mean)
    }

    @Test(arguments: [ContingencyTable.NullSampling.urn, .sequentialHypergeometric])
    func samplerMatchesTheExactPermutationNull(_ sampling: ContingencyTable.NullSampling) {
        // 2 x 3, n = 7: 5,040 permutations of the column labels.
        let t = ContingencyTable(rows: 2, columns: 3, counts: [3, 1, 0, 0, 1, 2])
        let exact = Self.exactPermutationMoments(t)
        #expect(exact.mean > 0.2)  // a real small-sample bias to match, not a zero
        let values = t.shuffledNullValues(replicates: 20_000, seed: 11, sampling: sampling)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        // Four standard errors of the mean; the variance within 10%.
        #expect(abs(mean - exact.mean) < 4 * (exact.variance / Double(values.count)).squareRoot())
        #expect(abs(variance - exact.variance) < 0.1 * exact.variance)
    }

    @Test func samplersKeepTheMarginsAndAreDeterministic() {
        let t = ContingencyTable(rows: 4, columns: 5, counts: Array(1...20))
        for sampling in [ContingencyTable.NullSampling.urn, .sequentialHypergeometric, .automatic] {
            let a = t.shuffledNullValues(replicates: 30, seed: 4, sampling: sampling)
            #expect(a == t.shuffledNullValues(replicates: 30, seed: 4, sampling: sampling))
            #expect(a != t.shuffledNullValues(replicates: 30, seed: 5, sampling: sampling))
            #expect(a.count == 30)
            #expect(a.allSatisfy { $0 >= 0 && $0 <= min(t.rowEntropyBits, t.columnEntropyBits) + 1e-12 })
        }
        #expect(t.shuffledNull(replicates: 30, seed: 4).replicates == 30)
        #expect(t.shuffledNullValues(replicates: 0, seed: 4).isEmpty)
        #expect(ContingencyTable(rows: 3, columns: 3).shuffledNullValues(replicates: 3, seed: 1) == [0, 0, 0])
    }

    @Test func automaticTakesTheUrnOnlyForLittleDataPerCell() {
        // n = 210 over 4 x 5 = 20 cells (over 8 a cell): the hypergeometric draw; 60 over
        // 16 x 16 = 256: the urn.
        #expect(ContingencyTable.urnFactor == 8)
        let dense = ContingencyTable(rows: 4, columns: 5, counts: Array(1...20))
        #expect(
            dense.shuffledNullValues(replicates: 10, seed: 2)
                == dense.shuffledNullValues(replicates: 10, seed: 2, sampling: .sequentialHypergeometric)
        )
        var rng = SeededRandom(seed: 8)
        let sparse = Self.table(
            rows: 16,
            columns: 16,
            pairs: (0..<60).map { _ in (rng.nextIndex(below: 16), rng.nextIndex(below: 16)) }
        )
        #expect(
            sparse.shuffledNullValues(replicates: 10, seed: 2)
                == sparse.shuffledNullValues(replicates: 10, seed: 2, sampling: .urn)
        )
        #expect(
            sparse.shuffledNullValues(replicates: 10, seed: 2)
                != sparse.shuffledNullValues(replicates: 10, seed: 2, sampling: .sequentialHypergeometric)
        )
    }

    /// A 256 x 256 top-1 -> top-1 table of `tokens` tokens: the next layer's expert follows a fixed
    /// permutation of this layer's with probability `dependence`, else is uniform.
    static func routingTable(tokens: Int, dependence: Double, seed: UInt64) -> ContingencyTable {
        let e = 256
        var rng = SeededRandom(seed: seed)
        let permutation = Array(0..<e).shuffled(using: &rng)
        return table(
            rows: e,
            columns: e,
            pairs: (0..<tokens).map { _ in
                let a = rng.nextIndex(below: e)
                let b = rng.nextUnit() < dependence ? permutation[a] : rng.nextIndex(below: e)
                return (a, b)
            }
        )
    }

    /// The share of null replicates at least the observed MI, with the observation counted once
    /// (so never 0).
    static func permutationPValue(_ t: ContingencyTable, replicates: Int, seed: UInt64) -> Double {
        let observed = t.mutualInformationBits
        let null = t.shuffledNullValues(replicates: replicates, seed: seed)
        return Double(1 + null.filter { $0 >= observed }.count) / Double(replicates + 1)
    }

    @Test func largeExpertCountsWithLittleData() {
        // E = 256, 2,000 tokens: the plug-in MI of independent layers is several bits of pure
        // small-sample bias, which the null must absorb.
        let independent = Self.routingTable(tokens: 2_000, dependence: 0, seed: 1)
        let planted = Self.routingTable(tokens: 2_000, dependence: 0.3, seed: 1)
        #expect(independent.mutualInformationBits > 3)
        let independentNull = independent.shuffledNull(replicates: 20, seed: 5)
        let plantedNull = planted.shuffledNull(replicates: 20, seed: 5)
        #expect(abs(independent.mutualInformationBits - independentNull.mean) < 3 * independentNull.standardDeviation)
        #expect(planted.mutualInformationBits > plantedNull.mean + 10 * plantedNull.standardDeviation)
        #expect(Self.permutationPValue(planted, replicates: 99, seed: 3) == 0.01)

        // Over many independent traces the p-value is roughly uniform: rarely small, mean near 1/2.
        let pValues = (0..<40).map {
            Self.permutationPValue(
                Self.routingTable(tokens: 2_000, dependence: 0, seed: 100 + UInt64($0)),
                replicates: 39,
                seed: UInt64($0)
            )
        }
        let small = pValues.filter { $0 <= 0.05 }.count
        let meanP = pValues.reduce(0, +) / Double(pValues.count)
        #expect(small <= 8)  // 2 expected at 5%
        #expect(meanP > 0.35 && meanP < 0.65)
    }

    @Test func logFactorialIsLGammaOnBothSidesOfTheTable() {
        for n in [
            0, 1, 2, 10, 1_000, InformationTheory.logFactorialTableSize - 1, InformationTheory.logFactorialTableSize,
            1 << 20,
        ] {
            #expect(InformationTheory.logFactorial(n) == lgamma(Double(n) + 1))
        }
        #expect(abs(InformationTheory.logBinomial(10, 3) - log(120.0)) < 1e-12)
    }

    /// The urn stores labels in one byte up to 256 non-empty columns and in two bytes above: both
    /// widths must give the same null as the sequential sampler (a label truncated to a byte
    /// would merge columns and lower the null's mean).
    @Test(arguments: [200, 300])
    func urnLabelWidthsMatchTheSequentialNull(_ columns: Int) {
        var t = ContingencyTable(rows: 3, columns: columns)
        for c in 0..<columns {
            for r in 0..<3 { t[r, c] = 1 + (c * 7 + r * 3) % 5 }
        }
        let urn = t.shuffledNullValues(replicates: 200, seed: 8, sampling: .urn)
        let sequential = t.shuffledNullValues(replicates: 200, seed: 8, sampling: .sequentialHypergeometric)
        let urnMean = urn.reduce(0, +) / 200
        let sequentialMean = sequential.reduce(0, +) / 200
        #expect(urnMean > 0.05)
        #expect(abs(urnMean - sequentialMean) < 0.03 * sequentialMean)
    }
}
