// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing

struct RoutingBlockBuilderTests {
    let shape = try! ModelShape(layers: 3, experts: 4, topK: 2)

    @Test func ordersExpertsByWeightAndKeepsMetadata() throws {
        var b = RoutingBlockBuilder(shape: shape)
        let t0 = try b.appendToken(
            TokenMetadata(domain: "gsm8k", problemID: 7, position: 3, phase: .decode, tokenID: 42)
        )
        let t1 = try b.appendToken(TokenMetadata(domain: "humaneval", problemID: 1, position: 0, phase: .prefill))
        try b.setCell(token: t0, layer: 0, experts: [1, 3], weights: [0.25, 0.75])
        try b.setCell(token: t0, layer: 2, experts: [0, 2], weights: [0.6, 0.4])
        try b.setCell(token: t1, layer: 1, experts: [3, 2], weights: [0.5, 0.5])
        let block = b.makeBlock()
        #expect(block.tokenCount == 2)
        #expect(block.expert(token: 0, layer: 0, slot: 0) == 3)
        #expect(block.expert(token: 0, layer: 0, slot: 1) == 1)
        #expect(block.weight(token: 0, layer: 0, slot: 0) == 0.75)
        #expect(block.top1(token: 0, layer: 1) == nil)
        #expect(block.top1(token: 0, layer: 2) == 0)
        // Ties keep the given order.
        #expect(block.expert(token: 1, layer: 1, slot: 0) == 3)
        #expect(block.domains == ["gsm8k", "humaneval"])
        #expect(block.domainName(token: 1) == "humaneval")
        #expect(block.problemID == [7, 1])
        #expect(block.position == [3, 0])
        #expect(block.phase == [.decode, .prefill])
        #expect(block.tokenID == [42, -1])
        #expect(block.recordCount == 3)
        #expect(block.completeJourneyCount == 0)
        // The next block keeps the domain table and starts empty.
        #expect(b.tokenCount == 0)
        _ = try b.appendToken(TokenMetadata(domain: "humaneval", problemID: 2, position: 0, phase: .decode))
        #expect(b.makeBlock().domain == [1])
    }

    @Test(arguments: [
        ([0, 4], [0.5, 0.5] as [Float], RecordIssue.Kind.expertOutOfRange),
        ([0, -1], [0.5, 0.5], .expertOutOfRange),
        ([1, 1], [0.5, 0.5], .duplicateExpert),
        ([0, 1], [Float.nan, 0.5], .invalidWeight),
        ([0, 1], [-0.1, 0.5], .invalidWeight),
        ([0, 1], [Float.infinity, 0.5], .invalidWeight),
        ([0, 1, 2], [0.5, 0.3, 0.2], .topKMismatch),
        ([0, 1], [0.5], .topKMismatch),
    ])
    func rejectsBadCells(experts: [Int], weights: [Float], kind: RecordIssue.Kind) throws {
        var b = RoutingBlockBuilder(shape: shape)
        let t = try b.appendToken(TokenMetadata(domain: "d", problemID: 0, position: 0, phase: .decode))
        #expect {
            try b.setCell(token: t, layer: 0, experts: experts, weights: weights)
        } throws: { error in
            guard case RoutingError.invalidRecord(let issue) = error else { return false }
            return issue.kind == kind
        }
        #expect(!b.isSet(token: t, layer: 0))
    }

    @Test func rejectsDuplicateCellAndBadLayer() throws {
        var b = RoutingBlockBuilder(shape: shape)
        let t = try b.appendToken(TokenMetadata(domain: "d", problemID: 0, position: 0, phase: .decode))
        try b.setCell(token: t, layer: 1, experts: [0, 1], weights: [0.9, 0.1])
        #expect(
            throws: RoutingError.invalidRecord(
                RecordIssue(.duplicateCell, "a second record for layer 1 of the same token")
            )
        ) {
            try b.setCell(token: t, layer: 1, experts: [2, 3], weights: [0.9, 0.1])
        }
        #expect(throws: RoutingError.invalidRecord(RecordIssue(.layerOutOfRange, "layer 3 is outside 0..<3 (L)"))) {
            try b.setCell(token: t, layer: 3, experts: [2, 3], weights: [0.9, 0.1])
        }
        // The first write survived.
        #expect(b.makeBlock().expert(token: 0, layer: 1, slot: 0) == 0)
    }

    @Test func setLayerFromEngineBatch() throws {
        var b = RoutingBlockBuilder(shape: shape)
        for p in 0..<3 {
            try b.appendToken(TokenMetadata(domain: "d", problemID: Int64(p), position: 0, phase: .prefill))
        }
        let ids: [Int32] = [0, 1, 3, 2, 1, 0]
        let w: [Float] = [0.3, 0.7, 0.6, 0.4, 0.5, 0.5]
        try ids.withUnsafeBufferPointer { i in
            try w.withUnsafeBufferPointer { w in
                try b.setLayer(layer: 2, firstToken: 0, rows: 3, experts: i, weights: w)
            }
        }
        let block = b.makeBlock()
        #expect((0..<3).map { block.top1(token: $0, layer: 2) } == [1, 3, 1])
        #expect(block.recordCount == 3)
    }

    @Test func wideIDsBeyond256Experts() throws {
        let wide = try ModelShape(layers: 1, experts: 300, topK: 2)
        var b = RoutingBlockBuilder(shape: wide)
        let t = try b.appendToken(TokenMetadata(domain: "d", problemID: 0, position: 0, phase: .decode))
        try b.setCell(token: t, layer: 0, experts: [299, 256], weights: [0.4, 0.6])
        let block = b.makeBlock()
        guard case .wide = block.ids else {
            Issue.record("expected wide ids")
            return
        }
        #expect(block.expert(token: 0, layer: 0, slot: 0) == 256)
        #expect(block.expert(token: 0, layer: 0, slot: 1) == 299)
    }

    @Test func checkedInitRejectsBadColumns() throws {
        #expect(throws: RoutingError.self) {
            _ = try RoutingBlock(
                shape: shape,
                ids: .narrow([0, 1]),
                weights: [0.5, 0.5],
                present: [true, false, false],
                domain: [0],
                domains: ["d"],
                problemID: [0],
                position: [0],
                phase: [.decode],
                tokenID: [-1]
            )
        }
        // Unordered weights in a present cell are refused by the checked initialiser.
        #expect(throws: RoutingError.self) {
            _ = try RoutingBlock(
                shape: try ModelShape(layers: 1, experts: 4, topK: 2),
                ids: .narrow([0, 1]),
                weights: [0.2, 0.8],
                present: [true],
                domain: [0],
                domains: ["d"],
                problemID: [0],
                position: [0],
                phase: [.decode],
                tokenID: [-1]
            )
        }
        let ok = try RoutingBlock(
            shape: try ModelShape(layers: 1, experts: 4, topK: 2),
            ids: .narrow([1, 0]),
            weights: [0.8, 0.2],
            present: [true],
            domain: [0],
            domains: ["d"],
            problemID: [0],
            position: [0],
            phase: [.decode],
            tokenID: [-1]
        )
        #expect(ok.top1(token: 0, layer: 0) == 1)
    }

    @Test func shapeValidationAndPresets() throws {
        #expect(throws: RoutingError.self) { _ = try ModelShape(layers: 0, experts: 8, topK: 2) }
        #expect(throws: RoutingError.self) { _ = try ModelShape(layers: 4, experts: 8, topK: 9) }
        #expect(ModelShape.presets["mixtral-8x7b"] == ModelShape.mixtral8x7B)
        for (key, shape) in ModelShape.presets { #expect(shape.name == key) }
        let modern = ["qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3", "kimi-k2", "gpt-oss-120b", "gpt-oss-20b"]
        #expect(
            modern.map { ModelShape.presets[$0].map { [$0.layers, $0.experts, $0.topK] } ?? [] } == [
                [48, 128, 8], [94, 128, 8], [58, 256, 8], [60, 384, 8], [36, 128, 4], [24, 32, 4],
            ]
        )
        #expect(ModelShape.presets["kimi-k2"]?.usesNarrowIDs == false)
        #expect(
            ModelShape.mixtral8x7B.layers == 32 && ModelShape.mixtral8x7B.experts == 8
                && ModelShape.mixtral8x7B.topK == 2
        )
    }
}
