// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

struct BinaryTraceReaderTests {
    typealias S = BinaryTestSupport

    // MARK: - Round trips

    @Test func roundTripsBlocksWithDomainsAddedMidStream() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace(blocks, to: dir + "/t.moetrace", settings: ["engine": "vllm", "dtype": "fp8"])
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(read[1].domainName(token: 0) == "gsm8k")
        #expect(read[2].domainName(token: 0) == "mbpp")
        #expect(read[0].phase == [.prefill, .prefill, .decode])
        #expect(!read[0].isPresent(token: 1, layer: 2))
        #expect(read[2].problemID[0] == 5_000_000_000)
        #expect(reader.header.shape == S.narrowShape)
        #expect(reader.header.settings == ["engine": "vllm", "dtype": "fp8"])
        #expect(reader.header.formatVersion == "1.1")
        #expect(reader.header.domains == [])
        #expect(reader.domains == ["humaneval", "gsm8k", "mbpp"])
        #expect(reader.isComplete)
        #expect(reader.endTotals == BinaryTraceTotals(blocks: 3, tokens: 9, records: 11 + 7 + 10))
        #expect(reader.totals == reader.endTotals)
        #expect(reader.summary == TraceReadSummary())
        #expect(try reader.nextBlock() == nil)
    }

    @Test func roundTripsWideExpertIDs() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks(shape: S.wideShape)
        guard case .wide(let ids) = blocks[0].ids else {
            Issue.record("E = 300 should give wide ids")
            return
        }
        #expect(ids.contains { $0 > 255 })
        let path = try S.writeTrace(blocks, shape: S.wideShape, to: dir + "/w.moetrace")
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(reader.shape.experts == 300)
    }

    @Test func roundTripsSyntheticBlocksWithMissingCells() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        var gen = SyntheticRouting(shape: .mixtral8x7B, seed: 11, missingRate: 0.1)
        let blocks = (0..<4).map { gen.makeBlock(problems: 3, tokensPerProblem: 50, domain: $0 % 2 == 0 ? "a" : "b") }
        let path = dir + "/s.moetrace"
        try S.writeTrace(blocks, shape: .mixtral8x7B, to: path)
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(reader.totals.records == blocks.map(\.recordCount).reduce(0, +))
        #expect(reader.totals.records < 4 * 150 * 32)
    }

    @Test func remapsBlocksFromStreamsWithOtherDomainTables() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let shape = S.narrowShape
        func block(_ names: [String], _ tokens: [String]) throws -> RoutingBlock {
            var b = RoutingBlockBuilder(shape: shape, domains: names)
            for (i, d) in tokens.enumerated() {
                let t = try b.appendToken(TokenMetadata(domain: d, problemID: Int64(i), position: 0, phase: .decode))
                try b.setCell(token: t, layer: 0, experts: [1, 2], weights: [0.6, 0.4])
            }
            return b.makeBlock()
        }
        let x = try block(["a", "b"], ["b", "a"])
        let y = try block(["c", "b"], ["b", "c", "c"])
        let path = dir + "/r.moetrace"
        let writer = try BinaryTraceWriter(path: path, shape: shape, domains: ["z"])
        try writer.write(x)
        try writer.write(y)
        #expect(writer.domains == ["z", "a", "b", "c"])
        try writer.close()
        let (read, _) = try S.readAll(path)
        #expect((0..<2).map { read[0].domainName(token: $0) } == ["b", "a"])
        #expect((0..<3).map { read[1].domainName(token: $0) } == ["b", "c", "c"])
        #expect(read[1].domain == [2, 3, 3])
    }

    @Test func emptyTraceReadsNoBlocks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = try S.writeTrace([], to: dir + "/e.moetrace")
        let (read, reader) = try S.readAll(path)
        #expect(read.isEmpty)
        #expect(reader.isComplete)
        #expect(reader.endTotals == BinaryTraceTotals())
    }

    // MARK: - Truncation

    @Test func truncationAtEveryOffsetYieldsExactlyTheCompleteChunks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let full = try S.bytes(try S.writeTrace(blocks, to: dir + "/full.moetrace"))
        let (headerEnd, chunks) = S.chunks(full)
        let cut = dir + "/cut.moetrace"
        for size in 0..<full.count {
            try S.write(Array(full[0..<size]), to: cut)
            if size < headerEnd {
                #expect(throws: TraceError.self, "cut at \(size) inside the header") { _ = try S.readAll(cut) }
                continue
            }
            let complete = chunks.filter { $0.offset + $0.size <= size }
            let expectedBlocks = complete.filter { $0.kind == 2 }.count
            let lastEnd = complete.last.map { $0.offset + $0.size } ?? headerEnd
            let (read, reader) = try S.readAll(cut)
            #expect(read == Array(blocks.prefix(expectedBlocks)), "cut at \(size)")
            #expect(reader.summary.lostBytes == size - lastEnd, "cut at \(size)")
            #expect(!reader.isComplete)
            if size == lastEnd {
                #expect(reader.summary.lossReason == nil)
            } else {
                let reason = reader.summary.lossReason ?? ""
                #expect(reason.hasPrefix("file ends \(size - lastEnd) bytes into a chunk"), "\(reason)")
                #expect(reason.contains("at byte offset \(lastEnd): the writer was probably killed"))
                // Strict mode too: a cut tail is not an error, in strict or lenient mode.
                let (lenient, _) = try S.readAll(cut, lenient: true)
                #expect(lenient == read)
            }
        }
    }

    @Test func lossReasonNamesChunkSizeAndOffset() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let full = try S.bytes(try S.writeTrace(try S.sampleBlocks(), to: dir + "/f.moetrace"))
        let (_, chunks) = S.chunks(full)
        let second = chunks[3]  // the second block chunk
        #expect(second.kind == 2)
        try S.write(Array(full[0..<(second.offset + 30)]), to: dir + "/c.moetrace")
        let (read, reader) = try S.readAll(dir + "/c.moetrace")
        #expect(read.count == 1)
        #expect(
            reader.summary.lossReason
                == "file ends 30 bytes into a chunk of \(second.size) bytes at byte offset \(second.offset): the writer was probably killed; every complete chunk before it was read"
        )
    }

    @Test func unclosedWriterLeavesAReadableFileWithoutEndChunk() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace(blocks, to: dir + "/k.moetrace", close: false)
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(!reader.isComplete)
        #expect(reader.summary.lostBytes == 0)
    }

    // MARK: - Corruption

    @Test func corruptMiddleChunkThrowsInStrictModeWithItsOffset() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        var bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let middle = S.chunks(bytes).chunks[3]
        bytes[middle.offset + 24 + 40] ^= 0x10
        try S.write(bytes, to: dir + "/bad.moetrace")
        let reader = try BinaryTraceReader(path: dir + "/bad.moetrace")
        #expect(try reader.nextBlock() == blocks[0])
        do {
            _ = try reader.nextBlock()
            Issue.record("a corrupt chunk must throw in strict mode")
        } catch let e as TraceError {
            #expect(e.byteOffset == middle.offset)
            #expect(e.issue.kind == .corruptChunk)
            #expect(e.description.contains("payload checksum mismatch"))
            #expect(e.description.contains("--lenient"))
        }
    }

    @Test func corruptMiddleChunkIsSkippedInLenientMode() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let good = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let chunks = S.chunks(good).chunks
        // A flipped payload byte, then a flipped length byte in the frame.
        for flip in [chunks[3].offset + 24 + 40, chunks[3].offset + 9] {
            var bytes = good
            bytes[flip] ^= 0x01
            try S.write(bytes, to: dir + "/bad.moetrace")
            let (read, reader) = try S.readAll(dir + "/bad.moetrace", lenient: true)
            #expect(read == [blocks[0], blocks[2]], "flip at \(flip)")
            #expect(reader.summary.skipped == [.corruptChunk: 1])
            #expect(reader.summary.examples.first?.contains("next chunk at byte \(chunks[4].offset)") == true)
            #expect(reader.summary.lostBytes == 0)
            #expect(reader.isComplete)
        }
    }

    @Test func lostDomainChunkGetsPlaceholderNamesInLenientMode() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        var bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let gsm8kChunk = S.chunks(bytes).chunks[2]
        #expect(gsm8kChunk.kind == 1)
        bytes[gsm8kChunk.offset + 24 + 2] ^= 0xFF
        try S.write(bytes, to: dir + "/bad.moetrace")
        let (read, reader) = try S.readAll(dir + "/bad.moetrace", lenient: true)
        #expect(read.count == 3)
        #expect(zip(read, blocks).allSatisfy { S.sameColumns($0, $1) })
        #expect(read[1].domains == ["humaneval", "<lost domain 1>"])
        #expect(reader.domains == ["humaneval", "<lost domain 1>", "mbpp"])
        #expect(reader.summary.skipped == [.corruptChunk: 1])
    }

    @Test func unrecoverableCorruptTailRecordsTheLoss() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace(blocks, to: dir + "/f.moetrace", close: false)
        var bytes = try S.bytes(path)
        let last = S.chunks(bytes).chunks.last!
        bytes[last.offset + 24 + 16] ^= 0x80
        try S.write(bytes, to: path)
        let (read, reader) = try S.readAll(path, lenient: true)
        #expect(read == Array(blocks.prefix(2)))
        #expect(reader.summary.lostBytes == last.size)
        #expect(reader.summary.lossReason?.contains("corrupt chunk at byte offset \(last.offset)") == true)
        #expect(reader.summary.lossReason?.contains("no valid chunk after it") == true)
    }

    @Test func randomByteFlipsNeverCrashAndOnlyReturnWrittenBlocks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let good = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        var rng = SeededRandom(seed: 42)
        let path = dir + "/fuzz.moetrace"
        var recovered = 0
        var failed = 0
        for round in 0..<400 {
            var bytes = good
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 + rng.next() % 255)
            }
            if round % 4 == 0 {
                bytes.removeLast(Int(rng.next() % UInt64(bytes.count / 2)))
            }
            try S.write(bytes, to: path)
            for lenient in [false, true] {
                do {
                    let (read, _) = try S.readAll(path, lenient: lenient)
                    // Whatever comes back is a subsequence of what was written.
                    var next = 0
                    for b in read {
                        guard let i = blocks[next...].firstIndex(where: { S.sameColumns($0, b) }) else {
                            Issue.record("round \(round): a block that was never written came back")
                            break
                        }
                        next = i + 1
                    }
                    recovered += 1
                } catch is TraceError {
                    failed += 1
                }
            }
        }
        #expect(recovered > 0)
        #expect(failed > 0)
    }

    @Test func randomGarbageAfterHeaderNeverHangs() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let good = try S.bytes(try S.writeTrace([], to: dir + "/f.moetrace", close: false))
        var rng = SeededRandom(seed: 7)
        for n in [1, 23, 24, 25, 100, 5000] {
            var bytes = good
            for i in 0..<n { bytes.append(i % 7 == 0 ? 0x4D : UInt8(truncatingIfNeeded: rng.next())) }
            try S.write(bytes, to: dir + "/g.moetrace")
            let (read, reader) = try S.readAll(dir + "/g.moetrace", lenient: true)
            #expect(read.isEmpty)
            #expect(reader.summary.lostBytes == n)
        }
    }

    // MARK: - Not a trace, other versions, other shapes

    @Test func refusesFilesThatAreNotTraces() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let cases: [([UInt8], String)] = [
            ([], "the file is empty"),
            (Array(#"{"problem_id": 0, "layer": 0}"#.utf8), "looks like JSON text"),
            ([0x50, 0x4B, 3, 4, 0, 0, 0, 0], "is a zip archive"),
            ([1, 2, 3, 4, 5, 6, 7, 8, 9], "starts with the bytes 01 02 03"),
        ]
        for (bytes, phrase) in cases {
            try S.write(bytes, to: dir + "/x.moetrace")
            do {
                _ = try BinaryTraceReader(path: dir + "/x.moetrace")
                Issue.record("\(phrase): should not open")
            } catch let e as TraceError {
                #expect(e.description.contains(phrase), "\(e)")
                #expect(e.byteOffset == 0)
            }
        }
        #expect(throws: TraceFileError.self) { _ = try BinaryTraceReader(path: dir + "/missing.moetrace") }
    }

    @Test func refusesOtherMajorVersionsNamingBoth() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        var bytes = try S.bytes(try S.writeTrace(try S.sampleBlocks(), to: dir + "/f.moetrace"))
        bytes[8] = 2
        bytes[10] = 3
        try S.write(bytes, to: dir + "/v2.moetrace")
        do {
            _ = try BinaryTraceReader(path: dir + "/v2.moetrace")
            Issue.record("version 2 must be refused")
        } catch let e as TraceError {
            #expect(e.description.contains("format version 2.3"))
            #expect(e.description.contains("supports only version 1.x"))
            #expect(e.description.contains("newer moe-routing"))
        }
    }

    @Test func readsALaterMinorVersion() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        var bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let headerEnd = S.chunks(bytes).headerEnd
        bytes[10] = 7
        let crc = CRC32.checksum(Array(bytes[0..<(headerEnd - 4)]))
        for i in 0..<4 { bytes[headerEnd - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        try S.write(bytes, to: dir + "/m.moetrace")
        let (read, reader) = try S.readAll(dir + "/m.moetrace")
        #expect(read == blocks)
        #expect(reader.header.formatVersion == "1.7")
    }

    @Test func corruptHeaderIsAnError() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        var bytes = try S.bytes(try S.writeTrace([], to: dir + "/f.moetrace"))
        bytes[17] ^= 1
        try S.write(bytes, to: dir + "/h.moetrace")
        #expect {
            _ = try BinaryTraceReader(path: dir + "/h.moetrace")
        } throws: { ($0 as? TraceError)?.description.contains("header checksum mismatch") == true }
    }

    @Test func statedShapeMustMatchTheHeader() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = try S.writeTrace(try S.sampleBlocks(), to: dir + "/f.moetrace")
        #expect {
            _ = try BinaryTraceReader(path: path, options: TraceReadOptions(shape: .mixtral8x7B))
        } throws: { error in
            let d = (error as? TraceError)?.description ?? ""
            return d.contains("L=32 E=8 k=2") && d.contains("L=4 E=8 k=2")
        }
        // The same dimensions under another name are fine.
        let same = try ModelShape(layers: 4, experts: 8, topK: 2)
        _ = try BinaryTraceReader(path: path, options: TraceReadOptions(shape: same))
    }

    // MARK: - Extensibility

    /// A chunk frame built as docs/trace-format.md describes.
    static func chunk(kind: UInt16, flags: UInt16, payload: [UInt8]) -> [UInt8] {
        var f: [UInt8] = Array("MOEC".utf8)
        f += [UInt8(kind & 0xFF), UInt8(kind >> 8), UInt8(flags & 0xFF), UInt8(flags >> 8)]
        f += (0..<8).map { UInt8(truncatingIfNeeded: UInt64(payload.count) >> (8 * UInt64($0))) }
        let pc = CRC32.checksum(payload)
        f += (0..<4).map { UInt8(truncatingIfNeeded: pc >> (8 * UInt32($0))) }
        let fc = CRC32.checksum(f)
        f += (0..<4).map { UInt8(truncatingIfNeeded: fc >> (8 * UInt32($0))) }
        return f + payload
    }

    @Test func skipsUnknownOptionalChunksAndRefusesUnknownRequiredOnes() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let at = S.chunks(bytes).chunks[2].offset
        for kind: UInt16 in [17, 99] {  // kind 16 (layer timings) is known now: BinaryTraceTimingTests
            let optional = Self.chunk(kind: kind, flags: 1, payload: [UInt8](repeating: 7, count: 16))
            try S.write(Array(bytes[..<at]) + optional + Array(bytes[at...]), to: dir + "/o.moetrace")
            let (read, reader) = try S.readAll(dir + "/o.moetrace")
            #expect(read == blocks)
            #expect(reader.summary.skippedTotal == 0)
        }
        let required = Self.chunk(kind: 99, flags: 0, payload: [UInt8](repeating: 7, count: 16))
        try S.write(Array(bytes[..<at]) + required + Array(bytes[at...]), to: dir + "/r.moetrace")
        for lenient in [false, true] {
            #expect {
                _ = try S.readAll(dir + "/r.moetrace", lenient: lenient)
            } throws: { error in
                let e = error as? TraceError
                return e?.byteOffset == at && e?.description.contains("chunk kind 99") == true
            }
        }
    }

    /// Rebuilds the first block chunk with one extra column after the known ones.
    static func withExtraColumn(_ bytes: [UInt8], tag: UInt16, flags: UInt8) -> [UInt8] {
        let (_, chunks) = S.chunks(bytes)
        let c = chunks[1]
        let payload = Array(bytes[(c.offset + 24)..<(c.offset + c.size)])
        func u64(_ p: [UInt8], _ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(p[at + $1]) << (8 * $1) } }
        let columns = Int(payload[4]) | Int(payload[5]) << 8
        let shift = 24  // one more directory entry; 24 keeps every offset 8-aligned
        var out = Array(payload[0..<4]) + [UInt8(columns + 1), 0, 0, 0]
        for i in 0..<columns {
            let e = 8 + 24 * i
            out += payload[e..<(e + 8)]
            let off = u64(payload, e + 8) + shift
            out += (0..<8).map { UInt8(truncatingIfNeeded: off >> (8 * $0)) }
            out += payload[(e + 16)..<(e + 24)]
        }
        let extraOffset = payload.count + shift
        out += [UInt8(tag & 0xFF), UInt8(tag >> 8), 3, flags, 0, 0, 0, 0]
        out += (0..<8).map { UInt8(truncatingIfNeeded: extraOffset >> (8 * $0)) }
        out += [8, 0, 0, 0, 0, 0, 0, 0]
        out += payload[(8 + 24 * columns)...]
        out += [1, 2, 3, 4, 5, 6, 7, 8]
        return Array(bytes[..<c.offset]) + Self.chunk(kind: 2, flags: 0, payload: out)
            + Array(bytes[(c.offset + c.size)...])
    }

    @Test func skipsUnknownOptionalColumnsAndRefusesUnknownRequiredOnes() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        // Tag 32 (step) is known now (StepColumnTests); 40 is still reserved.
        try S.write(Self.withExtraColumn(bytes, tag: 40, flags: 1), to: dir + "/o.moetrace")
        let (read, _) = try S.readAll(dir + "/o.moetrace")
        #expect(read == blocks)
        try S.write(Self.withExtraColumn(bytes, tag: 200, flags: 0), to: dir + "/r.moetrace")
        #expect {
            _ = try S.readAll(dir + "/r.moetrace")
        } throws: { ($0 as? TraceError)?.description.contains("column tag 200") == true }
        // Lenient mode skips that block and keeps the others.
        let (lenient, reader) = try S.readAll(dir + "/r.moetrace", lenient: true)
        #expect(lenient == Array(blocks[1...]))
        #expect(reader.summary.skipped == [.malformed: 1])
    }

    @Test func checksummedButInvalidValuesAreRefused() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let c = S.chunks(bytes).chunks[1]
        var payload = Array(bytes[(c.offset + 24)..<(c.offset + c.size)])
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(payload[at + $1]) << (8 * $1) } }
        let idsOffset = u64(8 + 8)  // first directory entry: ids
        let weightsOffset = u64(8 + 24 + 8)
        let maskOffset = u64(8 + 48 + 8)
        let cases: [(Int, UInt8, RecordIssue.Kind, String)] = [
            (idsOffset, 9, .expertOutOfRange, "expert id 9"),
            (weightsOffset + 3, 0xFF, .invalidWeight, "weight"),
            (maskOffset, 2, .malformed, "mask"),
        ]
        for (at, value, kind, phrase) in cases {
            var p = payload
            p[at] = value
            let patched =
                Array(bytes[..<c.offset]) + Self.chunk(kind: 2, flags: 0, payload: p)
                + Array(bytes[(c.offset + c.size)...])
            try S.write(patched, to: dir + "/v.moetrace")
            #expect {
                _ = try S.readAll(dir + "/v.moetrace")
            } throws: { error in
                let e = error as? TraceError
                return e?.issue.kind == kind && e?.byteOffset == c.offset && e?.description.contains(phrase) == true
            }
            let (lenient, reader) = try S.readAll(dir + "/v.moetrace", lenient: true)
            #expect(lenient == Array(blocks[1...]))
            #expect(reader.summary.skipped == [kind: 1])
        }
        // A bad id in a missing cell is harmless: it is zeroed.
        payload[idsOffset + (1 * 4 + 2) * 2] = 200  // token 1, layer 2 is missing in block 0
        let patched =
            Array(bytes[..<c.offset]) + Self.chunk(kind: 2, flags: 0, payload: payload)
            + Array(bytes[(c.offset + c.size)...])
        try S.write(patched, to: dir + "/m.moetrace")
        let (read, _) = try S.readAll(dir + "/m.moetrace")
        #expect(read == blocks)
    }
}
