// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct BinaryTraceWriterTests {
    typealias S = BinaryTestSupport

    @Test func refusesABlockOfAnotherShape() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let writer = try BinaryTraceWriter(path: dir + "/t.moetrace", shape: .mixtral8x7B)
        let block = try S.sampleBlocks()[0]
        #expect {
            try writer.write(block)
        } throws: { error in
            let d = (error as? TraceFileError)?.description ?? ""
            return d.contains("L=4 E=8 k=2") && d.contains("L=32 E=8 k=2") && d.contains("t.moetrace")
        }
        #expect(writer.totals == BinaryTraceTotals())
        try writer.close()
        let (read, reader) = try S.readAll(dir + "/t.moetrace")
        #expect(read.isEmpty)
        #expect(reader.isComplete)
    }

    @Test func writesAfterCloseAreRefusedAndCloseIsIdempotent() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let writer = try BinaryTraceWriter(path: dir + "/t.moetrace", shape: S.narrowShape)
        try writer.write(blocks[0])
        try writer.close()
        let size = try S.bytes(dir + "/t.moetrace").count
        try writer.close()
        #expect(throws: TraceFileError.self) { try writer.write(blocks[1]) }
        #expect(try S.bytes(dir + "/t.moetrace").count == size)
    }

    @Test func headerHoldsMagicVersionShapeDomainsAndSettings() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/t.moetrace"
        let writer = try BinaryTraceWriter(
            path: path,
            shape: S.narrowShape,
            domains: ["humaneval", "gsm8k", "humaneval"],
            settings: ["b": "2", "a": "1"]
        )
        #expect(writer.domains == ["humaneval", "gsm8k"])
        // Until close() the bytes are under the temporary name.
        let bytes = try S.bytes(writer.temporaryPath)
        // Nothing but the header is written before the first block.
        #expect(bytes.count == S.chunks(bytes).headerEnd)
        #expect(Array(bytes[0..<8]) == [0x89, 0x4D, 0x4F, 0x45, 0x54, 0x52, 0x43, 0x0A])
        #expect(Array(bytes[8..<12]) == [1, 0, 1, 0])
        // layers 4, experts 8, top-k 2, has_name 1, then "tiny-mixtral".
        #expect(Array(bytes[16..<29]) == [4, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 1])
        #expect(Array(bytes[29..<33]) == [12, 0, 0, 0])
        #expect(String(decoding: bytes[33..<45], as: UTF8.self) == "tiny-mixtral")
        let reader = try BinaryTraceReader(path: writer.temporaryPath)
        #expect(reader.header.domains == ["humaneval", "gsm8k"])
        #expect(reader.header.settings == ["a": "1", "b": "2"])
        #expect(reader.header.shape.name == "tiny-mixtral")
    }

    @Test func eachBlockIsOnDiskWhenWriteReturns() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = dir + "/t.moetrace"
        let writer = try BinaryTraceWriter(path: path, shape: S.narrowShape)
        for (i, b) in blocks.enumerated() {
            try writer.write(b)
            // On disk under the temporary name (where a killed run leaves it) until close().
            let (read, reader) = try S.readAll(writer.temporaryPath)
            #expect(read == Array(blocks[0...i]))
            #expect(reader.summary.lostBytes == 0)
        }
        #expect(writer.totals == BinaryTraceTotals(blocks: 3, tokens: 9, records: 28))
        try writer.close()
    }

    @Test func blockChunkLayoutFollowsTheDocumentedDirectory() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/t.moetrace"))
        let c = S.chunks(bytes).chunks[1]
        let p = Array(bytes[(c.offset + 24)..<(c.offset + c.size)])
        func u(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(p[at + $1]) << (8 * $1) } }
        #expect(u(0, 4) == 3)  // tokens
        #expect(u(4, 2) == 8)  // columns
        let T = 3
        let L = 4
        let k = 2
        let expected: [(tag: Int, dtype: Int, length: Int)] = [
            (1, 1, T * L * k), (2, 10, T * L * k * 4), (3, 1, T * L), (4, 2, T * 2),
            (5, 8, T * 8), (6, 7, T * 4), (7, 1, T), (8, 7, T * 4),
        ]
        var previousEnd = 8 + 24 * 8
        for (i, e) in expected.enumerated() {
            let at = 8 + 24 * i
            #expect(u(at, 2) == e.tag)
            #expect(u(at + 2, 1) == e.dtype)
            #expect(u(at + 3, 1) == 0)
            let offset = u(at + 8, 8)
            #expect(offset % 8 == 0 && offset >= previousEnd)
            #expect(u(at + 16, 8) == e.length)
            previousEnd = offset + e.length
        }
        #expect(p.count % 8 == 0 && p.count >= previousEnd)
        // The ids column is the block's ids, byte for byte.
        let idsOffset = u(16, 8)
        guard case .narrow(let ids) = blocks[0].ids else { return }
        #expect(Array(p[idsOffset..<(idsOffset + ids.count)]) == ids)
        // The position column: little-endian i32.
        let posOffset = u(8 + 24 * 5 + 8, 8)
        #expect((0..<T).map { u(posOffset + 4 * $0, 4) } == [0, 1, 2])
        // The frame: its own CRC and the payload's, as zlib computes them.
        let frame = Array(bytes[c.offset..<(c.offset + 24)])
        func u32(_ a: [UInt8], _ at: Int) -> UInt32 {
            (0..<4).reduce(0) { $0 | UInt32(a[at + $1]) << (8 * UInt32($1)) }
        }
        #expect(u32(frame, 16) == S.referenceCRC(p))
        #expect(u32(frame, 20) == S.referenceCRC(Array(frame[0..<20])))
    }

    @Test func endChunkHoldsTheTotals() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let bytes = try S.bytes(try S.writeTrace(try S.sampleBlocks(), to: dir + "/t.moetrace"))
        let end = S.chunks(bytes).chunks.last!
        #expect(end.kind == 3)
        #expect(end.size == 24 + 32)
        let p = Array(bytes[(end.offset + 24)...])
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(p[at + $1]) << (8 * $1) } }
        let totals: [Int] = [u64(0), u64(8), u64(16)]
        #expect(totals == [3, 9, 28])
        #expect(Int(p[24]) == 3)  // domain names
    }
}

extension BinaryTestSupport {
    /// CRC-32 computed bit by bit (the definition), independent of the table-driven one.
    static func referenceCRC(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
