// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing
import VLLMCapture

/// Feeds an assembler from plain arrays.
private struct Feeder {
    let assembler: RoutingAssembler

    /// One step: rows as (request, position, token, prefill); per layer, each row's experts and weights.
    func step(
        _ rows: [(Int32, Int32, Int32, UInt8)],
        layers: [[(experts: [Int32], weights: [Float])]],
        index: Int? = nil
    ) throws {
        let ri = rows.map(\.0)
        let pos = rows.map(\.1)
        let tok = rows.map(\.2)
        let pf = rows.map(\.3)
        try ri.withUnsafeBufferPointer { a in
            try pos.withUnsafeBufferPointer { b in
                try tok.withUnsafeBufferPointer { c in
                    try pf.withUnsafeBufferPointer { d in
                        try assembler.beginStep(step: index, runIndex: a, positions: b, tokenIDs: c, prefill: d)
                    }
                }
            }
        }
        for (l, cells) in layers.enumerated() {
            let ids = cells.flatMap(\.experts)
            let w = cells.flatMap(\.weights)
            try ids.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { ww in try assembler.addLayer(l, ids: i, weights: ww) }
            }
        }
        assembler.endStep()
    }
}

/// A deterministic cell for (request, position, layer): two distinct experts out of 4, weights 0.7/0.3
/// given lowest-weight first so the assembler must reorder them.
private func cell(_ r: Int32, _ p: Int32, _ l: Int) -> (experts: [Int32], weights: [Float]) {
    let a = (r + p + Int32(l)) % 4
    let b = (a + 1 + p % 3) % 4
    return ([b, a], [0.3, 0.7])
}

private func layersFor(_ rows: [(Int32, Int32, Int32, UInt8)], layers: Int) -> [[(experts: [Int32], weights: [Float])]]
{
    (0..<layers).map { l in rows.map { cell($0.0, $0.1, l) } }
}

@Suite struct RoutingAssemblerTests {
    let shape = try! ModelShape(layers: 2, experts: 4, topK: 2, name: "test")
    let problems = [
        Problem(domain: "humaneval", problemID: 10, prompt: "a"),
        Problem(domain: "gsm8k", problemID: 3, prompt: "b"),
    ]

    /// Each token keeps the step that routed it: the index handed over, or the call order.
    @Test func tokensKeepTheStepThatRoutedThem() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let f = Feeder(assembler: a)
        let s0: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 5, 1), (0, 1, 6, 1), (1, 0, 7, 1)]
        let s1: [(Int32, Int32, Int32, UInt8)] = [(0, 2, 8, 0), (1, 1, 9, 0)]
        let s2: [(Int32, Int32, Int32, UInt8)] = [(1, 2, 4, 0)]
        try f.step(s0, layers: layersFor(s0, layers: 2), index: 40)
        try f.step(s1, layers: layersFor(s1, layers: 2), index: 41)
        try f.step(s2, layers: layersFor(s2, layers: 2), index: 43)
        #expect(try a.finishRequest(0, promptLength: 2, generatedCount: 2).block.step == [40, 40, 41])
        #expect(try a.finishRequest(1, promptLength: 1, generatedCount: 3).block.step == [40, 41, 43])

        let b = RoutingAssembler(shape: shape, problems: problems)
        let g = Feeder(assembler: b)
        try g.step(s0, layers: layersFor(s0, layers: 2))
        try g.step(s1, layers: layersFor(s1, layers: 2))
        #expect(try b.finishRequest(0, promptLength: 2, generatedCount: 2).block.step == [0, 0, 1])
        // A token past the last fed-back position is dropped with its step.
        #expect(try b.finishRequest(1, promptLength: 1, generatedCount: 1).block.step == [0])
        #expect(throws: CaptureError.self) {
            let c = RoutingAssembler(shape: shape, problems: problems)
            try Feeder(assembler: c).step(s0, layers: layersFor(s0, layers: 2), index: Int(UInt32.max))
        }
    }

    @Test func chunkedPrefillAndDecodeInterleavedGiveOneOrderedBlockPerRequest() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let f = Feeder(assembler: a)
        // Request 0: prompt of 3 tokens, request 1: prompt of 2; chunk limit splits request 0's prompt.
        let s1: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 100, 1), (0, 1, 101, 1)]
        let s2: [(Int32, Int32, Int32, UInt8)] = [(0, 2, 102, 1), (1, 0, 200, 1), (1, 1, 201, 1)]
        let s3: [(Int32, Int32, Int32, UInt8)] = [(0, 3, 103, 0), (1, 2, 202, 0)]
        for s in [s1, s2, s3] { try f.step(s, layers: layersFor(s, layers: 2)) }
        #expect(a.statistics.rows == 7)
        #expect(a.statistics.steps == 3)
        #expect(a.statistics.layerCalls == 6)
        // Request 0 generated 2 tokens (the second never fed back): positions 0...3 routed.
        let r0 = try a.finishRequest(0, promptLength: 3, generatedCount: 2)
        #expect(r0.expectedPositions == 4)
        #expect(r0.unroutedPositions.isEmpty)
        let b = r0.block
        #expect(b.tokenCount == 4)
        #expect(b.position == [0, 1, 2, 3])
        #expect(b.tokenID == [100, 101, 102, 103])
        #expect(b.phase == [.prefill, .prefill, .prefill, .decode])
        #expect(b.problemID == [10, 10, 10, 10])
        #expect(b.domains == ["humaneval", "gsm8k"])
        #expect(b.domain == [0, 0, 0, 0])
        for t in 0..<4 {
            for l in 0..<2 {
                let c = cell(0, Int32(t), l)
                #expect(b.isPresent(token: t, layer: l))
                // Ordered by weight: the 0.7 expert first.
                #expect(b.expert(token: t, layer: l, slot: 0) == Int(c.experts[1]))
                #expect(b.expert(token: t, layer: l, slot: 1) == Int(c.experts[0]))
                #expect(b.weight(token: t, layer: l, slot: 0) == 0.7)
                #expect(b.weight(token: t, layer: l, slot: 1) == 0.3)
            }
        }
        let r1 = try a.finishRequest(1, promptLength: 2, generatedCount: 2)
        #expect(r1.block.position == [0, 1, 2])
        #expect(r1.block.domain == [1, 1, 1])
        #expect(r1.block.problemID == [3, 3, 3])
        #expect(a.requestsInFlight == 0)
    }

    @Test func recomputedUnknownAndLateRowsAreDroppedAndCounted() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let f = Feeder(assembler: a)
        let s1: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 1, 1), (0, 1, 2, 1), (-1, 0, 9, 1)]
        try f.step(s1, layers: layersFor(s1, layers: 2))
        // Request 0 preempted and recomputed from position 0: rows 0 and 1 again, then 2.
        let s2: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 1, 1), (0, 1, 2, 1), (0, 2, 3, 0)]
        try f.step(s2, layers: layersFor(s2, layers: 2))
        #expect(a.statistics.unknownRequestRows == 1)
        #expect(a.statistics.recomputedRows == 2)
        #expect(a.statistics.rows == 3)
        // An extra step past the end (position 3 with only 2 generated tokens: 0...2 expected).
        let s3: [(Int32, Int32, Int32, UInt8)] = [(0, 3, 4, 0)]
        try f.step(s3, layers: layersFor(s3, layers: 2))
        let r = try a.finishRequest(0, promptLength: 2, generatedCount: 2)
        #expect(r.block.position == [0, 1, 2])
        #expect(a.statistics.rowsAfterFinish == 1)
        // Rows of a finished request are dropped too.
        try f.step(s3, layers: layersFor(s3, layers: 2))
        #expect(a.statistics.rowsAfterFinish == 2)
        #expect(throws: CaptureError.self) { try a.finishRequest(0, promptLength: 2, generatedCount: 2) }
    }

    @Test func positionsNeverRoutedAreReportedAsRanges() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let f = Feeder(assembler: a)
        // Prefix cache served positions 0...3; routing starts at 4.
        let s1: [(Int32, Int32, Int32, UInt8)] = [(1, 4, 1, 1), (1, 5, 2, 1)]
        try f.step(s1, layers: layersFor(s1, layers: 2))
        // A step where layer 1 never arrives: position 6 is incomplete.
        let s2: [(Int32, Int32, Int32, UInt8)] = [(1, 6, 3, 0)]
        try f.step(s2, layers: [layersFor(s2, layers: 1)[0]])
        #expect(a.statistics.incompleteSteps == 1)
        let r = try a.finishRequest(1, promptLength: 6, generatedCount: 3)  // expects 0...7
        #expect(r.expectedPositions == 8)
        #expect(r.unroutedPositions == [0...3, 6...7])
        #expect(r.unroutedCount == 6)
        #expect(r.block.tokenCount == 3)
        #expect(!r.block.isPresent(token: 2, layer: 1))
    }

    @Test func drainUnfinishedHandsOverPartialRouting() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let s1: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 1, 1), (1, 0, 5, 1)]
        let f = Feeder(assembler: a)
        try f.step(s1, layers: layersFor(s1, layers: 2))
        _ = try a.finishRequest(1, promptLength: 1, generatedCount: 1)
        let drained = a.drainUnfinished()
        #expect(drained.map(\.index) == [0])
        #expect(drained[0].block.tokenCount == 1)
        #expect(drained[0].unroutedPositions.isEmpty)
        #expect(a.requestsInFlight == 0)
    }

    @Test func malformedBatchesAreRejectedWithTheirCause() throws {
        let a = RoutingAssembler(shape: shape, problems: problems)
        let ids: [Int32] = [0, 1]
        let w: [Float] = [0.5, 0.5]
        // Outside a step.
        #expect(throws: CaptureError.self) {
            try ids.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { try a.addLayer(0, ids: i, weights: $0) }
            }
        }
        let f = Feeder(assembler: a)
        let s: [(Int32, Int32, Int32, UInt8)] = [(0, 0, 1, 1)]
        let ri: [Int32] = [0]
        let pos: [Int32] = [0]
        let tok: [Int32] = [1]
        let pf: [UInt8] = [1]
        try ri.withUnsafeBufferPointer { r in
            try pos.withUnsafeBufferPointer { p in
                try tok.withUnsafeBufferPointer { t in
                    try pf.withUnsafeBufferPointer {
                        try a.beginStep(runIndex: r, positions: p, tokenIDs: t, prefill: $0)
                    }
                }
            }
        }
        try ids.withUnsafeBufferPointer { i in try w.withUnsafeBufferPointer { try a.addLayer(0, ids: i, weights: $0) }
        }
        // The same layer twice, a layer outside the shape, a batch of the wrong size.
        #expect(throws: CaptureError.self) {
            try ids.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { try a.addLayer(0, ids: i, weights: $0) }
            }
        }
        #expect(throws: CaptureError.self) {
            try ids.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { try a.addLayer(2, ids: i, weights: $0) }
            }
        }
        let three: [Int32] = [0, 1, 2]
        #expect(throws: CaptureError.self) {
            try three.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { try a.addLayer(1, ids: i, weights: $0) }
            }
        }
        // An expert outside E is a routing error naming the row.
        let bad: [Int32] = [0, 7]
        #expect(throws: RoutingError.self) {
            try bad.withUnsafeBufferPointer { i in
                try w.withUnsafeBufferPointer { try a.addLayer(1, ids: i, weights: $0) }
            }
        }
        // A duplicate expert, a NaN weight, a negative weight: each in a step of its own.
        var nextPosition: Int32 = 0
        func message(_ ids: [Int32], _ weights: [Float]) -> String {
            a.endStep()
            let ri: [Int32] = [1]
            let pos: [Int32] = [nextPosition]
            let tok: [Int32] = [1]
            let pf: [UInt8] = [1]
            nextPosition += 1
            do {
                try ri.withUnsafeBufferPointer { r in
                    try pos.withUnsafeBufferPointer { p in
                        try tok.withUnsafeBufferPointer { t in
                            try pf.withUnsafeBufferPointer {
                                try a.beginStep(runIndex: r, positions: p, tokenIDs: t, prefill: $0)
                            }
                        }
                    }
                }
                try ids.withUnsafeBufferPointer { i in
                    try weights.withUnsafeBufferPointer { try a.addLayer(0, ids: i, weights: $0) }
                }
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(message([2, 3], [0.25, 0.75]) == "")
        #expect(message([2, 2], [0.5, 0.5]).contains("expert id 2 appears twice"))
        #expect(message([2, 3], [.nan, 0.5]).contains("not a finite, non-negative number"))
        #expect(message([2, 3], [0.5, -0.1]).contains("not a finite, non-negative number"))
        a.endStep()
        // The bad layer of request 0's step is missing, zeros and all; its good layer is kept.
        let r0 = try a.finishRequest(0, promptLength: 1, generatedCount: 1).block
        #expect(r0.present == [true, false])
        #expect((0..<2).map { r0.expert(token: 0, layer: 0, slot: $0) } == [0, 1])
        #expect((0..<2).map { r0.expert(token: 0, layer: 1, slot: $0) } == [0, 0])
        #expect((0..<2).map { r0.weight(token: 0, layer: 1, slot: $0) } == [0, 0])
        // Non-consecutive positions within one request's rows.
        let gap: [(Int32, Int32, Int32, UInt8)] = [(1, 0, 1, 1), (1, 2, 1, 1)]
        #expect(throws: CaptureError.self) { try f.step(gap, layers: []) }
        _ = s
    }
}
