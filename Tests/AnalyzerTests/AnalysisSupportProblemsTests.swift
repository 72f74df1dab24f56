// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting
import Testing

/// Problem keys, folds, problem sets and per-problem counts.
struct AnalysisSupportProblemsTests {
    @Test func fnv1aKnownValues() {
        // Reference values of 64-bit FNV-1a.
        #expect(ProblemFolds.fnv1a("") == 0xCBF2_9CE4_8422_2325)
        #expect(ProblemFolds.fnv1a("a") == 0xAF63_DC4C_8601_EC8C)
    }

    @Test func foldsGoRoundRobinWithinADomain() {
        let folds = ProblemFolds()
        let offset = folds.offset(domain: "gsm8k")
        #expect(offset == Int(ProblemFolds.fnv1a("gsm8k") % 5))
        let ids: [Int64] = [0, 1, 2, 3, 4]
        let assigned = ids.map { folds.fold(domain: "gsm8k", problemID: $0) }
        #expect(Set(assigned).count == 5)
        for (i, f) in assigned.enumerated() { #expect(f == (i + offset) % 5) }
        // Negative ids are folded into 0..<F as well.
        #expect((0..<5).contains(folds.fold(domain: "x", problemID: -7)))
        #expect(folds.fold(domain: "x", problemID: -7) == folds.fold(domain: "x", problemID: 3))
        #expect(ProblemFolds(count: 0).count == 1)
    }

    @Test func foldsOfABlockMatchThePerProblemRule() throws {
        var b = RoutingBlockBuilder(shape: .tinyMixtral)
        for (d, p) in [("a", Int64(0)), ("b", 0), ("a", 1), ("a", 9)] {
            try b.appendToken(TokenMetadata(domain: d, problemID: p, position: 0, phase: .decode))
        }
        let block = b.makeBlock()
        let folds = ProblemFolds()
        #expect(
            folds.folds(for: block) == [
                folds.fold(domain: "a", problemID: 0), folds.fold(domain: "b", problemID: 0),
                folds.fold(domain: "a", problemID: 1), folds.fold(domain: "a", problemID: 9),
            ]
        )
    }

    @Test func problemSetCountsDistinctProblemsAndMerges() throws {
        var b = RoutingBlockBuilder(shape: .tinyMixtral)
        for (d, p) in [("a", Int64(0)), ("a", 0), ("b", 0), ("a", 1), ("a", 0)] {
            try b.appendToken(TokenMetadata(domain: d, problemID: p, position: 0, phase: .decode))
        }
        var s = ProblemSet()
        s.insert(from: b.makeBlock())
        #expect(s.count == 3)
        #expect(
            s.sorted == [
                ProblemKey(domain: "a", problemID: 0), ProblemKey(domain: "a", problemID: 1),
                ProblemKey(domain: "b", problemID: 0),
            ]
        )
        var t = ProblemSet()
        t.insert(ProblemKey(domain: "c", problemID: 4))
        t.insert(ProblemKey(domain: "a", problemID: 1))
        s.merge(t)
        #expect(s.count == 4)
        let folds = ProblemFolds()
        #expect((0..<5).reduce(0) { $0 + s.count(inFold: $1, of: folds) } == 4)
    }

    @Test func perProblemCountsAccumulateAndMergeInAnyOrder() throws {
        var b = RoutingBlockBuilder(shape: .tinyMixtral)
        for (d, p) in [("a", Int64(0)), ("a", 0), ("b", 3), ("a", 1)] {
            try b.appendToken(TokenMetadata(domain: d, problemID: p, position: 0, phase: .decode))
        }
        let block = b.makeBlock()
        var x = ProblemCountAccumulator(width: 3)
        let rows = x.rows(for: block)
        #expect(rows == [0, 0, 1, 2])
        for (t, r) in rows.enumerated() { x.add(row: r, index: t % 3) }
        // Tokens 0, 1 -> a/0 at indices 0, 1; token 2 -> b/3 at 2; token 3 -> a/1 at 0.
        #expect(Array(x.counts(for: ProblemKey(domain: "a", problemID: 0))!) == [1, 1, 0])
        #expect(Array(x.counts(for: ProblemKey(domain: "b", problemID: 3))!) == [0, 0, 1])
        var y = ProblemCountAccumulator(width: 3)
        let r = y.row(for: ProblemKey(domain: "a", problemID: 1))
        y.add(row: r, index: 2, count: 5)
        var xy = x
        try xy.merge(y)
        var yx = y
        try yx.merge(x)
        #expect(xy == yx)
        #expect(Array(xy.counts(for: ProblemKey(domain: "a", problemID: 1))!) == [1, 0, 5])
        #expect(xy.totals() == [2, 1, 6])
        #expect(xy.sortedKeys.map(\.description) == ["a/0", "a/1", "b/3"])
        #expect(throws: RoutingError.self) { try xy.merge(ProblemCountAccumulator(width: 2)) }
    }
}
