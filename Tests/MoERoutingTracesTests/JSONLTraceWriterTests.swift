// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

struct JSONLTraceWriterTests {
    @Test func writesTheSharedDataSpellingPlusPhaseAndToken() throws {
        var builder = RoutingBlockBuilder(shape: .tinyMixtral)
        let t0 = try builder.appendToken(
            TokenMetadata(domain: "gsm8k", problemID: 3, position: 5, phase: .decode, tokenID: 17)
        )
        try builder.setCell(token: t0, layer: 0, experts: [5, 6], weights: [Float(0.25), 0.75])
        try builder.setCell(token: t0, layer: 2, experts: [1, 0], weights: [Float(0.8003801), 0.1996199])
        let t1 = try builder.appendToken(TokenMetadata(domain: "gsm8k", problemID: -3, position: 6, phase: .prefill))
        try builder.setCell(token: t1, layer: 3, experts: [7, 2], weights: [Float(1e-5), 0])
        let path = try JSONLFixtures.directory().appendingPathComponent("out.jsonl").path
        let writer = try JSONLTraceWriter(path: path)
        try writer.write(builder.makeBlock())
        try writer.close()
        #expect(writer.recordsWritten == 3)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text == """
                {"dataset":"gsm8k","problem_id":3,"layer":0,"token_idx":5,"experts":[6,5],"gating_probs":[0.75,0.25],"phase":"decode","token":17}
                {"dataset":"gsm8k","problem_id":3,"layer":2,"token_idx":5,"experts":[1,0],"gating_probs":[0.8003801,0.1996199],"phase":"decode","token":17}
                {"dataset":"gsm8k","problem_id":-3,"layer":3,"token_idx":6,"experts":[7,2],"gating_probs":[1e-05,0.0],"phase":"prefill"}

                """
        )
        try writer.close()  // a second close does nothing
        #expect(throws: TraceFileError.self) { try writer.write(RoutingBlock.empty(shape: .tinyMixtral)) }
    }

    @Test func writeThenReadGivesTheSameTokensAndCells() throws {
        var gen = SyntheticRouting(shape: .mixtral8x7B, seed: 9, missingRate: 0.05)
        let blocks = [
            gen.makeBlock(problems: 3, tokensPerProblem: 40, domain: "humaneval"),
            gen.makeBlock(problems: 2, tokensPerProblem: 25, domain: "gsm8k \"odd\"\\name"),
        ]
        // A prefill token too.
        var builder = RoutingBlockBuilder(shape: .mixtral8x7B)
        let t = try builder.appendToken(
            TokenMetadata(domain: "mbpp", problemID: 99, position: 0, phase: .prefill, tokenID: 5)
        )
        try builder.setCell(token: t, layer: 31, experts: [3, 4], weights: [Float(0.6), Float(0.4)])
        let all = blocks + [builder.makeBlock()]

        let path = try JSONLFixtures.directory().appendingPathComponent("roundtrip.jsonl").path
        let writer = try JSONLTraceWriter(path: path)
        for b in all { try writer.write(b) }
        try writer.close()

        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(blockTokens: 50))
        #expect(reader.shape.layers == 32)
        #expect(reader.shape.topK == 2)
        let back = try JSONLFixtures.readAll(reader)
        let expected = JSONLFixtures.tokens(all)
        let got = JSONLFixtures.tokens(back)
        #expect(got.count == expected.count)
        #expect(got.map(\.0) == expected.map(\.0))
        for ((k, a), (_, b)) in zip(expected, got) where a != b {
            Issue.record("token \(k) differs after the round trip")
        }
        #expect(reader.recordsRead == writer.recordsWritten)
        #expect(back.map(\.tokenCount).dropLast().allSatisfy { $0 == 50 })
        #expect(reader.summary.skippedTotal == 0)
    }

    @Test func unwritablePathIsAClearError() throws {
        let path = try JSONLFixtures.directory().appendingPathComponent("no/such/dir/out.jsonl").path
        #expect {
            try JSONLTraceWriter(path: path)
        } throws: { error in
            (error as? OutputFileError)?.description == "cannot write \(path): No such file or directory"
        }
    }
}
