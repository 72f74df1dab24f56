// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The test kit's MergeCheck: it passes a merge that equals one pass, and catches a merge that
// loses state, one whose result depends on the merge order, and one that drops a table.

import MoERouting
import MoERoutingTestKit
import Testing

/// Counts tokens per problem; `flaw` breaks its merge in one way.
private final class ProblemTokenCounter: RoutingAnalyzer {
    enum Flaw { case none, ignoresOther, keepsMergeOrder, dropsTable }
    let name = "problem-tokens"
    let flaw: Flaw
    /// (problem, tokens) in first-seen order.
    private var counts: [(problem: Int64, tokens: Int)] = []
    private var merged = false

    init(flaw: Flaw = .none) { self.flaw = flaw }

    func begin(_ context: AnalysisContext) throws {}

    func consume(_ block: RoutingBlock) throws {
        for t in 0..<block.tokenCount { add(block.problemID[t], 1) }
    }

    private func add(_ problem: Int64, _ tokens: Int) {
        if let i = counts.firstIndex(where: { $0.problem == problem }) {
            counts[i].tokens += tokens
        } else {
            counts.append((problem, tokens))
        }
    }

    func merge(_ other: any RoutingAnalyzer) throws {
        let other = try mergeable(other)
        merged = true
        guard flaw != .ignoresOther else { return }
        for c in other.counts { add(c.problem, c.tokens) }
    }

    func finish() throws -> AnalyzerReport {
        // A correct report does not depend on the order problems were first seen in.
        let rows = flaw == .keepsMergeOrder ? counts : counts.sorted { $0.problem < $1.problem }
        let table = ReportTable(
            title: "Tokens per problem",
            columns: ["problem", "tokens"],
            rows: rows.map { ["\($0.problem)", "\($0.tokens)"] }
        )
        return AnalyzerReport(
            analyzer: name,
            title: "Tokens per problem",
            json: ["problems": .int(rows.count), "tokens": .int(rows.reduce(0) { $0 + $1.tokens })],
            tables: flaw == .dropsTable && merged ? [] : [table]
        )
    }
}

struct MergeCheckTests {
    let context = AnalysisContext(shape: .tinyMixtral, seed: 3)
    let blocks: [RoutingBlock] = {
        var g = SyntheticRouting(shape: .tinyMixtral, seed: 4, missingRate: 0.05)
        return (0..<6).map { i in g.makeBlock(problems: 1 + i % 3, tokensPerProblem: 5 + i, domain: "d") }
    }()

    @Test func aMergeThatEqualsOnePassPassesAndReturnsTheOnePassReport() throws {
        let single = ProblemTokenCounter()
        try single.begin(context)
        for b in blocks { try single.consume(b) }
        let expected = try single.finish()
        #expect(expected.json["tokens"] == .int(blocks.reduce(0) { $0 + $1.tokenCount }))
        let halves = try MergeCheck.assertHalvesEqualOnePass(
            makeAnalyzer: { ProblemTokenCounter() },
            context: context,
            blocks: blocks
        )
        #expect(halves == expected)
        let shards = try MergeCheck.assertShardsEqualOnePass(
            makeAnalyzer: { ProblemTokenCounter() },
            context: context,
            blocks: blocks,
            trials: 8
        )
        #expect(shards == expected)
    }

    @Test func aMergeThatLosesStateIsCaughtWithADescriptiveError() throws {
        #expect {
            try MergeCheck.assertHalvesEqualOnePass(
                makeAnalyzer: { ProblemTokenCounter(flaw: .ignoresOther) },
                context: context,
                blocks: blocks
            )
        } throws: { error in
            guard let mismatch = error as? MergeCheck.Mismatch else { return false }
            let text = "\(mismatch)"
            return mismatch.analyzer == "problem-tokens" && mismatch.onePass != mismatch.merged
                && text.hasPrefix(
                    "'problem-tokens': merging differs from one pass (3 and 3 blocks in two instances, the second merged into the first)"
                )
                && text.contains("first difference at line") && !text.contains("\n")
        }
        #expect {
            try MergeCheck.assertShardsEqualOnePass(
                makeAnalyzer: { ProblemTokenCounter(flaw: .ignoresOther) },
                context: context,
                blocks: blocks
            )
        } throws: { error in
            "\(error)".contains(" of 6 (seed 1234): instance 0: blocks [")
                && "\(error)".contains("which then consumed block 5")
        }
    }

    @Test func aMergeWhoseResultDependsOnTheOrderIsCaught() throws {
        // Merging the second half into the first keeps the one-pass order of problems; the other
        // way round does not, and the halves check tries both.
        #expect {
            try MergeCheck.assertHalvesEqualOnePass(
                makeAnalyzer: { ProblemTokenCounter(flaw: .keepsMergeOrder) },
                context: context,
                blocks: blocks
            )
        } throws: { error in
            "\(error)".contains("the first merged into the second")
        }
    }

    @Test func aMergeThatChangesOnlyATableIsCaught() throws {
        // The JSON is right; the report's tables are compared too.
        #expect(throws: MergeCheck.Mismatch.self) {
            try MergeCheck.assertHalvesEqualOnePass(
                makeAnalyzer: { ProblemTokenCounter(flaw: .dropsTable) },
                context: context,
                blocks: blocks
            )
        }
    }

    @Test func errorsTheAnalyzerThrowsPassThrough() throws {
        #expect(throws: RoutingError.self) {
            try MergeCheck.assertHalvesEqualOnePass(
                makeAnalyzer: { RecordingAnalyzer(failAt: "merge") },
                context: context,
                blocks: blocks
            )
        }
    }
}
