// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

struct NPZTraceReaderTests {
    typealias S = BinaryTestSupport

    static func timing(_ step: Int64, layers: Int) -> LayerTimingRecord {
        LayerTimingRecord(
            step: step,
            rows: Int32(3 + step),
            routingNanoseconds: (0..<layers).map { Int64(100 * step) + Int64($0) },
            moeNanoseconds: (0..<layers).map { Int64(1000 * step) + Int64(7 * $0) }
        )
    }

    /// Writes blocks (and timings) with the NPZ writer, returns the archive's path.
    static func export(
        _ blocks: [RoutingBlock],
        to path: String,
        timings: [LayerTimingRecord] = [],
        zip64: Bool = false
    ) throws -> String {
        let writer = try NPZWriter(path: path, shape: S.narrowShape, settings: ["engine": "test", "seed": "7"])
        writer.forceZip64 = zip64
        for b in blocks { try writer.write(b) }
        try writer.writeTimings(timings)
        try writer.close()
        return path
    }

    /// All tokens of a stream as one block, for comparing streams cut into blocks differently.
    static func concatenated(_ blocks: [RoutingBlock]) throws -> RoutingBlock {
        var builder = RoutingBlockBuilder(shape: blocks[0].shape)
        for b in blocks {
            for t in 0..<b.tokenCount {
                let n = try builder.appendToken(
                    TokenMetadata(
                        domain: b.domainName(token: t),
                        problemID: b.problemID[t],
                        position: b.position[t],
                        phase: b.phase[t],
                        tokenID: b.tokenID[t],
                        step: b.step?[t] == .max ? nil : b.step?[t]
                    )
                )
                for l in 0..<b.shape.layers where b.isPresent(token: t, layer: l) {
                    try builder.setCell(
                        token: n,
                        layer: l,
                        experts: (0..<b.shape.topK).map { b.expert(token: t, layer: l, slot: $0) },
                        weights: (0..<b.shape.topK).map { b.weight(token: t, layer: l, slot: $0) }
                    )
                }
            }
        }
        return builder.makeBlock()
    }

    static func readAll(
        _ path: String,
        options: TraceReadOptions = TraceReadOptions()
    ) throws -> ([RoutingBlock], NPZTraceReader) {
        let reader = try NPZTraceReader(path: path, options: options)
        var blocks: [RoutingBlock] = []
        while let b = try reader.nextBlock() { blocks.append(b) }
        return (blocks, reader)
    }

    @Test(arguments: [false, true])
    func readsBackWhatTheWriterWroteWithTimingsAndSettings(zip64: Bool) throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let timings = (0..<5).map { Self.timing(Int64($0), layers: 4) }
        let path = try Self.export(blocks, to: dir + "/run.npz", timings: timings, zip64: zip64)
        let (back, reader) = try Self.readAll(path)
        #expect(reader.shape == S.narrowShape)  // the name comes back from model_name
        #expect(!reader.shapeWasInferred)
        #expect(reader.settings == ["engine": "test", "seed": "7"])
        #expect(reader.domains == ["humaneval", "gsm8k", "mbpp"])
        #expect(reader.tokenCount == 9)
        let expected = try Self.concatenated(blocks)
        let got = try Self.concatenated(back)
        #expect(S.sameColumns(expected, got))
        #expect(reader.takeTimingRecords() == timings)
        #expect(reader.takeTimingRecords().isEmpty)
        var totals = TraceTimingTotals(layers: 4)
        for r in timings { totals.add(r) }
        #expect(reader.timingTotals == totals)
    }

    @Test func blocksFollowBlockTokens() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = try Self.export(try S.sampleBlocks(), to: dir + "/run.npz")
        var options = TraceReadOptions()
        options.blockTokens = 4
        let (blocks, _) = try Self.readAll(path, options: options)
        #expect(blocks.map(\.tokenCount) == [4, 4, 1])
    }

    /// numpy.savez_compressed output: deflate members, int64 ids, float64 weights, int8 phase,
    /// unicode domain names per token, no shape array (inferred from ids).
    @Test func readsAnArchiveNumpyWroteCompressed() throws {
        guard let python = S.pythonWithNumpy else {
            if TestRequirements.pythonRequired {
                Issue.record(
                    "CI=true or MOE_ROUTING_REQUIRE_PYTHON=1, but no Python with numpy: the numpy-written .npz cannot be checked"
                )
            } else {
                print("skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, python3)")
            }
            return
        }
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let script = """
            import numpy as np, sys
            T, L, k = 6, 3, 2
            ids = np.array([[[(t + l) % 5, (t + 2 * l + 1) % 5 if (t + 2 * l + 1) % 5 != (t + l) % 5 else 4] for l in range(L)] for t in range(T)], dtype=np.int64)
            w = np.array([[[0.75, 0.25]] * L] * T, dtype=np.float64)
            mask = np.ones((T, L), dtype=bool); mask[2, 1] = False
            np.savez_compressed(sys.argv[1], ids=ids, weights=w, mask=mask,
                problem_id=np.array([0, 0, 0, 1, 1, 1]), position=np.array([0, 1, 2, 0, 1, 2], dtype=np.int16),
                phase=np.array([0, 0, 1, 0, 1, 1], dtype=np.int8), token_id=np.arange(6, dtype=np.uint32) + 100,
                domain=np.array(["code", "code", "code", "math", "math", "math"]))
            """
        try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
        let made = try S.runProcess(python, [dir + "/make.py", dir + "/np.npz"])
        #expect(made.status == 0, "\(made.output)")
        let (blocks, reader) = try Self.readAll(dir + "/np.npz")
        #expect(reader.shapeWasInferred)
        #expect(reader.shape.layers == 3 && reader.shape.experts == 5 && reader.shape.topK == 2)
        #expect(reader.domains == ["code", "math"])
        let b = try Self.concatenated(blocks)
        #expect(b.tokenCount == 6)
        #expect(b.phase == [.prefill, .prefill, .decode, .prefill, .decode, .decode])
        #expect(b.position == [0, 1, 2, 0, 1, 2])
        #expect(b.problemID == [0, 0, 0, 1, 1, 1])
        #expect(b.tokenID == [100, 101, 102, 103, 104, 105])
        #expect(!b.isPresent(token: 2, layer: 1))
        #expect(b.recordCount == 17)
        #expect(b.expert(token: 4, layer: 2, slot: 0) == (4 + 2) % 5)
        #expect(b.weight(token: 4, layer: 2, slot: 1) == 0.25)
        #expect(b.domainName(token: 3) == "math")
    }

    @Test func badArchivesAndValuesGetOneClearLine() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        func message(_ path: String, shape: ModelShape? = nil) -> String {
            do {
                _ = try Self.readAll(path, options: TraceReadOptions(shape: shape))
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        try S.write(Array("not a zip at all, just some text".utf8), to: dir + "/text.npz")
        #expect(message(dir + "/text.npz").contains("no end-of-central-directory record"))

        let good = try Self.export(try S.sampleBlocks(), to: dir + "/good.npz")
        var bytes = try S.bytes(good)
        // Flip a byte inside the first member's data (ids.npy, after its 128-byte .npy header).
        let idsData = 30 + "ids.npy".utf8.count + 128
        bytes[idsData] ^= 0xFF
        try S.write(bytes, to: dir + "/flipped.npz")
        let flipped = message(dir + "/flipped.npz")
        #expect(flipped.contains("ids") && flipped.contains("checksum mismatch"), "\(flipped)")

        // A stated shape other than the archive's.
        let other = message(dir + "/good.npz", shape: try ModelShape(layers: 5, experts: 8, topK: 2))
        #expect(other.contains("the stated shape L=5 E=8 k=2 differs from the archive's, L=4 E=8 k=2"), "\(other)")

        // An export of no tokens.
        let empty = dir + "/empty.npz"
        try S.write(try S.bytes(good), to: empty)
        let w = try NPZWriter(path: empty, shape: S.narrowShape)
        try w.close()
        let (none, _) = try Self.readAll(empty)
        #expect(none.isEmpty)
    }

    @Test func lenientSkipsCellsOutsideTheStatedShapeAndCountsThem() throws {
        guard let python = S.pythonWithNumpy else {
            if TestRequirements.pythonRequired {
                Issue.record("CI=true or MOE_ROUTING_REQUIRE_PYTHON=1, but no Python with numpy")
            } else {
                print("skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, python3)")
            }
            return
        }
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let script = """
            import numpy as np, sys
            ids = np.array([[[0, 1], [2, 3]], [[8, 1], [2, 3]]], dtype=np.uint8)
            np.savez(sys.argv[1], ids=ids, weights=np.full((2, 2, 2), 0.5, dtype=np.float32))
            np.savez(sys.argv[2], weights=np.full((2, 2, 2), 0.5, dtype=np.float32))
            """
        try script.write(toFile: dir + "/make.py", atomically: true, encoding: .utf8)
        #expect(try S.runProcess(python, [dir + "/make.py", dir + "/stray.npz", dir + "/noids.npz"]).status == 0)
        #expect(
            throws: TraceFileError(
                path: dir + "/noids.npz",
                message: "not a routing trace: the archive has no 'ids' array (members: weights.npy)"
            )
        ) {
            _ = try NPZTraceReader(path: dir + "/noids.npz")
        }
        let shape = try ModelShape(layers: 2, experts: 8, topK: 2)
        do {
            _ = try Self.readAll(dir + "/stray.npz", options: TraceReadOptions(shape: shape))
            Issue.record("an id of 8 with E = 8 must not read")
        } catch let e as TraceError {
            #expect(
                e.description.contains(
                    "stray.npz: token 1 (problem 0, position 1), layer 0: expert id 8 is outside 0..<8"
                ),
                "\(e)"
            )
        }
        let (blocks, reader) = try Self.readAll(
            dir + "/stray.npz",
            options: TraceReadOptions(shape: shape, lenient: true)
        )
        #expect(reader.summary.skipped == [.expertOutOfRange: 1])
        #expect(blocks.map(\.recordCount) == [3])
    }

    @Test func damagedAndCutOffArchivesNeverCrash() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let good = try S.bytes(
            try Self.export(try S.sampleBlocks(), to: dir + "/good.npz", timings: [Self.timing(1, layers: 4)])
        )
        var rng = SeededRandom(seed: 11)
        var opened = 0
        for i in 0..<300 {
            var bytes = good
            if i % 3 == 0 {
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            } else {
                for _ in 0..<(1 + i % 4) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            }
            try S.write(bytes, to: dir + "/bad.npz")
            if (try? Self.readAll(dir + "/bad.npz", options: TraceReadOptions(lenient: i % 2 == 0))) != nil {
                opened += 1
            }
        }
        // Flips in the zip's unchecked fields (times, attributes) may still read; most must not.
        #expect(opened < 150, "\(opened)")
    }
}
