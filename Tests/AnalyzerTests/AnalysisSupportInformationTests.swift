// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import Testing

/// Chance values, entropy, mutual information, divergences, the hypergeometric sampler and the
/// shuffled null, against values worked out by hand.
struct AnalysisSupportInformationTests {
    @Test func chanceValuesForMixtral() {
        // E = 8, k = 2: top-1 1/8; overlap k/E = 2/8; any overlap 1 - C(6,2)/C(8,2) = 1 - 15/28
        // = 13/28; identical set 1/C(8,2) = 1/28 (science.md).
        let c = ChanceRates(experts: 8, topK: 2)
        #expect(c.top1Same == 0.125)
        #expect(c.overlapFraction == 0.25)
        #expect(abs(c.anyOverlap - 13.0 / 28.0) < 1e-15)
        #expect(abs(c.setSame - 1.0 / 28.0) < 1e-15)
        #expect(c.top1Accuracy == 0.125)
        #expect(c.top2Accuracy == 0.25)
        #expect(c.setRecall == 0.25)
    }

    @Test func chanceValuesForSmallAndDegenerateShapes() {
        // E = 4, k = 2: any overlap 1 - C(2,2)/C(4,2) = 1 - 1/6 = 5/6; same set 1/6.
        let c = ChanceRates(experts: 4, topK: 2)
        #expect(abs(c.anyOverlap - 5.0 / 6.0) < 1e-15)
        #expect(abs(c.setSame - 1.0 / 6.0) < 1e-15)
        // E = 3, k = 2: two 2-sets out of 3 always intersect (E - k < k).
        #expect(ChanceRates(experts: 3, topK: 2).anyOverlap == 1)
        // E = 64, k = 6: 1/C(64,6) = 1/74974368.
        #expect(abs(ChanceRates(experts: 64, topK: 6).setSame * 74_974_368 - 1) < 1e-12)
        // k = E: the set is always the same.
        #expect(ChanceRates(experts: 5, topK: 5).setSame == 1)
    }

    @Test func entropyOfSmallCounts() {
        // p = (1/4, 1/4, 1/2): H = 2 * 1/4 * 2 + 1/2 * 1 = 1.5 bits.
        #expect(abs(InformationTheory.entropyBits([1, 1, 2]) - 1.5) < 1e-12)
        #expect(InformationTheory.entropyBits([0, 0]) == 0)
        #expect(InformationTheory.entropyBits([7]) == 0)
        // Miller-Madow adds (m - 1) / (2 n ln 2) = 2 / (8 ln 2) for m = 3 cells, n = 4.
        #expect(abs(InformationTheory.millerMadowEntropyBits([1, 1, 2]) - (1.5 + 2 / (8 * log(2.0)))) < 1e-12)
    }

    @Test func divergences() {
        #expect(abs(InformationTheory.jensenShannonBits([1, 0], [0, 1]) - 1) < 1e-12)
        #expect(InformationTheory.jensenShannonBits([3, 1], [6, 2]) < 1e-12)
        #expect(abs(InformationTheory.totalVariation([1, 0], [0, 1]) - 1) < 1e-12)
        // (1/2, 1/2) vs (3/4, 1/4): TV = 1/4; KL = 1/2 log2(2/3) + 1/2 log2(2) = 0.5 - 0.5 log2 1.5.
        #expect(abs(InformationTheory.totalVariation([1, 1], [3, 1]) - 0.25) < 1e-12)
        #expect(abs(InformationTheory.kullbackLeiblerBits([1, 1], [3, 1]) - (0.5 - 0.5 * log2(1.5))) < 1e-12)
        // JS of (1,0) and (1/2,1/2): m = (3/4, 1/4); H(m) = 0.811278; (H(p) + H(q))/2 = 0.5.
        #expect(abs(InformationTheory.jensenShannonBits([1, 0], [1, 1]) - 0.311278) < 1e-6)
    }

    @Test func mutualInformationOfHandTables() {
        // Perfect dependence: 1 bit, no conditional entropy.
        let perfect = ContingencyTable(rows: 2, columns: 2, counts: [2, 0, 0, 2])
        #expect(abs(perfect.mutualInformationBits - 1) < 1e-12)
        #expect(abs(perfect.conditionalEntropyBits) < 1e-12)
        // Independence: 0.
        #expect(ContingencyTable(rows: 2, columns: 2, counts: [1, 1, 1, 1]).mutualInformationBits < 1e-12)
        // [[3,1],[1,3]]: p = 3/8, 1/8, 1/8, 3/8, margins 1/2.
        // MI = 2 * 3/8 * log2(3/2) + 2 * 1/8 * log2(1/2) = 0.75 * 0.5849625 - 0.25 = 0.1887219.
        // H(col | row) = binary entropy of 1/4 = 0.8112781.
        let t = ContingencyTable(rows: 2, columns: 2, counts: [3, 1, 1, 3])
        #expect(abs(t.mutualInformationBits - 0.1887219) < 1e-6)
        #expect(abs(t.conditionalEntropyBits - 0.8112781) < 1e-6)
        // Miller-Madow: + ((2-1) + (2-1) - (4-1)) / (2 * 8 * ln 2) = -1 / (16 ln 2).
        #expect(abs(t.millerMadowMutualInformationBits - (0.1887219 - 1 / (16 * log(2.0)))) < 1e-6)
        #expect(t.rowTotals == [4, 4])
        #expect(t.columnTotals == [4, 4])
        #expect(t.rowNormalized() == [[0.75, 0.25], [0.25, 0.75]])
        // An empty row normalises to zeros.
        #expect(ContingencyTable(rows: 2, columns: 2, counts: [0, 0, 1, 1]).rowNormalized()[0] == [0, 0])
    }

    @Test func hypergeometricMatchesItsMeanAndSupport() {
        var rng = SeededRandom(seed: 11)
        // N = 50, K = 20, n = 10: mean n K / N = 4, support 0...10.
        var sum = 0
        for _ in 0..<20_000 {
            let x = Hypergeometric.sample(population: 50, successes: 20, draws: 10, using: &rng)
            #expect((0...10).contains(x))
            sum += x
        }
        #expect(abs(Double(sum) / 20_000 - 4) < 0.05)
        // Forced values: all successes, no draws, draws that exceed the failures.
        #expect(Hypergeometric.sample(population: 10, successes: 10, draws: 4, using: &rng) == 4)
        #expect(Hypergeometric.sample(population: 10, successes: 3, draws: 0, using: &rng) == 0)
        #expect(Hypergeometric.sample(population: 10, successes: 8, draws: 9, using: &rng) >= 7)
        // Large populations stay exact in the mean: N = 10^9, K = N/2, n = 10^6.
        var big = 0.0
        for _ in 0..<200 {
            big += Double(
                Hypergeometric.sample(population: 1_000_000_000, successes: 500_000_000, draws: 1_000_000, using: &rng)
            )
        }
        #expect(abs(big / 200 - 500_000) < 200)
    }

    @Test func shuffledNullKeepsMarginsAndIsDeterministic() {
        let t = ContingencyTable(rows: 3, columns: 3, counts: [50, 3, 2, 4, 40, 6, 1, 2, 60])
        var rng = SeededRandom(seed: 5)
        for _ in 0..<20 {
            let r = t.randomTableWithSameMargins(using: &rng)
            #expect(r.rowTotals == t.rowTotals)
            #expect(r.columnTotals == t.columnTotals)
        }
        let a = t.shuffledNull(replicates: 20, seed: 9)
        let b = t.shuffledNull(replicates: 20, seed: 9)
        #expect(a == b)
        #expect(a.replicates == 20)
        // A strongly dependent table is far above its null.
        #expect(t.mutualInformationBits > a.mean + 10 * a.standardDeviation)
    }

    @Test func shuffledNullMatchesTheSmallSampleBias() {
        // Independent 8 x 8 table with n = 2000 uniform margins: the plug-in MI of a random
        // table has mean about (R-1)(C-1) / (2 n ln 2) = 49 / (4000 ln 2) = 0.01767 bits.
        let t = ContingencyTable(rows: 8, columns: 8, counts: [Int](repeating: 2000 / 64, count: 64).map { $0 + 0 })
        let null = t.shuffledNull(replicates: 200, seed: 3)
        let expected = 49 / (2 * Double(t.total) * log(2.0))
        #expect(abs(null.mean - expected) < 0.2 * expected)
    }
}
