// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

/// The end chunk's closure status (format 1.1): closed, interrupted after N of M problems, or cut
/// off (no end chunk), as the writer states it and the reader reports it.
struct BinaryTraceClosureTests {
    typealias S = BinaryTestSupport

    @Test func aCleanCloseReadsAsClosedAndKeepsThe32ByteEndChunk() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = try S.writeTrace(try S.sampleBlocks(), to: dir + "/t.moetrace")
        let (_, reader) = try S.readAll(path)
        #expect(reader.closure == .closed)
        #expect(reader.closure.name == "closed")
        #expect(reader.header.formatVersion == "1.1")
        let bytes = try S.bytes(path)
        let end = try #require(S.chunks(bytes).chunks.last)
        #expect(end.kind == 3)
        #expect(end.size == 24 + 32)
        #expect(end.offset + end.size == bytes.count)
    }

    @Test func anInterruptedCloseRecordsTheProblemCounts() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = dir + "/i.moetrace"
        let writer = try BinaryTraceWriter(path: path, shape: S.narrowShape)
        for b in blocks { try writer.write(b) }
        try writer.close(interruptedAfter: 2, of: 7)
        try writer.close()  // a second close does nothing
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(reader.isComplete)
        #expect(reader.closure == .interrupted(completed: 2, total: 7))
        #expect(reader.closure.name == "interrupted")
        #expect("\(reader.closure)" == "interrupted after 2 of 7 problems")
        #expect(reader.endTotals == reader.totals)
        // Status 1 at payload bytes 28..<32, then u64 completed, u64 total.
        let bytes = try S.bytes(path)
        let end = try #require(S.chunks(bytes).chunks.last)
        #expect(end.size == 24 + 48)
        let p = end.offset + 24
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        #expect(Array(bytes[(p + 28)..<(p + 32)]) == [1, 0, 0, 0])
        #expect(u64(p + 32) == 2 && u64(p + 40) == 7)
    }

    @Test func impossibleInterruptedCountsAreRefused() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let writer = try BinaryTraceWriter(path: dir + "/b.moetrace", shape: S.narrowShape)
        #expect(throws: TraceFileError.self) { try writer.close(interruptedAfter: 5, of: 3) }
        #expect(throws: TraceFileError.self) { try writer.close(interruptedAfter: -1, of: 3) }
        try writer.close()
        #expect(try S.readAll(dir + "/b.moetrace").1.closure == .closed)
    }

    @Test func aFileWithoutItsEndChunkReadsAsCutOff() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace(blocks, to: dir + "/c.moetrace", close: false)
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(reader.closure == .cutOff)
        #expect(reader.closure.name == "cut_off")
        // Cut inside the last chunk: still cut off, every complete block read.
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/full.moetrace"))
        let end = try #require(S.chunks(bytes).chunks.last)
        try S.write(Array(bytes[..<(end.offset + 30)]), to: dir + "/cut.moetrace")
        let (cutRead, cutReader) = try S.readAll(dir + "/cut.moetrace")
        #expect(cutRead == blocks)
        #expect(cutReader.closure == .cutOff)
    }

    /// A format 1.0 end chunk (status word 0) reads as closed; the documented Python reader
    /// (which reads only the first 24 bytes) still reads an interrupted 1.1 file's totals.
    @Test func theDocumentedPythonReaderReadsTheClosure() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = dir + "/i.moetrace"
        let writer = try BinaryTraceWriter(path: path, shape: S.narrowShape, settings: ["engine": "test"])
        for b in blocks { try writer.write(b) }
        try writer.close(interruptedAfter: 1, of: 3)
        let check = """
            import sys
            sys.path.insert(0, sys.argv[2])
            from moetrace_reader import read_moetrace
            header, a, end = read_moetrace(sys.argv[1])
            assert list(end) == [3, 9, 28], end
            assert header["closure"] == ("interrupted", 1, 3), header["closure"]
            print("OK")
            """
        guard let python = try S.documentedReaderCheck(check, in: dir) else { return }
        let (status, output) = try S.runProcess(python, [dir + "/check.py", path, dir])
        #expect(status == 0 && output.hasPrefix("OK"), "\(output)")
    }
}
