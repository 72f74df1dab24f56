// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The optional per-token step column (RoutingBlock.step): the checked initialiser, consistency,
// equality, the builder's step recording and ConcatenatedSource carrying it through a remap.

import MoERouting
import Testing

struct RoutingBlockStepTests {
    let shape = try! ModelShape(layers: 2, experts: 4, topK: 2)

    /// A block of `tokens` tokens whose cells are all missing, built with the checked initialiser.
    func block(tokens: Int, domains: [String] = ["d"], domain: [UInt16]? = nil, step: [UInt32]?) throws -> RoutingBlock
    {
        try RoutingBlock(
            shape: shape,
            ids: .narrow(Array(repeating: 0, count: tokens * 4)),
            weights: Array(repeating: 0, count: tokens * 4),
            present: Array(repeating: false, count: tokens * 2),
            domain: domain ?? Array(repeating: 0, count: tokens),
            domains: domains,
            problemID: Array(repeating: 3, count: tokens),
            position: (0..<tokens).map { Int32($0) },
            phase: Array(repeating: .decode, count: tokens),
            tokenID: Array(repeating: -1, count: tokens),
            step: step
        )
    }

    @Test func checkedInitKeepsStepsAndRefusesAWrongLength() throws {
        #expect(try block(tokens: 3, step: nil).step == nil)
        #expect(try block(tokens: 3, step: [4, .max, 0]).step == [4, .max, 0])
        for bad: [UInt32] in [[1, 2], [1, 2, 3, 4], []] {
            #expect {
                _ = try block(tokens: 3, step: bad)
            } throws: { error in
                guard case RoutingError.invalidRecord(let issue) = error else { return false }
                return issue.detail == "column 'step' holds \(bad.count) values, expected 3"
            }
        }
    }

    @Test func consistencyEqualityAndEmpty() throws {
        let none = try block(tokens: 2, step: nil)
        let some = try block(tokens: 2, step: [7, 8])
        #expect(none.hasConsistentColumns && some.hasConsistentColumns)
        #expect(none != some)
        #expect(some != (try block(tokens: 2, step: [7, 9])))
        #expect(some == (try block(tokens: 2, step: [7, 8])))
        // All unknown is still a column: not the same as no column.
        #expect(none != (try block(tokens: 2, step: [.max, .max])))
        let broken = RoutingBlock(
            unchecked: shape,
            tokenCount: 2,
            ids: none.ids,
            weights: none.weights,
            present: none.present,
            domain: none.domain,
            domains: none.domains,
            problemID: none.problemID,
            position: none.position,
            phase: none.phase,
            tokenID: none.tokenID,
            step: [1]
        )
        #expect(!broken.hasConsistentColumns)
        #expect(RoutingBlock.empty(shape: shape).step == nil)
    }

    @Test func tokenMetadataStepDefaultsToNil() {
        let plain = TokenMetadata(domain: "d", problemID: 1, position: 2, phase: .prefill, tokenID: 9)
        #expect(plain.step == nil)
        let stepped = TokenMetadata(domain: "d", problemID: 1, position: 2, phase: .prefill, tokenID: 9, step: 12)
        #expect(stepped.step == 12)
        #expect(plain != stepped)
    }

    @Test func builderWithoutStepsGivesNoColumn() throws {
        var b = RoutingBlockBuilder(shape: shape)
        let t = try b.appendToken(TokenMetadata(domain: "d", problemID: 0, position: 0, phase: .decode))
        try b.setCell(token: t, layer: 1, experts: [2, 3], weights: [0.25, 0.75])
        b.appendToken(domainIndex: 0, problemID: 0, position: 1, phase: .decode, tokenID: 5)
        // The step overload with "unknown" does not create the column either.
        b.appendToken(domainIndex: 0, problemID: 0, position: 2, phase: .decode, tokenID: 6, step: .max)
        let block = b.makeBlock()
        #expect(block.tokenCount == 3)
        #expect(block.step == nil)
        #expect(block.expert(token: 0, layer: 1, slot: 0) == 3)
    }

    @Test func builderRecordsStepsAndMarksTheOthersUnknown() throws {
        var b = RoutingBlockBuilder(shape: shape)
        // Every token with a step.
        for (i, s) in [UInt32(0), 0, 1].enumerated() {
            _ = try b.appendToken(
                TokenMetadata(domain: "d", problemID: 0, position: Int32(i), phase: .prefill, step: s)
            )
        }
        #expect(b.makeBlock().step == [0, 0, 1])

        // Mixed: the column appears at the first step; earlier and later step-less tokens are unknown.
        _ = try b.appendToken(TokenMetadata(domain: "d", problemID: 1, position: 0, phase: .decode))
        b.appendToken(domainIndex: 0, problemID: 1, position: 1, phase: .decode, tokenID: -1)
        let t2 = try b.appendToken(TokenMetadata(domain: "e", problemID: 1, position: 2, phase: .decode, step: 5))
        try b.setCell(token: t2, layer: 0, experts: [1, 0], weights: [0.5, 0.5])
        b.appendToken(domainIndex: 0, problemID: 1, position: 3, phase: .decode, tokenID: 4)
        b.appendToken(domainIndex: 0, problemID: 1, position: 4, phase: .decode, tokenID: 4, step: 4_000_000_000)
        b.appendToken(domainIndex: 0, problemID: 1, position: 5, phase: .decode, tokenID: 4, step: .max)
        let mixed = b.makeBlock()
        #expect(mixed.step == [.max, .max, 5, .max, 4_000_000_000, .max])
        #expect(mixed.hasConsistentColumns)
        #expect(mixed.position == [0, 1, 2, 3, 4, 5])
        #expect(mixed.top1(token: 2, layer: 0) == 1)

        // The column does not leak into the next block.
        _ = try b.appendToken(TokenMetadata(domain: "d", problemID: 2, position: 0, phase: .decode))
        #expect(b.makeBlock().step == nil)
        // A step on the last token only.
        _ = try b.appendToken(TokenMetadata(domain: "d", problemID: 3, position: 0, phase: .decode))
        _ = try b.appendToken(TokenMetadata(domain: "d", problemID: 3, position: 1, phase: .decode, step: 0))
        #expect(b.makeBlock().step == [.max, 0])
    }

    @Test func concatenatedSourceKeepsStepsThroughADomainRemap() throws {
        // The second source numbers "b" as 0, so its block is rebuilt with remapped domains.
        let first = try block(tokens: 2, domains: ["a"], step: [0, 1])
        let second = try block(tokens: 3, domains: ["b", "a"], domain: [0, 1, 0], step: [2, .max, 3])
        let third = try block(tokens: 1, domains: ["b"], step: nil)
        let source = try ConcatenatedSource([StepArraySource([first]), StepArraySource([second, third])])
        var got: [RoutingBlock] = []
        while let b = try source.nextBlock() { got.append(b) }
        #expect(got.count == 3)
        #expect(got.map(\.step) == [[0, 1], [2, .max, 3], nil])
        #expect(got[1].domain == [1, 0, 1])
        #expect(got[1].domains == ["a", "b"])
        #expect(got[2].domain == [1])
    }
}

/// Hands out fixed blocks.
private final class StepArraySource: RoutingBlockSource {
    let shape: ModelShape
    private var blocks: [RoutingBlock]
    init(_ blocks: [RoutingBlock]) {
        self.shape = blocks[0].shape
        self.blocks = blocks
    }
    func nextBlock() throws -> RoutingBlock? { blocks.isEmpty ? nil : blocks.removeFirst() }
}
