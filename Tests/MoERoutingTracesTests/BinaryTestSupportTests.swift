// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Helpers shared by the binary trace, npz and format tests: temporary directories, sample blocks
// with known contents, an independent chunk walker, and running Python when it has numpy.

import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

enum BinaryTestSupport {
    // MARK: Files

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("moe-binary-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    static func removeDirectory(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The package root (the directory holding Package.swift), found from this file's path.
    static var packageRoot: String { TestPaths.packageRoot(from: #filePath)?.path ?? "/" }

    // MARK: Reading

    /// Every block of a trace, and the reader (for its summary).
    static func readAll(_ path: String, lenient: Bool = false) throws -> ([RoutingBlock], BinaryTraceReader) {
        let reader = try BinaryTraceReader(path: path, options: TraceReadOptions(lenient: lenient))
        var blocks: [RoutingBlock] = []
        while let b = try reader.nextBlock() { blocks.append(b) }
        return (blocks, reader)
    }

    /// Chunks of a `.moetrace` file found by walking the frames as docs/trace-format.md describes
    /// (independently of the reader): (offset, kind, total size including the frame).
    static func chunks(_ bytes: [UInt8]) -> (headerEnd: Int, chunks: [(offset: Int, kind: Int, size: Int)]) {
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let headerEnd = 16 + u32(12) + 4
        var out: [(Int, Int, Int)] = []
        var pos = headerEnd
        while pos + 24 <= bytes.count {
            let kind = Int(bytes[pos + 4]) | Int(bytes[pos + 5]) << 8
            let size = 24 + u64(pos + 8)
            out.append((pos, kind, size))
            pos += size
        }
        return (headerEnd, out)
    }

    // MARK: Sample data

    static let narrowShape = try! ModelShape(layers: 4, experts: 8, topK: 2, name: "tiny-mixtral")
    static let wideShape = try! ModelShape(layers: 3, experts: 300, topK: 3, name: "wide")

    /// A deterministic cell: k distinct experts and weights ordered highest first.
    static func cell(_ t: Int, _ l: Int, _ shape: ModelShape) -> ([Int], [Float]) {
        var experts: [Int] = []
        var e = (t * 37 + l * 11 + 5) % shape.experts
        while experts.count < shape.topK {
            if !experts.contains(e) { experts.append(e) }
            e = (e + 97) % shape.experts
        }
        let weights = (0..<shape.topK).map { Float(shape.topK - $0) / Float(shape.topK + 1) + Float(t % 3) / 64 }
        return (experts, weights)
    }

    /// Three blocks of one stream: prefill and decode tokens, missing cells, and domains added in
    /// the second ("gsm8k") and third ("mbpp") blocks.
    static func sampleBlocks(shape: ModelShape = narrowShape) throws -> [RoutingBlock] {
        var builder = RoutingBlockBuilder(shape: shape)
        var blocks: [RoutingBlock] = []
        let plan: [[(String, Int64, Int32, RoutingPhase, Int32, Set<Int>)]] = [
            [
                ("humaneval", 0, 0, .prefill, 101, []),
                ("humaneval", 0, 1, .prefill, 102, [2]),
                ("humaneval", 0, 2, .decode, -1, []),
            ],
            [
                ("gsm8k", 1, 0, .decode, 7, []),
                ("humaneval", 0, 3, .decode, 8, [0]),
            ],
            [
                ("mbpp", 5_000_000_000, 0, .prefill, 9, [0, 1]),
                ("gsm8k", 1, 1, .decode, 2_000_000_000, []),
                ("mbpp", 5_000_000_000, 1, .decode, -1, Set(0..<shape.layers)),
                ("humaneval", 0, 4, .decode, 10, []),
            ],
        ]
        var global = 0
        for tokens in plan {
            for (domain, problem, position, phase, tokenID, missing) in tokens {
                let t = try builder.appendToken(
                    TokenMetadata(
                        domain: domain,
                        problemID: problem,
                        position: position,
                        phase: phase,
                        tokenID: tokenID
                    )
                )
                for l in 0..<shape.layers where !missing.contains(l) {
                    let (e, w) = cell(global, l, shape)
                    try builder.setCell(token: t, layer: l, experts: e, weights: w)
                }
                global += 1
            }
            blocks.append(builder.makeBlock())
        }
        return blocks
    }

    /// Writes blocks to a new trace and returns its path: `path`, or when not closed (a killed
    /// writer) the temporary file the writer leaves, since only close() puts the file in place.
    @discardableResult
    static func writeTrace(
        _ blocks: [RoutingBlock],
        shape: ModelShape = narrowShape,
        to path: String,
        settings: [String: String] = ["engine": "test"],
        close: Bool = true
    ) throws -> String {
        let writer = try BinaryTraceWriter(path: path, shape: shape, settings: settings)
        for b in blocks { try writer.write(b) }
        guard close else { return writer.temporaryPath }
        try writer.close()
        return path
    }

    /// The same columns, ignoring the domain table (which lenient recovery may pad).
    static func sameColumns(_ a: RoutingBlock, _ b: RoutingBlock) -> Bool {
        a.shape == b.shape && a.tokenCount == b.tokenCount && a.ids == b.ids && a.weights == b.weights
            && a.present == b.present && a.domain == b.domain && a.problemID == b.problemID
            && a.position == b.position && a.phase == b.phase && a.tokenID == b.tokenID && a.step == b.step
    }

    // MARK: Python

    /// A Python interpreter that can import numpy: the project's venv first, then /usr/bin/python3,
    /// then `python3` on the PATH.
    static let pythonWithNumpy: String? = {
        let root = packageRoot
        let onPath = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map {
            String($0) + "/python3"
        }
        let candidates = [root + "/.venv/bin/python", root + "/../.venv/bin/python", "/usr/bin/python3"] + onPath
        for p in candidates where FileManager.default.isExecutableFile(atPath: p) {
            if (try? runProcess(p, ["-c", "import numpy"]))?.status == 0 { return p }
        }
        return nil
    }()

    /// Writes the Python reader documented in docs/trace-format.md and `check` (a script that
    /// imports it from the directory in its second argument) into `dir`; returns the Python to run
    /// `check` with, or nil (after printing why the test is skipped) when none can import numpy.
    static func documentedReaderCheck(_ check: String, in dir: String) throws -> String? {
        guard let python = pythonWithNumpy else {
            print(
                "skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, /usr/bin/python3, python3 on PATH)"
            )
            return nil
        }
        try BinaryTraceFormatTests.documentedPythonReader().write(
            toFile: dir + "/moetrace_reader.py",
            atomically: true,
            encoding: .utf8
        )
        try check.write(toFile: dir + "/check.py", atomically: true, encoding: .utf8)
        return python
    }

    /// Runs a program and returns its exit status and combined output.
    static func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try TestProcess.run(executable, arguments)
    }

    /// A JSON array literal of numbers.
    static func json<T: CustomStringConvertible>(_ values: [T]) -> String {
        "[" + values.map(\.description).joined(separator: ",") + "]"
    }

    /// A JSON string literal.
    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// The blocks' columns, concatenated, as a JSON object (names as in the npz export).
    static func expectedJSON(_ blocks: [RoutingBlock], domains: [String]) -> String {
        var ids: [Int] = []
        var weights: [Float] = []
        var mask: [Int] = []
        var domain: [Int] = []
        var problem: [Int64] = []
        var position: [Int32] = []
        var phase: [Int] = []
        var token: [Int32] = []
        for b in blocks {
            ids += (0..<b.ids.count).map { b.ids[$0] }
            weights += b.weights
            mask += b.present.map { $0 ? 1 : 0 }
            domain += b.domain.map { domains.firstIndex(of: b.domains[Int($0)]) ?? -1 }
            problem += b.problemID
            position += b.position
            phase += b.phase.map { Int($0.rawValue) }
            token += b.tokenID
        }
        return """
            {"ids": \(json(ids)), "weights": \(json(weights)), "mask": \(json(mask)), "domain": \(json(domain)),
             "problem_id": \(json(problem)), "position": \(json(position)), "phase": \(json(phase)),
             "token_id": \(json(token)), "domains": [\(domains.map(json).joined(separator: ","))]}
            """
    }
}

/// Checks on the helpers themselves, so a broken helper cannot make other tests pass vacuously.
struct BinaryTestSupportTests {
    @Test func sampleBlocksHaveTheIntendedStructure() throws {
        let blocks = try BinaryTestSupport.sampleBlocks()
        #expect(blocks.map(\.tokenCount) == [3, 2, 4])
        #expect(blocks.map(\.domains.count) == [1, 2, 3])
        #expect(blocks[0].recordCount == 3 * 4 - 1)
        #expect(blocks[2].recordCount == 4 * 4 - 2 - 4)
        #expect(blocks[0].phase == [.prefill, .prefill, .decode])
    }

    @Test func chunkWalkerSeesHeaderBlocksAndEnd() throws {
        let dir = try BinaryTestSupport.temporaryDirectory()
        defer { BinaryTestSupport.removeDirectory(dir) }
        let path = try BinaryTestSupport.writeTrace(try BinaryTestSupport.sampleBlocks(), to: dir + "/t.moetrace")
        let bytes = try BinaryTestSupport.bytes(path)
        let (headerEnd, chunks) = BinaryTestSupport.chunks(bytes)
        #expect(headerEnd % 8 == 0)
        // domains, block, domains, block, domains, block, end
        #expect(chunks.map(\.kind) == [1, 2, 1, 2, 1, 2, 3])
        #expect(chunks.last.map { $0.offset + $0.size } == bytes.count)
    }
}
