// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Layer-timing chunks (kind 16) in `.moetrace` files: written between blocks, summed by the
// reader, invisible to block reading, and recovered up to a cut-off tail.

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct BinaryTraceTimingTests {
    typealias S = BinaryTestSupport

    /// Step `s`'s timings for 4 layers: routing (s+1)*(l+1)*10 ns, MoE 100 times that plus 1000.
    static func record(_ s: Int) -> LayerTimingRecord {
        LayerTimingRecord(
            step: Int64(s),
            rows: Int32(s + 2),
            routingNanoseconds: (0..<4).map { Int64((s + 1) * ($0 + 1) * 10) },
            moeNanoseconds: (0..<4).map { Int64((s + 1) * ($0 + 1) * 1000 + 1000) }
        )
    }

    /// Blocks with timing chunks before, between and after them: steps 0-1, block, step 2,
    /// block, steps 3-5 via addTiming (flushed before the third block), block, step 6 at close.
    static func writeInterleaved(_ blocks: [RoutingBlock], to path: String, close: Bool = true) throws {
        let w = try BinaryTraceWriter(path: path, shape: S.narrowShape, settings: ["engine": "test"])
        try w.writeTimings([record(0), record(1)])
        try w.write(blocks[0])
        try w.writeTimings([record(2)])
        try w.write(blocks[1])
        for s in 3...5 { try w.addTiming(record(s)) }
        try w.write(blocks[2])
        try w.addTiming(record(6))
        if close {
            try w.close()
            #expect(w.timingRecordsWritten == 7)
        }
    }

    @Test func timingChunksRoundTripAndSumByHand() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        try Self.writeInterleaved(blocks, to: dir + "/t.moetrace")
        let bytes = try S.bytes(dir + "/t.moetrace")
        // Chunk order by the independent walker: domains? then timing, block, timing, block,
        // timing, block, timing, end.
        let kinds = S.chunks(bytes).chunks.map(\.kind).filter { $0 != 1 }
        #expect(kinds == [16, 2, 16, 2, 16, 2, 16, 3])
        // The first timing chunk byte by byte: optional flag, N = 2, L = 4, record 0's fields.
        guard let first = S.chunks(bytes).chunks.first(where: { $0.kind == 16 }) else {
            Issue.record("no timing chunk")
            return
        }
        #expect(first.size == 24 + 8 + 2 * (16 + 16 * 4))
        #expect(Array(bytes[(first.offset + 6)..<(first.offset + 8)]) == [1, 0])
        let p = first.offset + 24
        #expect(Array(bytes[p..<(p + 8)]) == [2, 0, 0, 0, 4, 0, 0, 0])
        #expect(Array(bytes[(p + 8)..<(p + 24)]) == [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[(p + 24)..<(p + 26)]) == [10, 0])  // routing, layer 0: 10 ns
        #expect(Array(bytes[(p + 56)..<(p + 58)]) == [0xD0, 0x07])  // MoE, layer 0: 2000 ns

        let (read, reader) = try S.readAll(dir + "/t.moetrace")
        #expect(read.count == 3)
        let t = try #require(reader.timingTotals)
        // Steps 0...6: sum of (s+1) = 28, rows sum of (s+2) = 35.
        #expect(t.steps == 7)
        #expect(t.rows == 35)
        #expect(t.routingNanoseconds == [280, 560, 840, 1120])
        #expect(t.moeNanoseconds == [35_000, 63_000, 91_000, 119_000])
        #expect(t.routingShare[0] == 280.0 / 35_000.0)
        #expect(t.routingShare[3] == 1120.0 / 119_000.0)
        #expect(reader.isComplete)
    }

    @Test func blocksReadIdenticallyWithAndWithoutTimings() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        try Self.writeInterleaved(blocks, to: dir + "/with.moetrace")
        try S.writeTrace(blocks, to: dir + "/without.moetrace")
        let (a, ra) = try S.readAll(dir + "/with.moetrace")
        let (b, rb) = try S.readAll(dir + "/without.moetrace")
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(S.sameColumns(x, y))
            #expect(x.domains == y.domains)
        }
        #expect(ra.totals == rb.totals)
        #expect(ra.endTotals == rb.endTotals)
        #expect(rb.timingTotals == nil)
        #expect(ra.summary.skippedTotal == 0)
    }

    @Test func truncationInsideATimingChunkKeepsEveryCompleteChunk() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        try Self.writeInterleaved(blocks, to: dir + "/t.moetrace")
        let bytes = try S.bytes(dir + "/t.moetrace")
        let timing = S.chunks(bytes).chunks.filter { $0.kind == 16 }
        // Cut 40 bytes into the third timing chunk (steps 3-5, before the third block).
        let cut = timing[2].offset + 40
        try S.write(Array(bytes[..<cut]), to: dir + "/cut.moetrace")
        let (read, reader) = try S.readAll(dir + "/cut.moetrace")
        #expect(read.count == 2)
        for (x, y) in zip(read, blocks) { #expect(S.sameColumns(x, y)) }
        let t = try #require(reader.timingTotals)
        #expect(t.steps == 3)  // steps 0, 1, 2
        #expect(t.rows == 2 + 3 + 4)
        #expect(t.routingNanoseconds == [60, 120, 180, 240])
        #expect(reader.summary.lostBytes == 40)
        #expect(reader.summary.lossReason?.contains("writer was probably killed") == true)
        #expect(!reader.isComplete)
    }

    @Test func unclosedWriterKeepsFlushedTimings() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        // Step 6 stays buffered when the writer is never closed (a killed run); the chunks written
        // stay at the temporary name, since only close() puts the file in place.
        try Self.writeInterleaved(blocks, to: dir + "/t.moetrace", close: false)
        #expect(!FileManager.default.fileExists(atPath: dir + "/t.moetrace"))
        let (read, reader) = try S.readAll(AtomicOutputFile.temporaryPath(for: dir + "/t.moetrace"))
        #expect(read.count == 3)
        #expect(reader.timingTotals?.steps == 6)
        #expect(!reader.isComplete)
    }

    @Test func addTimingWritesAChunkEverySixtyFourRecords() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let w = try BinaryTraceWriter(path: dir + "/t.moetrace", shape: S.narrowShape)
        for s in 0..<130 { try w.addTiming(Self.record(s)) }
        #expect(w.timingRecordsWritten == 128)
        try w.close()
        #expect(w.timingRecordsWritten == 130)
        let sizes = S.chunks(try S.bytes(dir + "/t.moetrace")).chunks.filter { $0.kind == 16 }.map(\.size)
        #expect(sizes == [24 + 8 + 64 * 80, 24 + 8 + 64 * 80, 24 + 8 + 2 * 80])
        let (_, reader) = try S.readAll(dir + "/t.moetrace")
        #expect(reader.timingTotals?.steps == 130)
        #expect(reader.timingTotals?.rows == (0..<130).reduce(0) { $0 + $1 + 2 })
    }

    @Test func badTimingRecordsAreRefusedWithAReason() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let w = try BinaryTraceWriter(path: dir + "/t.moetrace", shape: S.narrowShape)
        let short = LayerTimingRecord(step: 0, rows: 1, routingNanoseconds: [1, 2], moeNanoseconds: [3, 4])
        #expect(throws: TraceFileError.self) { try w.writeTimings([short]) }
        do {
            try w.addTiming(short)
            Issue.record("a record with 2 of 4 layers was accepted")
        } catch let e as TraceFileError {
            #expect(e.message.contains("expected 4 each"))
        }
        var negative = Self.record(0)
        negative.moeNanoseconds[2] = -5
        #expect(throws: TraceFileError.self) { try w.writeTimings([negative]) }
        try w.close()
        #expect(throws: TraceFileError.self) { try w.writeTimings([Self.record(0)]) }
        let (_, reader) = try S.readAll(dir + "/t.moetrace")
        #expect(reader.timingTotals == nil)
    }

    @Test func checksummedButInvalidTimingChunkIsAnErrorOrSkipped() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let at = S.chunks(bytes).chunks[2].offset
        // N = 1 record of L = 3 layers in a 4-layer trace, with a valid checksum.
        let bad = BinaryTraceReaderTests.chunk(
            kind: 16,
            flags: 1,
            payload: [1, 0, 0, 0, 3, 0, 0, 0] + [UInt8](repeating: 0, count: 64)
        )
        try S.write(Array(bytes[..<at]) + bad + Array(bytes[at...]), to: dir + "/b.moetrace")
        #expect {
            _ = try S.readAll(dir + "/b.moetrace")
        } throws: { error in
            let e = error as? TraceError
            return e?.byteOffset == at
                && e?.description.contains("holds 3 layers per record, but the trace has 4") == true
        }
        let (read, reader) = try S.readAll(dir + "/b.moetrace", lenient: true)
        #expect(read == blocks)
        #expect(reader.summary.skippedTotal == 1)
        #expect(reader.timingTotals == nil)
    }

    @Test func pythonSnippetReadsTimingChunks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let check = """
            import sys
            sys.path.insert(0, sys.argv[2])
            from moetrace_reader import read_moetrace
            header, a, end = read_moetrace(sys.argv[1])
            print("OK", a["phase"].shape[0], list(end), a["timing_routing_ns"].sum(axis=0).tolist(), a["timing_step"].tolist())
            """
        guard let python = try S.documentedReaderCheck(check, in: dir) else { return }
        let blocks = try S.sampleBlocks()
        try Self.writeInterleaved(blocks, to: dir + "/t.moetrace")
        let (status, output) = try S.runProcess(python, [dir + "/check.py", dir + "/t.moetrace", dir])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("OK 9 [3, 9, 28] [280, 560, 840, 1120] [0, 1, 2, 3, 4, 5, 6]"), "\(output)")
    }
}
