// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTestKit
import Testing

@testable import AnalysisSupport

/// The MI null from its moments (``ContingencyTable/permutationNullMoments()``): an exact mean, a
/// standard deviation close to the replicates', and the switch that takes it only for large tables
/// with much data.
struct PermutationNullMomentsTests {
    static func skewedTable(experts e: Int, tokens: Int, skew: Double, seed: UInt64) -> ContingencyTable {
        SyntheticContingency.independentTable(experts: e, tokens: tokens, skew: skew, seed: seed)
    }

    @Test func centralMomentsMatchThePmf() {
        for (population, successes, draws) in [(20, 7, 5), (1_000, 300, 41), (50_000, 900, 12_000), (12, 11, 6)] {
            let m = Hypergeometric.centralMoments(population: population, successes: successes, draws: draws)
            var mean = 0.0
            var central = [0.0, 0.0, 0.0]
            var pmf: [(Int, Double)] = []
            for x in max(0, draws - (population - successes))...min(draws, successes) {
                let logP =
                    InformationTheory.logBinomial(successes, x)
                    + InformationTheory.logBinomial(population - successes, draws - x)
                    - InformationTheory.logBinomial(population, draws)
                pmf.append((x, exp(logP)))
                mean += Double(x) * exp(logP)
            }
            for (x, p) in pmf {
                let d = Double(x) - mean
                central[0] += p * d * d
                central[1] += p * d * d * d
                central[2] += p * d * d * d * d
            }
            #expect(abs(m.mean - mean) < 1e-9 * mean)
            #expect(abs(m.m2 - central[0]) < 1e-8 * central[0])
            #expect(abs(m.m3 - central[1]) < 1e-6 * max(1, abs(central[1])))
            #expect(abs(m.m4 - central[2]) < 1e-8 * central[2])
        }
    }

    /// The Taylor series used for cells expecting 64 tokens or more against the pmf sum itself.
    @Test(arguments: [
        (640, 640, 6_400), (2_000, 3_000, 50_000), (20_000, 5_000, 100_000), (90_000, 400_000, 1_000_000),
    ])
    func taylorSeriesAgreesWithThePmfSum(_ cell: (Int, Int, Int)) {
        let (r, c, n) = cell
        let lf = InformationTheory.logFactorial
        let normalizer = lf(r) + lf(n - r) + lf(c) + lf(n - c) - lf(n)
        let series = ContingencyTable.cellMoments(rowTotal: r, columnTotal: c, total: n, logNormalizer: normalizer)
        let sum = ContingencyTable.cellMoments(
            rowTotal: r,
            columnTotal: c,
            total: n,
            logNormalizer: normalizer,
            taylorFrom: .infinity
        )
        let e = Double(r) * Double(c) / Double(n)
        #expect(e >= 64)
        // The mean's error is O(e^-3), the variance's O(e^-2), on a remainder near (1 - r/n)^2 (1 - c/n)^2 / 2.
        #expect(abs(series.mean - sum.mean) < 1e-5, "mean \(series.mean) vs \(sum.mean)")
        #expect(abs(series.remainderVariance - sum.remainderVariance) < 2e-3 * sum.remainderVariance)
        #expect(sum.remainderVariance > 0.1 && sum.remainderVariance < 0.6)
    }

    /// The mean is the exact permutation mean, to rounding: on a table small enough to visit
    /// every permutation.
    @Test func meanIsTheExactPermutationMean() {
        for counts in [[3, 1, 0, 0, 1, 2], [1, 2, 1, 2, 0, 1]] {
            let t = ContingencyTable(rows: 2, columns: 3, counts: counts)
            let exact = ContingencyNullTests.exactPermutationMoments(t)
            let moments = t.permutationNullMoments()
            #expect(exact.mean > 0.1)
            #expect(abs(moments.mean - exact.mean) < 1e-12)
            #expect(moments.method == .moments && moments.replicates == 0)
        }
        #expect(ContingencyTable(rows: 1, columns: 4, counts: [3, 1, 0, 2]).permutationNullMoments().mean == 0)
        #expect(ContingencyTable(rows: 3, columns: 3).permutationNullMoments().standardDeviation == 0)
    }

    /// Against 600 exact replicates on routing-like tables, from 2 to 60 tokens a cell (the
    /// latter with cells on both sides of the Taylor threshold): the mean within four standard
    /// errors, the standard deviation within 12%.
    @Test(arguments: [(48, 2.0, 1.0), (48, 4.0, 1.5), (32, 8.0, 0.5), (24, 60.0, 1.0)])
    func momentsMatchTheReplicates(_ shape: (Int, Double, Double)) {
        let (e, perCell, skew) = shape
        let t = Self.skewedTable(experts: e, tokens: Int(perCell * Double(e * e)), skew: skew, seed: 3)
        let values = t.shuffledNullValues(replicates: 600, seed: 9)
        let mean = values.reduce(0, +) / Double(values.count)
        let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
        let moments = t.permutationNullMoments()
        #expect(abs(moments.mean - mean) < 4 * sd / Double(values.count).squareRoot(), "\(moments.mean) vs \(mean)")
        #expect(abs(moments.standardDeviation - sd) < 0.12 * sd, "sd \(moments.standardDeviation) vs \(sd)")
    }

    @Test func shuffledNullTakesTheMomentsOnlyForLargeTablesWithMuchData() {
        #expect(ContingencyTable.replicateBudget == 1 << 17 && ContingencyTable.momentsMinimumPerCell == 2)
        // 256 x 256 cells: 300,000 tokens (4.6 a cell) take the moments, 100,000 (1.5) the urn.
        let rich = Self.skewedTable(experts: 256, tokens: 300_000, skew: 0.3, seed: 1)
        let poor = Self.skewedTable(experts: 256, tokens: 100_000, skew: 0.3, seed: 1)
        #expect(rich.shuffledNull(replicates: 20, seed: 2) == rich.permutationNullMoments())
        let poorNull = poor.shuffledNull(replicates: 20, seed: 2)
        #expect(poorNull.method == .replicates && poorNull.replicates == 20)
        #expect(poorNull == ContingencyTable.summarize(poor.shuffledNullValues(replicates: 20, seed: 2)))
        // A small table is always drawn, however much data it holds; so is a null of 0 replicates.
        let small = Self.skewedTable(experts: 8, tokens: 1_000_000, skew: 1, seed: 1)
        #expect(small.shuffledNull(replicates: 20, seed: 2).method == .replicates)
        #expect(rich.shuffledNull(replicates: 0, seed: 2).replicates == 0)
        #expect(rich.shuffledNull(replicates: 0, seed: 2).method == .replicates)
    }

    /// A valid null at E = 256 with much data: independent tables sit within the null, a 2%
    /// planted dependence stands far above it.
    @Test func plantedDependenceStandsOutOfTheMomentsNull() {
        var z: [Double] = []
        for seed in 0..<6 {
            let t = ContingencyNullTests.routingTable(tokens: 200_000, dependence: 0, seed: 40 + UInt64(seed))
            let null = t.shuffledNull(replicates: 20, seed: 1)
            #expect(null.method == .moments)
            z.append((t.mutualInformationBits - null.mean) / null.standardDeviation)
        }
        #expect(z.allSatisfy { abs($0) < 4 }, "\(z)")
        let planted = ContingencyNullTests.routingTable(tokens: 200_000, dependence: 0.02, seed: 40)
        let null = planted.shuffledNull(replicates: 20, seed: 1)
        #expect(planted.mutualInformationBits > null.mean + 10 * null.standardDeviation)
    }
}
