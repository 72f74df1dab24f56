// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// ConcatenatedSource with named sources: a (problem, domain) key that two sources hold is refused
// (it would count twice); the same key across several blocks of one source is fine.

import MoERouting
import MoERoutingTestKit
import Testing

/// Hands out fixed blocks.
private final class FixedSource: RoutingBlockSource {
    let shape: ModelShape
    private var blocks: [RoutingBlock]
    init(_ blocks: [RoutingBlock]) {
        shape = blocks[0].shape
        self.blocks = blocks
    }
    func nextBlock() throws -> RoutingBlock? { blocks.isEmpty ? nil : blocks.removeFirst() }
}

struct ProblemOriginsTests {
    /// Two problems (ids 0 and 1) of `domain`, from a fresh generator.
    static func twoProblems(_ domain: String, seed: UInt64 = 1) -> RoutingBlock {
        var g = SyntheticRouting(shape: .tinyMixtral, seed: seed)
        return g.makeBlock(problems: 2, tokensPerProblem: 3, domain: domain)
    }

    static func drain(_ s: ConcatenatedSource) throws -> Int {
        var tokens = 0
        while let b = try s.nextBlock() { tokens += b.tokenCount }
        return tokens
    }

    @Test func theSameProblemInTwoNamedSourcesIsRefusedNamingBoth() throws {
        let a = Self.twoProblems("gsm8k")
        let copy = Self.twoProblems("gsm8k", seed: 9)
        let s = try ConcatenatedSource([FixedSource([a]), FixedSource([copy])], names: ["a.jsonl", "a.moetrace"])
        #expect(try s.nextBlock()?.tokenCount == 6)
        #expect(
            throws: DuplicateProblemError(problem: 0, domain: "gsm8k", firstInput: "a.jsonl", secondInput: "a.moetrace")
        ) {
            _ = try s.nextBlock()
        }
        let message = DuplicateProblemError(
            problem: 0,
            domain: "gsm8k",
            firstInput: "a.jsonl",
            secondInput: "a.moetrace"
        ).description
        #expect(message.hasPrefix("problem 0 (gsm8k) is in both a.jsonl and a.moetrace"))
    }

    @Test func aProblemMaySpanBlocksOfOneSourceAndDomainsKeepProblemsApart() throws {
        let first = Self.twoProblems("gsm8k")
        // Problem 1 again in the same source's next block: one problem in two blocks.
        var g = SyntheticRouting(shape: .tinyMixtral, seed: 2)
        _ = g.makeBlock(problems: 1, tokensPerProblem: 1, domain: "gsm8k")
        let rest = g.makeBlock(problems: 1, tokensPerProblem: 2, domain: "gsm8k")
        #expect(rest.problemID == [1, 1])
        // The same ids in another domain are other problems.
        let other = Self.twoProblems("humaneval")
        let s = try ConcatenatedSource([FixedSource([first, rest]), FixedSource([other])], names: ["a", "b"])
        #expect(try Self.drain(s) == 6 + 2 + 6)
    }

    @Test func unnamedSourcesAreNotChecked() throws {
        let s = try ConcatenatedSource([FixedSource([Self.twoProblems("d")]), FixedSource([Self.twoProblems("d")])])
        #expect(try Self.drain(s) == 12)
    }
}
