// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing

struct PhaseFilteredSourceTests {
    /// Blocks from a list.
    final class ListSource: RoutingBlockSource {
        let shape: ModelShape
        var blocks: [RoutingBlock]
        init(_ blocks: [RoutingBlock]) {
            shape = blocks[0].shape
            self.blocks = blocks
        }
        func nextBlock() throws -> RoutingBlock? { blocks.isEmpty ? nil : blocks.removeFirst() }
    }

    /// Two blocks: 3 prefill then 2 decode tokens of problem 0, with steps; then 2 decode tokens
    /// of problem 1. Token n routes to (n % 8, (n + 1) % 8); token 1 lacks layer 2.
    static func blocks() throws -> [RoutingBlock] {
        var builder = RoutingBlockBuilder(shape: .tinyMixtral)
        var out: [RoutingBlock] = []
        var n = 0
        for (problem, phases) in [
            (Int64(0), [RoutingPhase.prefill, .prefill, .prefill, .decode, .decode]), (1, [.decode, .decode]),
        ] {
            for (i, phase) in phases.enumerated() {
                let t = try builder.appendToken(
                    TokenMetadata(
                        domain: "d\(problem)",
                        problemID: problem,
                        position: Int32(i),
                        phase: phase,
                        tokenID: Int32(100 + n),
                        step: UInt32(n)
                    )
                )
                for l in 0..<4 where !(n == 1 && l == 2) {
                    try builder.setCell(token: t, layer: l, experts: [n % 8, (n + 1) % 8], weights: [0.6, 0.4])
                }
                n += 1
            }
            out.append(builder.makeBlock())
        }
        return out
    }

    static func drain(_ s: some RoutingBlockSource) throws -> [RoutingBlock] {
        var out: [RoutingBlock] = []
        while let b = try s.nextBlock() { out.append(b) }
        return out
    }

    @Test func keepsOnlyTheSelectedPhaseWithEveryColumn() throws {
        let prefill = PhaseFilteredSource(ListSource(try Self.blocks()), keeping: .prefill)
        let p = try Self.drain(prefill)
        #expect(p.count == 1)  // the second block has no prefill token and is not passed on
        #expect(p[0].tokenCount == 3)
        #expect(p[0].tokenID == [100, 101, 102])
        #expect(p[0].step == [0, 1, 2])
        #expect(p[0].recordCount == 11)
        #expect(!p[0].isPresent(token: 1, layer: 2))
        #expect(prefill.droppedTokens == 4)

        let decode = PhaseFilteredSource(ListSource(try Self.blocks()), keeping: .decode)
        let d = try Self.drain(decode)
        #expect(d.map(\.tokenCount) == [2, 2])
        #expect(d[0].tokenID == [103, 104])
        #expect(d[0].position == [3, 4])
        #expect(d[0].expert(token: 1, layer: 3, slot: 0) == 4)
        #expect(d[0].expert(token: 1, layer: 3, slot: 1) == 5)
        #expect(d[0].domains == ["d0"])
        #expect(d[1].problemID == [1, 1])
        #expect(d[1].domains == ["d0", "d1"])
        #expect(d.allSatisfy { $0.hasConsistentColumns })
        #expect(decode.droppedTokens == 3)

        let all = PhaseFilteredSource(ListSource(try Self.blocks()), keeping: .all)
        #expect(try Self.drain(all) == (try Self.blocks()))
        #expect(all.droppedTokens == 0)
    }
}
