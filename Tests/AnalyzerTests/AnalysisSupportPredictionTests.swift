// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting
import Testing

/// Rankings, cross-validation, tallies, compact counters, the seeded generator and formatting.
struct AnalysisSupportPredictionTests {
    @Test func rankingBreaksTiesTowardTheLowestIndex() {
        #expect(CountTablePredictor.ranking([3, 9, 9, 0], limit: 2) == [1, 2])
        #expect(CountTablePredictor.ranking([0, 0, 0], limit: 2) == [0, 1])
        #expect(CountTablePredictor.ranking([5], limit: 2) == [0])
        #expect(CountTablePredictor.ranking([], limit: 2) == [])
    }

    @Test func crossValidationByHand() {
        // Two folds, 2 x 2 tables (row = known expert, column = expert to predict).
        // Fold 0: row 0 -> column 1 twice. Fold 1: row 0 -> column 1 once, row 1 -> column 0 once.
        let f0 = ContingencyTable(rows: 2, columns: 2, counts: [0, 2, 0, 0])
        let f1 = ContingencyTable(rows: 2, columns: 2, counts: [0, 1, 1, 0])
        // Test fold 0, train on fold 1: row 0 guesses [1, 0] -> 2 hits, covered.
        // Test fold 1, train on fold 0: row 0 guesses [1, 0] -> hit; row 1 has no training counts:
        //   fallback to column totals [0, 2] -> [1, 0]; the truth is 0 -> top-1 miss, top-2 hit;
        //   not covered.
        // Model: 4 predictions, top-1 3, top-2 4, covered 3.
        // Baseline (column totals of the training fold): fold 0 test: [1, 1] -> [0, 1] -> 0 top-1,
        //   2 top-2; fold 1 test: [0, 2] -> [1, 0] -> row 0 hit, row 1 miss; top-2 both.
        let cv = CountTablePredictor.crossValidate(top1: [f0, f1], membership: nil, topK: 1)!
        #expect(cv.model.predictions == 4)
        #expect(cv.model.top1Hits == 3)
        #expect(cv.model.top2Hits == 4)
        #expect(cv.model.covered == 3)
        #expect(cv.baseline.top1Hits == 1)
        #expect(cv.baseline.top2Hits == 4)
        #expect(cv.foldsWithData == 2)
        // One fold with data: impossible.
        #expect(
            CountTablePredictor.crossValidate(
                top1: [f0, ContingencyTable(rows: 2, columns: 2)],
                membership: nil,
                topK: 1
            ) == nil
        )
    }

    @Test func tallyRatesAndJSON() {
        var t = PredictionTally()
        #expect(t.top1Accuracy == nil)
        t.predictions = 10
        t.top1Hits = 4
        t.top2Hits = 6
        t.setHits = 9
        t.covered = 8
        #expect(t.top1Accuracy == 0.4)
        #expect(t.top2Accuracy == 0.6)
        #expect(t.setRecall(topK: 2) == 0.45)
        #expect(t.coverage == 0.8)
        #expect((t + t).top1Hits == 8)
        #expect(t.json(topK: 2).jsonString() == #"{"top1_accuracy":0.4,"top2_accuracy":0.6,"set_recall":0.45}"#)
    }

    @Test func compactCountsSpillBeforeOverflow() {
        var c = CompactCounts<UInt32>(count: 2)
        c.reserve(increments: Int(UInt32.max) - 1)
        c.withCounters { p in p[0] = UInt32.max - 1 }
        // The next reservation cannot fit in 32 bits: the counters spill first.
        c.reserve(increments: 10)
        c.withCounters { p in p[0] &+= 10 }
        #expect(c[0] == Int(UInt32.max) - 1 + 10)
        var d = CompactCounts<UInt32>(count: 2)
        d.withCounters { p in p[1] = 7 }
        d.add(c)
        #expect(d.values == [Int(UInt32.max) + 9, 7])
        d.add(3, at: 1)
        #expect(d[1] == 10)
    }

    /// 16-bit cells spill into 32-bit totals every 65,535 reserved increments, and those into
    /// 64-bit ones before they could overflow; a counter's value is the sum of all three.
    @Test func sixteenBitCountsSpillThroughBothLevels() {
        var c = CompactCounts<UInt16>(count: 3)
        var expected = 0
        // 70,000 rounds of 1,000 increments: 7 * 10^7 > 2^32 / 64, so both spills happen.
        for round in 0..<70_000 {
            c.reserve(increments: 1_000)
            c.withCounters { p in
                p[0] &+= 1_000
                p[2] &+= UInt16(round % 2)
            }
            expected += 1_000
        }
        #expect(c[0] == expected)
        #expect(c[1] == 0)
        #expect(c[2] == 35_000)
        // 2^32 + a little, to force the 32-bit totals into the 64-bit ones.
        for _ in 0..<65_600 {
            c.reserve(increments: 65_535)
            c.withCounters { p in p[1] &+= 65_535 }
        }
        #expect(c[1] == 65_600 * 65_535)
        #expect(c[1] > Int(UInt32.max))
        var d = CompactCounts<UInt16>(count: 3)
        d.add(c)
        d.add(5, at: 2)
        #expect(d.values == [expected, 65_600 * 65_535, 35_005])
    }

    @Test func seededRandomIsDeterministicAndBounded() {
        var a = SeededRandom(seed: 42)
        var b = SeededRandom(seed: 42)
        for _ in 0..<100 { #expect(a.next() == b.next()) }
        // SplitMix64 reference: the first output for seed 0 is 0xE220A8397B1DCDAF.
        var z = SeededRandom(seed: 0)
        #expect(z.next() == 0xE220_A839_7B1D_CDAF)
        var r = SeededRandom(seed: 1, stream: 3)
        for _ in 0..<1000 {
            #expect((0..<7).contains(r.nextIndex(below: 7)))
            let u = r.nextUnit()
            #expect(u >= 0 && u < 1)
        }
        #expect(SeededRandom(seed: 1, stream: 3).seedValue != SeededRandom(seed: 1, stream: 4).seedValue)
    }

    @Test func formatting() {
        #expect(ReportFormat.fixed(0.12345) == "0.123")
        #expect(ReportFormat.fixed(0.0005, 3) == "0.001")
        #expect(ReportFormat.fixed(-1.25, 1) == "-1.3")
        #expect(ReportFormat.fixed(2, 0) == "2")
        #expect(ReportFormat.fixed(nil) == "-")
        #expect(ReportFormat.fixed(.nan) == "-")
        #expect(ReportFormat.percent(0.125) == "12.5%")
        #expect(
            ReportFormat.shape(.tinyMixtral).jsonString()
                == #"{"layers":4,"experts":8,"top_k":2,"name":"tiny-mixtral"}"#
        )
        #expect(
            ReportFormat.chance(ChanceRates(experts: 8, topK: 2)).jsonString()
                == #"{"top1_same":0.125,"overlap_fraction":0.25,"any_overlap":0.4642857142857143,"set_same":0.03571428571428571}"#
        )
    }

    @Test func foldTalliesGiveTheRangeOverFoldsWithData() {
        var t = FoldTallies(folds: 5)
        t[0].predictions = 10
        t[0].top1Hits = 4
        // One fold with data: no range, and the interval says why.
        #expect(t.range { $0.top1Accuracy } == nil)
        #expect(
            t.intervalJSON(topK: 2, problems: 1)["insufficient"]?.stringValue?.hasPrefix("cross-validation needs")
                == true
        )
        t[3].predictions = 20
        t[3].top1Hits = 12
        t[3].setHits = 20
        let r = t.range { $0.top1Accuracy }
        #expect(r?.low == 0.4 && r?.high == 0.6)
        #expect(t.total.top1Accuracy == 16.0 / 30)
        #expect(t.foldsWithData == 2)
        let json = t.intervalJSON(topK: 2, problems: 2)
        #expect(json["top1_accuracy"] == ["low": 0.4, "high": 0.6])
        #expect(json["set_recall"] == ["low": 0.0, "high": 0.5])
        #expect(json["insufficient"] == nil)
        #expect(t.rangeText { $0.top1Accuracy } == "0.400–0.600")
        // Adding per fold: fold 1 gains data, so three folds count.
        var u = FoldTallies(folds: 5)
        u[1].predictions = 5
        u[1].top1Hits = 5
        t += u
        #expect(t.range { $0.top1Accuracy }?.high == 1)
        #expect(t.foldsWithData == 3)
    }

    @Test func crossValidationKeepsPerFoldTalliesThatSumToTheTotal() {
        // Two folds, 2 x 2 tables: fold 0 {(0,0): 3, (1,1): 1}, fold 1 {(0,1): 2, (1,1): 2}.
        let f0 = ContingencyTable(rows: 2, columns: 2, counts: [3, 0, 0, 1])
        let f1 = ContingencyTable(rows: 2, columns: 2, counts: [0, 2, 0, 2])
        guard let cv = CountTablePredictor.crossValidate(top1: [f0, f1], membership: nil, topK: 1) else {
            Issue.record("no cross-validation")
            return
        }
        // Test fold 0 with fold 1's table: row 0 -> 1 (miss 3), row 1 -> 1 (hit 1): 1/4.
        // Test fold 1 with fold 0's table: row 0 -> 0 (miss 2), row 1 -> 1 (hit 2): 2/4.
        #expect(cv.modelByFold[0].top1Hits == 1 && cv.modelByFold[0].predictions == 4)
        #expect(cv.modelByFold[1].top1Hits == 2 && cv.modelByFold[1].predictions == 4)
        #expect(cv.model == cv.modelByFold.total)
        #expect(cv.baseline == cv.baselineByFold.total)
        #expect(cv.modelByFold.range { $0.top1Accuracy }?.low == 0.25)
    }
}
