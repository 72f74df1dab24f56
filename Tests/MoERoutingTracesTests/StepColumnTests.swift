// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The optional per-token step column (block column tag 32) through every trace format: the
// `.moetrace` writer and reader (u32 written; u32 or u64 read), the documented Python reader, the
// `.npz` export and the JSONL writer and reader.

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct StepColumnTests {
    typealias S = BinaryTestSupport

    // MARK: - Fixtures

    /// A block with its step column replaced.
    static func with(_ b: RoutingBlock, step: [UInt32]?) -> RoutingBlock {
        RoutingBlock(
            unchecked: b.shape,
            tokenCount: b.tokenCount,
            ids: b.ids,
            weights: b.weights,
            present: b.present,
            domain: b.domain,
            domains: b.domains,
            problemID: b.problemID,
            position: b.position,
            phase: b.phase,
            tokenID: b.tokenID,
            step: step
        )
    }

    /// The sample blocks (3, 2 and 4 tokens) with steps on the first and last block only; the
    /// last has an unknown step.
    static func steppedBlocks() throws -> [RoutingBlock] {
        let b = try S.sampleBlocks()
        return [with(b[0], step: [0, 0, 1]), b[1], with(b[2], step: [2, .max, 3, 4_000_000_000])]
    }

    static func le(_ b: [UInt8], _ at: Int, _ n: Int) -> Int {
        (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) }
    }

    /// The column directory of a block chunk, read from the file's bytes as docs/trace-format.md
    /// describes: (tag, dtype, flags, offset, length) and the payload.
    static func directory(
        _ bytes: [UInt8],
        chunk c: (offset: Int, kind: Int, size: Int)
    )
        -> (entries: [(tag: Int, dtype: Int, flags: Int, offset: Int, length: Int)], payload: [UInt8])
    {
        let payload = Array(bytes[(c.offset + 24)..<(c.offset + c.size)])
        let count = le(payload, 4, 2)
        let entries = (0..<count).map { i in
            let e = 8 + 24 * i
            return (
                le(payload, e, 2), Int(payload[e + 2]), Int(payload[e + 3]), le(payload, e + 8, 8),
                le(payload, e + 16, 8)
            )
        }
        return (entries, payload)
    }

    /// Rebuilds block chunk `index` (counting chunks of every kind) with extra columns appended
    /// after the existing ones, each given as (tag, dtype, flags, bytes), padded to 8 bytes.
    static func withColumns(_ bytes: [UInt8], chunk index: Int, _ extra: [(UInt16, UInt8, UInt8, [UInt8])]) -> [UInt8] {
        let c = S.chunks(bytes).chunks[index]
        let payload = Array(bytes[(c.offset + 24)..<(c.offset + c.size)])
        let columns = le(payload, 4, 2)
        let shift = 24 * extra.count  // keeps every offset 8-aligned
        func u64(_ v: Int) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var out = Array(payload[0..<4]) + [UInt8(columns + extra.count), 0, 0, 0]
        for i in 0..<columns {
            let e = 8 + 24 * i
            out += payload[e..<(e + 8)] + u64(le(payload, e + 8, 8) + shift) + payload[(e + 16)..<(e + 24)]
        }
        var data: [UInt8] = []
        for (tag, dtype, flags, body) in extra {
            out += [UInt8(tag & 0xFF), UInt8(tag >> 8), dtype, flags, 0, 0, 0, 0]
            out += u64(payload.count + shift + data.count) + u64(body.count)
            data += body + [UInt8](repeating: 0, count: (8 - body.count % 8) % 8)
        }
        out += payload[(8 + 24 * columns)...] + data
        return Array(bytes[..<c.offset]) + BinaryTraceReaderTests.chunk(kind: 2, flags: 0, payload: out)
            + Array(bytes[(c.offset + c.size)...])
    }

    static func u64Bytes(_ values: [UInt64]) -> [UInt8] {
        values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    }

    static func u32Bytes(_ values: [UInt32]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    }

    // MARK: - Binary trace

    @Test func binaryRoundTripWritesAnOptionalU32ColumnOnlyWhereThereAreSteps() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try Self.steppedBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/s.moetrace"))
        let (read, reader) = try S.readAll(dir + "/s.moetrace")
        #expect(read == blocks)
        #expect(read.map(\.step) == [[0, 0, 1], nil, [2, .max, 3, 4_000_000_000]])
        #expect(reader.isComplete && reader.summary.lostBytes == 0)

        // The file itself, walked independently of the reader.
        let blockChunks = S.chunks(bytes).chunks.filter { $0.kind == 2 }
        #expect(blockChunks.count == 3)
        for (c, block) in zip(blockChunks, blocks) {
            let (entries, payload) = Self.directory(bytes, chunk: c)
            #expect(entries.map(\.tag).prefix(8) == [1, 2, 3, 4, 5, 6, 7, 8])
            let step = entries.first { $0.tag == 32 }
            guard let steps = block.step else {
                #expect(entries.count == 8)
                #expect(step == nil)
                continue
            }
            #expect(entries.count == 9)
            let e = try #require(step)
            #expect(e.dtype == 3 && e.flags == 1 && e.length == 4 * block.tokenCount && e.offset % 8 == 0)
            #expect((0..<block.tokenCount).map { UInt32(Self.le(payload, e.offset + 4 * $0, 4)) } == steps)
        }
    }

    @Test func traceWithoutStepsReadsBackWithoutTheColumn() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        #expect(blocks.allSatisfy { $0.step == nil })
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/o.moetrace"))
        for c in S.chunks(bytes).chunks where c.kind == 2 {
            #expect(Self.directory(bytes, chunk: c).entries.map(\.tag) == [1, 2, 3, 4, 5, 6, 7, 8])
        }
        let (read, _) = try S.readAll(dir + "/o.moetrace")
        #expect(read == blocks)
        #expect(read.allSatisfy { $0.step == nil })
    }

    @Test func handBuiltU64AndRequiredU32StepColumnsAreRead() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        // Chunk 1 is the first block (3 tokens): u64 with the all-ones "unknown".
        let wide = Self.withColumns(bytes, chunk: 1, [(32, 4, 1, Self.u64Bytes([7, .max, 4_294_967_294]))])
        try S.write(wide, to: dir + "/u64.moetrace")
        let (read, _) = try S.readAll(dir + "/u64.moetrace")
        #expect(read.map(\.step) == [[7, .max, 4_294_967_294], nil, nil])
        #expect(read.map { Self.with($0, step: nil) } == blocks)
        // A u32 column without the optional flag: this reader knows the tag, so it reads it.
        let narrow = Self.withColumns(bytes, chunk: 3, [(32, 3, 0, Self.u32Bytes([9, 10]))])
        try S.write(narrow, to: dir + "/u32.moetrace")
        #expect(try S.readAll(dir + "/u32.moetrace").0.map(\.step) == [nil, [9, 10], nil])
    }

    @Test func impossibleStepColumnsAreCorruptChunks() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/f.moetrace"))
        let at = S.chunks(bytes).chunks[1].offset
        let cases: [([(UInt16, UInt8, UInt8, [UInt8])], String)] = [
            // u64 values that are not steps: 2^32 - 1 (only the u64 all ones means unknown), 2^40.
            (
                [(32, 4, 1, Self.u64Bytes([0, 4_294_967_295, 1]))],
                "block column 'step' (u64) holds 4294967295 for token 1"
            ),
            ([(32, 4, 1, Self.u64Bytes([1 << 40, 0, 1]))], "holds 1099511627776 for token 0"),
            // Wrong dtype, wrong length, two columns.
            (
                [(32, 2, 1, [1, 0, 2, 0, 3, 0])],
                "block column 'step' is u16 of 6 bytes, expected u32 of 12 bytes or u64 of 24 bytes"
            ),
            (
                [(32, 3, 1, Self.u32Bytes([1, 2]))],
                "block column 'step' is u32 of 8 bytes, expected u32 of 12 bytes or u64 of 24 bytes"
            ),
            (
                [(32, 3, 1, Self.u32Bytes([1, 2, 3])), (32, 3, 1, Self.u32Bytes([1, 2, 3]))],
                "block has two 'step' columns"
            ),
        ]
        for (extra, phrase) in cases {
            try S.write(Self.withColumns(bytes, chunk: 1, extra), to: dir + "/bad.moetrace")
            #expect {
                _ = try S.readAll(dir + "/bad.moetrace")
            } throws: { error in
                let e = error as? TraceError
                return e?.byteOffset == at && e?.issue.kind == .malformed && e?.description.contains(phrase) == true
            }
            // Lenient mode skips that block and keeps the others.
            let (lenient, reader) = try S.readAll(dir + "/bad.moetrace", lenient: true)
            #expect(lenient == Array(blocks[1...]), "\(phrase)")
            #expect(reader.summary.skipped == [.malformed: 1])
        }
    }

    @Test func cutTraceKeepsTheStepsOfEveryCompleteBlock() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try Self.steppedBlocks()
        let bytes = try S.bytes(try S.writeTrace(blocks, to: dir + "/s.moetrace"))
        let third = S.chunks(bytes).chunks[5]
        #expect(third.kind == 2)
        // Cut inside the third block's step column (its last bytes).
        try S.write(Array(bytes[..<(third.offset + third.size - 4)]), to: dir + "/cut.moetrace")
        let (read, reader) = try S.readAll(dir + "/cut.moetrace")
        #expect(read == Array(blocks[0..<2]))
        #expect(read.map(\.step) == [[0, 0, 1], nil])
        #expect(reader.summary.lostBytes == third.size - 4)
        #expect(!reader.isComplete)
    }

    @Test func documentedPythonReaderReturnsSteps() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let check = """
            import sys
            sys.path.insert(0, sys.argv[2])
            from moetrace_reader import read_moetrace
            try:
                header, a, end = read_moetrace(sys.argv[1])
            except ValueError as e:
                print("ERROR", "corrupt step column" in str(e))
                sys.exit(0)
            step = a.get("step")
            print("OK", a["phase"].shape[0], None if step is None else (str(step.dtype), step.tolist()))
            """
        guard let python = try S.documentedReaderCheck(check, in: dir) else { return }
        func run(_ trace: String) throws -> String {
            let (status, output) = try S.runProcess(python, [dir + "/check.py", trace, dir])
            #expect(status == 0, "\(output)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let max = UInt32.max
        try S.writeTrace(try Self.steppedBlocks(), to: dir + "/s.moetrace")
        #expect(try run(dir + "/s.moetrace") == "OK 9 ('uint32', [0, 0, 1, \(max), \(max), 2, \(max), 3, 4000000000])")
        let plain = try S.bytes(try S.writeTrace(try S.sampleBlocks(), to: dir + "/p.moetrace"))
        #expect(try run(dir + "/p.moetrace") == "OK 9 None")
        try S.write(Self.withColumns(plain, chunk: 3, [(32, 4, 1, Self.u64Bytes([5, .max]))]), to: dir + "/w.moetrace")
        #expect(
            try run(dir + "/w.moetrace")
                == "OK 9 ('uint32', [\(max), \(max), \(max), 5, \(max), \(max), \(max), \(max), \(max)])"
        )
        try S.write(
            Self.withColumns(plain, chunk: 3, [(32, 4, 1, Self.u64Bytes([5, 1 << 33]))]),
            to: dir + "/x.moetrace"
        )
        #expect(try run(dir + "/x.moetrace") == "ERROR True")
    }

    // MARK: - NPZ

    @Test func npzHasAStepArrayOnlyWhenABlockHadSteps() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let sample = try S.sampleBlocks()
        // No steps in the first block: its tokens are written as unknown once steps appear.
        let blocks = [sample[0], Self.with(sample[1], step: [5, 6]), Self.with(sample[2], step: [.max, 7, 8, 9])]
        try NPZWriterTests.export(blocks, shape: S.narrowShape, to: dir + "/s.npz")
        let members = try NPZWriterTests.parseZip(try S.bytes(dir + "/s.npz")).members
        #expect(
            members.map(\.name) == [
                "ids.npy", "weights.npy", "mask.npy", "problem_id.npy", "position.npy", "phase.npy", "token_id.npy",
                "domain.npy", "step.npy", "domains.npy", "shape.npy", "settings.npy", "model_name.npy",
            ]
        )
        let step = try NPZWriterTests.parseNPY(try #require(members.first { $0.name == "step.npy" }).data)
        #expect(step.descr == "<u4" && step.shape == [9] && !step.fortranOrder)
        let max = UInt32.max
        #expect(step.data == Self.u32Bytes([max, max, max, 5, 6, max, 7, 8, 9]))
        // Temporary files (the step column's included) are gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["s.npz"])

        try NPZWriterTests.export(sample, shape: S.narrowShape, to: dir + "/p.npz")
        #expect(!(try NPZWriterTests.parseZip(try S.bytes(dir + "/p.npz")).members.contains { $0.name == "step.npy" }))

        guard let python = S.pythonWithNumpy else {
            print(
                "skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, /usr/bin/python3, python3 on PATH)"
            )
            return
        }
        let script = """
            import sys
            import numpy as np
            d, p = np.load(sys.argv[1]), np.load(sys.argv[2])
            s = d["step"]
            print("OK", s.dtype, s.shape, s.tolist(), "step" in p.files)
            """
        try script.write(toFile: dir + "/check.py", atomically: true, encoding: .utf8)
        let (status, output) = try S.runProcess(python, [dir + "/check.py", dir + "/s.npz", dir + "/p.npz"])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("OK uint32 (9,) [\(max), \(max), \(max), 5, 6, \(max), 7, 8, 9] False"), "\(output)")
    }

    // MARK: - JSONL

    /// Three blocks whose problems are contiguous (as JSONL requires): steps in the first and
    /// third; problem 0 continues into the step-less second block; c/2/2 has no present cell.
    static func jsonlBlocks() throws -> [RoutingBlock] {
        var b = RoutingBlockBuilder(shape: S.narrowShape)
        func token(
            _ domain: String,
            _ problem: Int64,
            _ position: Int32,
            _ step: UInt32?,
            missing: Set<Int> = []
        ) throws {
            let t = try b.appendToken(
                TokenMetadata(
                    domain: domain,
                    problemID: problem,
                    position: position,
                    phase: .decode,
                    tokenID: 100 + position,
                    step: step
                )
            )
            for l in 0..<4 where !missing.contains(l) {
                let (e, w) = S.cell(Int(problem) * 10 + Int(position), l, S.narrowShape)
                try b.setCell(token: t, layer: l, experts: e, weights: w)
            }
        }
        try token("a", 0, 0, 0)
        try token("a", 0, 1, 0, missing: [2])
        try token("a", 0, 2, 1)
        let first = b.makeBlock()
        try token("a", 0, 3, nil)
        try token("b", 1, 0, nil)
        let second = b.makeBlock()
        try token("c", 2, 0, 2, missing: [0, 1])
        try token("c", 2, 1, nil)
        try token("c", 2, 2, 3, missing: [0, 1, 2, 3])
        try token("c", 2, 3, 4_000_000_000)
        return [first, second, b.makeBlock()]
    }

    @Test func jsonlRoundTripCarriesKnownSteps() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try Self.jsonlBlocks()
        #expect(blocks.map(\.step) == [[0, 0, 1], nil, [2, .max, 3, 4_000_000_000]])
        let writer = try JSONLTraceWriter(path: dir + "/s.jsonl")
        for b in blocks { try writer.write(b) }
        try writer.close()
        let text = try String(contentsOfFile: dir + "/s.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.first?.hasSuffix(",\"phase\":\"decode\",\"token\":100,\"step\":0}") == true)
        // Present cells of tokens with a known step: 4 + 3 + 4, then 2 + 4 (c/2/2 has no cell).
        #expect(lines.filter { $0.contains("\"step\":") }.count == 17)
        #expect(text.contains("\"step\":4000000000}"))

        let reader = try JSONLTraceReader(path: dir + "/s.jsonl", options: TraceReadOptions(shape: S.narrowShape))
        let back = try JSONLFixtures.readAll(reader)
        #expect(reader.summary.skippedTotal == 0)
        // Tokens by (domain, problem, position): only tokens with a present cell survive JSONL.
        func steps(_ blocks: [RoutingBlock], skipEmpty: Bool) -> [String: UInt32] {
            var out: [String: UInt32] = [:]
            for b in blocks {
                for t in 0..<b.tokenCount
                where !skipEmpty || (0..<b.shape.layers).contains(where: { b.isPresent(token: t, layer: $0) }) {
                    out["\(b.domainName(token: t))/\(b.problemID[t])/\(b.position[t])"] = b.step?[t] ?? .max
                }
            }
            return out
        }
        let expected = steps(blocks, skipEmpty: true)
        #expect(expected.count == 8)
        #expect(steps(back, skipEmpty: false) == expected)
        #expect(back.contains { $0.step != nil })
        // Cells survive as well.
        #expect(JSONLFixtures.tokens(back).count == 8)

        // A trace without steps reads back without the column, and its lines have no "step".
        let plain = try JSONLTraceWriter(path: dir + "/p.jsonl")
        for b in try Self.jsonlBlocks() { try plain.write(Self.with(b, step: nil)) }
        try plain.close()
        #expect(!(try String(contentsOfFile: dir + "/p.jsonl", encoding: .utf8)).contains("step"))
        let plainBack = try JSONLFixtures.readAll(try JSONLTraceReader(path: dir + "/p.jsonl"))
        #expect(!plainBack.isEmpty && plainBack.allSatisfy { $0.step == nil })
    }

    @Test func jsonlStepFieldIsCheckedPerRecordAndPerToken() throws {
        let head = #"{"dataset":"d","problem_id":1,"experts":[0,1],"gating_probs":[0.6,0.4],"#
        // null reads as unknown; the column appears because another token has a step.
        let ok = try JSONLFixtures.file(lines: [
            head + #""layer":0,"token_idx":0,"step":3}"#,
            head + #""layer":1,"token_idx":0,"step":3}"#,
            head + #""layer":0,"token_idx":1,"step":null}"#,
            head + #""layer":0,"token_idx":2}"#,
        ])
        let blocks = try JSONLFixtures.readAll(
            try JSONLTraceReader(path: ok, options: TraceReadOptions(shape: .tinyMixtral))
        )
        #expect(blocks.count == 1)
        #expect(blocks.first?.step == [3, .max, .max])

        let cases: [(String, String, Int, String)] = [
            (
                #""layer":0,"token_idx":0,"step":-1}"#, "", 1,
                "field 'step' (the engine step) must be in 0...4294967294, found -1"
            ),
            (#""layer":0,"token_idx":0,"step":4294967295}"#, "", 1, "must be in 0...4294967294, found 4294967295"),
            (#""layer":0,"token_idx":0,"step":"7"}"#, "", 1, "field 'step' must be an integer"),
            (#""layer":0,"token_idx":0,"step":1.5}"#, "", 1, "field 'step' must hold integers"),
            (#""layer":0,"token_idx":0,"step":1,"step":1}"#, "", 1, "field 'step' appears twice in one record"),
            (
                #""layer":0,"token_idx":0,"step":4}"#, #""layer":1,"token_idx":0,"step":5}"#, 2,
                "has 'step' 5 here but 'step' 4 on line 1"
            ),
            (
                #""layer":0,"token_idx":0,"step":4}"#, #""layer":1,"token_idx":0}"#, 2,
                "has no 'step' here but 'step' 4 on line 1"
            ),
        ]
        for (first, second, line, phrase) in cases {
            let path = try JSONLFixtures.file(lines: [head + first] + (second.isEmpty ? [] : [head + second]))
            #expect {
                _ = try JSONLFixtures.readAll(
                    try JSONLTraceReader(path: path, options: TraceReadOptions(shape: .tinyMixtral))
                )
            } throws: { error in
                let d = (error as? TraceError)?.description ?? "\(error)"
                return d.hasPrefix("\(path):\(line): ") && d.contains(phrase)
            }
            // Lenient mode skips the bad record only.
            let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: .tinyMixtral, lenient: true))
            _ = try JSONLFixtures.readAll(reader)
            #expect(reader.summary.skippedTotal == 1, "\(phrase)")
        }
    }
}
