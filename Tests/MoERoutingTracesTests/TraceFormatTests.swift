// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import MoERoutingTraces
import Testing

struct TraceFormatTests {
    typealias S = BinaryTestSupport

    @Test func formatFromExtension() {
        #expect(TraceFormat(path: "a/run.jsonl") == .jsonl)
        #expect(TraceFormat(path: "run.JSON") == .jsonl)
        #expect(TraceFormat(path: "/x/run.moetrace") == .binary)
        #expect(TraceFormat(path: "run.MoETrace") == .binary)
        #expect(TraceFormat(path: "out.npz") == .npz)
        #expect(TraceFormat(path: "out.npy") == nil)
        #expect(TraceFormat(path: "noextension") == nil)
        #expect(TraceFormat(path: "dir.jsonl/file") == nil)
        #expect(TraceFormat.binary.fileExtension == "moetrace")
        #expect(TraceFormat(rawValue: "binary") == .binary)
    }

    @Test func formatFromContent() {
        #expect(TraceFormat(contentPrefix: [0x89, 0x4D, 0x4F, 0x45, 0x54, 0x52, 0x43, 0x0A, 1, 0]) == .binary)
        #expect(TraceFormat(contentPrefix: [0x50, 0x4B, 3, 4, 20, 0]) == .npz)
        #expect(TraceFormat(contentPrefix: [0x50, 0x4B, 5, 6]) == .npz)
        #expect(TraceFormat(contentPrefix: Array("  \n{\"layer\": 0}".utf8)) == .jsonl)
        #expect(TraceFormat(contentPrefix: [0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == .jsonl)
        #expect(TraceFormat(contentPrefix: Array("layer,expert".utf8)) == nil)
        #expect(TraceFormat(contentPrefix: [0x89, 0x4D, 0x4F]) == nil)
        #expect(TraceFormat(contentPrefix: []) == nil)
    }

    @Test func detectForReadingPrefersContentThenName() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        try S.writeTrace(try S.sampleBlocks(), to: dir + "/trace.bin")
        #expect(try TraceFormat.detect(readingPath: dir + "/trace.bin") == .binary)
        try S.write(Array("{\"layer\": 0}\n".utf8), to: dir + "/records.txt")
        #expect(try TraceFormat.detect(readingPath: dir + "/records.txt") == .jsonl)
        try S.write([], to: dir + "/empty.jsonl")
        #expect(try TraceFormat.detect(readingPath: dir + "/empty.jsonl") == .jsonl)
        try S.write([1, 2, 3], to: dir + "/mystery.dat")
        #expect {
            _ = try TraceFormat.detect(readingPath: dir + "/mystery.dat")
        } throws: { error in
            let d = (error as? TraceFileError)?.description ?? ""
            return d.contains("mystery.dat") && d.contains("starts with the bytes 01 02 03") && d.contains(".moetrace")
        }
        #expect(throws: TraceFileError.self) { _ = try TraceFormat.detect(readingPath: dir + "/absent.jsonl") }
    }

    @Test func aFileNamedMoetraceThatIsNotOneSaysWhatWasExpectedAndFound() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let magic = "expected the 8-byte magic 89 4D 4F 45 54 52 43 0A"
        let cases: [([UInt8], String)] = [
            ([0x89, 0x4D, 0x4F, 0x45], "holds only 4 bytes (89 4D 4F 45)"),
            (
                Array(#"{"problem_id": 0, "layer": 0}"#.utf8),
                #"looks like JSON text starting '{"problem_id' (a .jsonl trace? name it .jsonl)"#
            ),
            ([0x50, 0x4B, 3, 4, 0, 0, 0, 0, 0, 0], "is a zip archive (a .npz export? name it .npz)"),
            ([], "is empty"),
        ]
        for (bytes, found) in cases {
            try S.write(bytes, to: dir + "/x.moetrace")
            #expect {
                _ = try TraceFormat.detect(readingPath: dir + "/x.moetrace")
            } throws: { error in
                let d = "\(error)"
                return d.hasPrefix(dir + "/x.moetrace: not a .moetrace trace: " + magic)
                    && d.contains("but the file " + found)
            }
            // The binary reader opened directly says the same.
            #expect {
                _ = try BinaryTraceReader(path: dir + "/x.moetrace")
            } throws: { error in
                "\(error)".contains(magic) && "\(error)".contains("but the file " + found)
            }
        }
        try S.write(Array("{}\n".utf8), to: dir + "/y.npz")
        #expect {
            _ = try TraceFormat.detect(readingPath: dir + "/y.npz")
        } throws: { error in
            "\(error)".contains("not a .npz archive: expected a zip archive")
                && "\(error)".contains("looks like JSON text")
        }
    }

    @Test func openTraceSinkPicksTheWriter() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let binary = try openTraceSink(path: dir + "/a.moetrace", shape: S.narrowShape, settings: ["k": "v"])
        #expect(binary is BinaryTraceWriter)
        let npz = try openTraceSink(path: dir + "/a.npz", shape: S.narrowShape)
        #expect(npz is NPZWriter)
        let jsonl = try openTraceSink(path: dir + "/a.jsonl", shape: S.narrowShape)
        #expect(jsonl is JSONLTraceWriter)
        let stated = try openTraceSink(path: dir + "/b.out", format: .binary, shape: S.narrowShape)
        #expect(stated is BinaryTraceWriter)
        for sink in [binary, npz, jsonl, stated] {
            for b in blocks { try sink.write(b) }
            try sink.close()
        }
        let reader = try openBinaryTrace(path: dir + "/a.moetrace")
        #expect(reader.header.settings == ["k": "v"])
        var read: [RoutingBlock] = []
        while let b = try reader.nextBlock() { read.append(b) }
        #expect(read == blocks)
        #expect(try TraceFormat.detect(readingPath: dir + "/a.npz") == .npz)
        #expect(try TraceFormat.detect(readingPath: dir + "/b.out") == .binary)
        #expect {
            _ = try openTraceSink(path: dir + "/a.csv", shape: S.narrowShape)
        } throws: { ($0 as? TraceFileError)?.description.contains("name the file .jsonl, .moetrace or .npz") == true }
    }
}
