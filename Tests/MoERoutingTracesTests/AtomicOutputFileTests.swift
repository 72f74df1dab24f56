// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// AtomicOutputFile (temporary name, commit, discard), OutputPreflight (checks before the work) and
// FileIdentity, and the trace writers' use of them: an existing output stays whole until the new
// one is complete, and a discarded output leaves nothing behind.

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct AtomicOutputFileTests {
    typealias S = BinaryTestSupport

    /// The names in a directory, sorted.
    static func listing(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    }

    // MARK: - AtomicOutputFile

    @Test func bytesStayUnderTheTemporaryNameUntilCommit() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/out.bin"
        let file = try AtomicOutputFile(path: path)
        #expect(file.temporaryPath == "\(path).partial-\(getpid())")
        #expect(file.temporaryPath == AtomicOutputFile.temporaryPath(for: path))
        try file.write([1, 2, 3, 4])
        try file.overwrite([9], at: 1)
        #expect(file.offset == 4)
        // Written through to the kernel, under the temporary name only.
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try S.bytes(file.temporaryPath) == [1, 9, 3, 4])
        try file.commit()
        #expect(file.isCommitted)
        #expect(try S.bytes(path) == [1, 9, 3, 4])
        #expect(try Self.listing(dir) == ["out.bin"])
        try file.commit()  // a second commit does nothing
        #expect(throws: OutputFileError.self) { try file.write([5]) }
    }

    @Test func discardLeavesAnExistingFileByteIdenticalAndNoTemporaryFile() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/keep.txt"
        let original: [UInt8] = Array("the earlier output\n".utf8)
        try S.write(original, to: path)
        let file = try AtomicOutputFile(path: path)
        try file.write(Array(repeating: 0x41, count: 10_000))
        #expect(try S.bytes(path) == original)  // untouched while the new one is written
        file.discard()
        #expect(try S.bytes(path) == original)
        #expect(try Self.listing(dir) == ["keep.txt"])
        #expect(!file.isOpen)
        #expect(throws: OutputFileError.self) { try file.commit() }
    }

    @Test func commitReplacesTheFileASymlinkPointsToAndKeepsItsMode() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let real = dir + "/real.txt"
        let link = dir + "/link.txt"
        try S.write([1], to: real)
        #expect(chmod(real, 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.txt")
        try AtomicOutputFile.write([7, 7], to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "real.txt")
        #expect(try S.bytes(real) == [7, 7])
        let mode = try FileManager.default.attributesOfItem(atPath: real)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try Self.listing(dir) == ["link.txt", "real.txt"])
    }

    @Test func anUnwritableTargetIsOneLineWithTheSystemReason() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let missing = dir + "/no/such/dir/out.moetrace"
        #expect {
            _ = try AtomicOutputFile(path: missing)
        } throws: { error in
            (error as? OutputFileError)?.description == "cannot write \(missing): No such file or directory"
        }
        #expect {
            _ = try AtomicOutputFile(path: dir)
        } throws: { error in
            (error as? OutputFileError)?.description == "cannot write \(dir): it is a directory"
        }
    }

    @Test func aFileNeitherCommittedNorDiscardedStaysAtTheTemporaryName() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/killed.bin"
        var temporary = ""
        do {
            let file = try AtomicOutputFile(path: path)
            temporary = file.temporaryPath
            try file.write([4, 2])
        }
        // As after a kill: nothing under the final name, the bytes kept under the temporary one.
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try S.bytes(temporary) == [4, 2])
    }

    @Test func aDeviceIsWrittenInPlaceAndNeverRemoved() throws {
        let file = try AtomicOutputFile(path: "/dev/null")
        #expect(file.temporaryPath == "/dev/null")
        try file.write([1, 2, 3])
        file.discard()
        #expect(FileManager.default.fileExists(atPath: "/dev/null"))
        try AtomicOutputFile.write([1], to: "/dev/null")
        #expect(FileManager.default.fileExists(atPath: "/dev/null"))
    }

    // MARK: - Writers

    @Test func aDiscardedBinaryTraceLeavesTheEarlierTraceByteIdentical() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace([blocks[0]], to: dir + "/t.moetrace")
        let before = try S.bytes(path)
        let writer = try BinaryTraceWriter(path: path, shape: S.narrowShape)
        try writer.write(blocks[1])
        try writer.write(blocks[2])
        #expect(try S.bytes(path) == before)
        #expect(FileManager.default.fileExists(atPath: writer.temporaryPath))
        writer.discard()
        #expect(try S.bytes(path) == before)
        #expect(try Self.listing(dir) == ["t.moetrace"])
        #expect(throws: TraceFileError.self) { try writer.write(blocks[0]) }
        try writer.close()  // does nothing after a discard
        #expect(try S.bytes(path) == before)
    }

    @Test func aClosedBinaryTraceReplacesTheEarlierOneWhole() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace([blocks[0]], to: dir + "/t.moetrace")
        try S.writeTrace(blocks, to: path)
        let (read, reader) = try S.readAll(path)
        #expect(read == blocks)
        #expect(reader.isComplete)
        #expect(try Self.listing(dir) == ["t.moetrace"])
    }

    @Test func aDiscardedJSONLTraceLeavesTheEarlierFileByteIdentical() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/t.jsonl"
        let original = Array("{\"earlier\":true}\n".utf8)
        try S.write(original, to: path)
        let writer = try JSONLTraceWriter(path: path)
        for b in try S.sampleBlocks() { try writer.write(b) }
        writer.discard()
        #expect(try S.bytes(path) == original)
        #expect(try Self.listing(dir) == ["t.jsonl"])
        try writer.close()
        #expect(try S.bytes(path) == original)
    }

    @Test func aDiscardedNPZLeavesNothingAndTheEarlierFileByteIdentical() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/t.npz"
        let original: [UInt8] = [0x50, 0x4B, 5, 6]
        try S.write(original, to: path)
        let writer = try NPZWriter(path: path, shape: S.narrowShape)
        for b in try S.sampleBlocks() { try writer.write(b) }
        #expect(try Self.listing(dir).count > 1)  // the column files
        writer.discard()
        #expect(try S.bytes(path) == original)
        #expect(try Self.listing(dir) == ["t.npz"])
    }

    @Test func aFailedDispatcherRunDiscardsItsSinks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = try S.writeTrace([blocks[0]], to: dir + "/t.moetrace")
        let before = try S.bytes(path)
        let writer = try BinaryTraceWriter(path: path, shape: S.narrowShape)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [writer])
        #expect(throws: FailingSource.Failure.self) {
            try dispatcher.run(
                source: FailingSource(shape: S.narrowShape, good: blocks),
                context: AnalysisContext(shape: S.narrowShape)
            )
        }
        #expect(dispatcher.statistics.tokens == blocks.reduce(0) { $0 + $1.tokenCount })  // it did write
        #expect(try S.bytes(path) == before)
        #expect(try Self.listing(dir) == ["t.moetrace"])
    }

    // MARK: - OutputPreflight and FileIdentity

    @Test func preflightRefusesAnOutputThatIsAnInputThroughASymlinkOrHardLink() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let input = dir + "/in.jsonl"
        try S.write([1], to: input)
        try FileManager.default.createSymbolicLink(atPath: dir + "/sym.jsonl", withDestinationPath: input)
        try FileManager.default.linkItem(atPath: input, toPath: dir + "/hard.jsonl")
        for out in [input, dir + "/sym.jsonl", dir + "/hard.jsonl", dir + "/./in.jsonl"] {
            #expect {
                try OutputPreflight.check(files: [out], inputs: [input])
            } throws: { error in
                let d = (error as? OutputFileError)?.description ?? ""
                return d.hasPrefix("cannot write \(out): ") && d.contains("destroy that input")
            }
        }
        try OutputPreflight.check(files: [dir + "/new.moetrace"], inputs: [input])
        #expect(try Self.listing(dir) == ["hard.jsonl", "in.jsonl", "sym.jsonl"])  // the probe is gone
        #expect(try S.bytes(input) == [1])
    }

    @Test func preflightRefusesTwoOutputsThatAreOneFile() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        #expect {
            try OutputPreflight.check(files: [dir + "/a.json", dir + "/sub/../a.json"], directories: [dir + "/sub"])
        } throws: { error in
            (error as? OutputFileError)?.reason
                == "it is the same file as the output \(dir)/a.json; name different outputs"
        }
    }

    @Test func preflightCreatesDirectoriesAndGivesTheRealReason() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        try OutputPreflight.check(files: [dir + "/a/b/run.json"], directories: [dir + "/a/b/"])
        var isDirectory: ObjCBool = false
        #expect(
            FileManager.default.fileExists(atPath: dir + "/a/b", isDirectory: &isDirectory) && isDirectory.boolValue
        )
        #expect(try Self.listing(dir + "/a/b") == [])
        try S.write([0], to: dir + "/file")
        #expect {
            try OutputPreflight.check(files: [], directories: [dir + "/file/sub"])
        } throws: { error in
            (error as? OutputFileError)?.description == "cannot write \(dir)/file: it exists and is not a directory"
        }
        #expect {
            try OutputPreflight.check(files: [dir + "/missing/x.moetrace"])
        } throws: { error in
            (error as? OutputFileError)?.description
                == "cannot write \(dir)/missing/x.moetrace: No such file or directory"
        }
        #expect {
            try OutputPreflight.check(files: [], directories: ["/proc/moe-routing-test"])
        } throws: { error in
            (error as? OutputFileError)?.description == "cannot write /proc/moe-routing-test: No such file or directory"
        }
    }

    @Test func inputsGivenTwiceAreRefusedNamingBoth() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let a = dir + "/a.moetrace"
        try S.write([1], to: a)
        try FileManager.default.createSymbolicLink(atPath: dir + "/b.moetrace", withDestinationPath: a)
        #expect(FileIdentity(path: a) == FileIdentity(path: dir + "/b.moetrace"))
        #expect(FileIdentity(path: dir + "/absent") == nil)
        #expect {
            try FileIdentity.requireDistinct([a, dir + "/b.moetrace"])
        } throws: { error in
            (error as? TraceFileError)?.description
                == "\(dir)/b.moetrace: the same file as \(a), given twice; give each trace once (every count would double)"
        }
        #expect {
            try FileIdentity.requireDistinct([a, a])
        } throws: { error in
            (error as? TraceFileError)?.description
                == "\(a): given twice; give each trace once (every count would double)"
        }
        try FileIdentity.requireDistinct([a, dir + "/absent"])
    }
}

/// Hands out `good` blocks, then fails (a bad record after some good ones).
final class FailingSource: RoutingBlockSource {
    struct Failure: Error {}
    let shape: ModelShape
    private var good: [RoutingBlock]

    init(shape: ModelShape, good: [RoutingBlock]) {
        self.shape = shape
        self.good = good
    }

    func nextBlock() throws -> RoutingBlock? {
        guard !good.isEmpty else { throw Failure() }
        return good.removeFirst()
    }
}
