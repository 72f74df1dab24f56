// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

// MARK: - Fixtures shared by the JSONL tests

/// Temporary files and block helpers for the JSONL tests.
enum JSONLFixtures {
    /// A fresh temporary directory.
    static func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jsonl-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `bytes` to `name` in a fresh temporary directory and returns the path.
    static func file(_ name: String = "trace.jsonl", bytes: [UInt8]) throws -> String {
        let url = try directory().appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Writes lines (each followed by `\n`) to a file and returns the path.
    static func file(_ name: String = "trace.jsonl", lines: [String]) throws -> String {
        try file(name, bytes: Array(lines.map { $0 + "\n" }.joined().utf8))
    }

    /// Reads every block of a reader.
    static func readAll(_ reader: JSONLTraceReader) throws -> [RoutingBlock] {
        var blocks: [RoutingBlock] = []
        while let b = try reader.nextBlock() { blocks.append(b) }
        return blocks
    }

    /// One token's identity in a stream.
    struct TokenKey: Hashable, CustomStringConvertible {
        var domain: String
        var problem: Int64
        var position: Int32
        var description: String { "\(domain)/\(problem)/\(position)" }
    }

    /// One token's content: metadata and cells (nil for missing layers).
    struct TokenValue: Equatable {
        var phase: RoutingPhase
        var tokenID: Int32
        var cells: [[Cell]?]
    }

    struct Cell: Equatable {
        var expert: Int
        var weight: Float
    }

    /// Every token of some blocks, keyed by (domain, problem, position), in stream order.
    static func tokens(_ blocks: [RoutingBlock]) -> [(TokenKey, TokenValue)] {
        var out: [(TokenKey, TokenValue)] = []
        for b in blocks {
            for t in 0..<b.tokenCount {
                let key = TokenKey(domain: b.domainName(token: t), problem: b.problemID[t], position: b.position[t])
                let cells: [[Cell]?] = (0..<b.shape.layers).map { l in
                    guard b.isPresent(token: t, layer: l) else { return nil }
                    return (0..<b.shape.topK).map {
                        Cell(
                            expert: b.expert(token: t, layer: l, slot: $0),
                            weight: b.weight(token: t, layer: l, slot: $0)
                        )
                    }
                }
                out.append((key, TokenValue(phase: b.phase[t], tokenID: b.tokenID[t], cells: cells)))
            }
        }
        return out
    }

    /// The package root (the directory holding Package.swift), found from this file.
    static var packageRoot: URL? { TestPaths.packageRoot(from: #filePath) }

    /// A file of the shared data directory (../shared/data from the package root), if present.
    static func sharedData(_ name: String) -> String? {
        guard let root = packageRoot else { return nil }
        let path = root.appendingPathComponent("../shared/data/\(name)").standardizedFileURL.path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static let humaneval = "mixtral_humaneval_2problems_routing.jsonl"
    static let gsm8k = "mixtral_gsm8k_2problems_routing.jsonl"
}

/// Expects a strict read to throw a `TraceError` of `kind` at `line`, mentioning `phrase`.
private func expectStrictError(
    _ lines: [String],
    shape: ModelShape? = .tinyMixtral,
    kind: RecordIssue.Kind,
    line: Int,
    phrase: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let path = try JSONLFixtures.file("bad-input.jsonl", lines: lines)
    do {
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: shape))
        _ = try JSONLFixtures.readAll(reader)
        Issue.record("expected a \(kind) error", sourceLocation: sourceLocation)
    } catch let error as TraceError {
        #expect(error.issue.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        let text = error.description
        #expect(text.contains("bad-input.jsonl:\(line): "), "\(text)", sourceLocation: sourceLocation)
        #expect(text.contains(phrase), "\(text)", sourceLocation: sourceLocation)
        #expect(!text.contains("\n"), sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

struct JSONLTraceReaderTests {
    private let tiny = ModelShape.tinyMixtral  // L=4, E=8, k=2

    @Test func readsSharedDataSpelling() throws {
        let path = try JSONLFixtures.file(lines: [
            #"{"dataset": "humaneval", "problem_id": 0, "layer": 0, "experts": [6, 5], "gating_probs": [0.696, 0.304], "token_idx": 0}"#,
            #"{"dataset": "humaneval", "problem_id": 0, "layer": 1, "experts": [1, 2], "gating_probs": [0.5, 0.25], "token_idx": 0}"#,
            #"{"dataset": "humaneval", "problem_id": 0, "layer": 0, "experts": [3, 4], "gating_probs": [0.9, 0.1], "token_idx": 1}"#,
        ])
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(blocks.count == 1)
        let b = try #require(blocks.first)
        #expect(b.tokenCount == 2)
        #expect(b.domains == ["humaneval"])
        #expect(b.problemID == [0, 0])
        #expect(b.position == [0, 1])
        #expect(b.phase == [.decode, .decode])
        #expect(b.tokenID == [-1, -1])
        #expect(b.present == [true, true, false, false, true, false, false, false])
        #expect(b.expert(token: 0, layer: 0, slot: 0) == 6)
        #expect(b.expert(token: 0, layer: 0, slot: 1) == 5)
        #expect(b.weight(token: 0, layer: 0, slot: 0) == Float(0.696))
        #expect(b.weight(token: 0, layer: 0, slot: 1) == Float(0.304))
        #expect(b.expert(token: 0, layer: 1, slot: 0) == 1)
        #expect(b.weight(token: 0, layer: 1, slot: 1) == 0.25)
        #expect(b.expert(token: 1, layer: 0, slot: 0) == 3)
        #expect(b.weight(token: 1, layer: 0, slot: 0) == Float(0.9))
        #expect(reader.recordsRead == 3)
        #expect(reader.linesRead == 3)
        #expect(reader.tokensRead == 2)
        #expect(reader.summary.skippedTotal == 0)
        #expect(!reader.shapeWasInferred)
    }

    @Test func readsSeedSpellingWithFileNameOrDefaultDomain() throws {
        let lines = [
            #"{"problem_id":0,"layer":0,"token_id":0,"expert_ids":[3,7],"weights":[0.6,0.4]}"#,
            #"{"problem_id":0,"layer":0,"token_id":1,"expert_ids":[2,0],"weights":[0.8,0.2]}"#,
        ]
        let path = try JSONLFixtures.file("seed_run.v1.jsonl", lines: lines)
        let b = try #require(
            try JSONLFixtures.readAll(JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))).first
        )
        #expect(b.domains == ["seed_run.v1"])
        #expect(b.position == [0, 1])
        #expect(b.tokenID == [-1, -1])  // token_id is the position, not a vocabulary id
        #expect(b.expert(token: 0, layer: 0, slot: 0) == 3)
        #expect(b.weight(token: 0, layer: 0, slot: 1) == Float(0.4))
        #expect(b.expert(token: 1, layer: 0, slot: 1) == 0)

        let named = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny, defaultDomain: "gsm8k"))
        #expect(try JSONLFixtures.readAll(named).first?.domains == ["gsm8k"])
    }

    @Test func readsTokenPosPhaseTokenAndSkipsUnknownKeysInAnyOrder() throws {
        let path = try JSONLFixtures.file(lines: [
            #"{"token_pos": 7, "gating_probs": [0.25, 0.75], "meta": {"a": [1, {"b": "x\"]}\\"}], "c": null}, "experts": [1, 2], "layer": 2, "phase": "prefill", "problem_id": -4, "dataset": "mbpp", "token": 1234, "z": [[[]]], "t": true, "f": false, "n": -1.5e3}"#,
            #"  {"experts":[4,5],"gating_probs":[0.5,0.5],"token_pos":9,"problem_id":-4,"layer":0,"dataset":"mbpp","token":null}  "#,
        ])
        let b = try #require(
            try JSONLFixtures.readAll(JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))).first
        )
        #expect(b.tokenCount == 2)
        #expect(b.domains == ["mbpp"])
        #expect(b.problemID == [-4, -4])
        #expect(b.position == [7, 9])
        #expect(b.phase == [.prefill, .decode])
        #expect(b.tokenID == [1234, -1])
        #expect(b.isPresent(token: 0, layer: 2))
        #expect(!b.isPresent(token: 0, layer: 0))
        #expect(b.expert(token: 1, layer: 0, slot: 0) == 4)  // tie keeps the given order
    }

    @Test func ordersExpertsByWeightHighestFirst() throws {
        let path = try JSONLFixtures.file(lines: [
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[2,5],"gating_probs":[0.3,0.7],"token_idx":0}"#
        ])
        let b = try #require(
            try JSONLFixtures.readAll(JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))).first
        )
        #expect(b.expert(token: 0, layer: 0, slot: 0) == 5)
        #expect(b.expert(token: 0, layer: 0, slot: 1) == 2)
        #expect(b.weight(token: 0, layer: 0, slot: 0) == Float(0.7))
        #expect(b.weight(token: 0, layer: 0, slot: 1) == Float(0.3))
    }

    @Test func infersShapeFromTheData() throws {
        let path = try JSONLFixtures.file(lines: [
            #"{"problem_id":0,"layer":0,"token_idx":0,"experts":[1,2,3],"gating_probs":[0.5,0.3,0.2]}"#,
            #"{"problem_id":0,"layer":3,"token_idx":0,"experts":[9,2,0],"gating_probs":[0.5,0.3,0.2]}"#,
            #"{"problem_id":1,"layer":1,"token_idx":0,"experts":[4,5,6],"gating_probs":[0.5,0.3,0.2]}"#,
        ])
        let reader = try JSONLTraceReader(path: path)
        #expect(reader.shapeWasInferred)
        #expect(reader.shape.layers == 4)
        #expect(reader.shape.experts == 10)
        #expect(reader.shape.topK == 3)
        #expect(try JSONLTraceReader.inferShape(paths: [path]) == reader.shape)
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(blocks.map(\.tokenCount).reduce(0, +) == 2)
        #expect(blocks.first?.expert(token: 0, layer: 3, slot: 0) == 9)
    }

    @Test func inferenceRejectsAChangingTopKInStrictModeAndIgnoresItLeniently() throws {
        let lines = [
            #"{"problem_id":0,"layer":0,"token_idx":0,"experts":[1,2],"gating_probs":[0.5,0.5]}"#,
            #"{"problem_id":0,"layer":1,"token_idx":0,"experts":[1,2,3],"gating_probs":[0.5,0.3,0.2]}"#,
        ]
        let path = try JSONLFixtures.file("k.jsonl", lines: lines)
        #expect {
            try JSONLTraceReader(path: path)
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .topKMismatch && e.line == 2 && e.description.contains("k.jsonl:2")
        }
        let lenient = try JSONLTraceReader(path: path, options: TraceReadOptions(lenient: true))
        #expect(lenient.shape.topK == 2)
        #expect(lenient.shape.layers == 1)
        _ = try JSONLFixtures.readAll(lenient)
        #expect(lenient.summary.skipped == [.topKMismatch: 1])
        #expect(lenient.recordsRead == 1)
    }

    @Test func statedShapeViolationsAreBadInput() throws {
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        try expectStrictError(
            [
                good,
                #"{"dataset":"d","problem_id":0,"layer":4,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#,
            ],
            kind: .layerOutOfRange,
            line: 2,
            phrase: "layer 4 is outside 0..<4 (L)"
        )
        try expectStrictError(
            [
                good,
                #"{"dataset":"d","problem_id":0,"layer":1,"experts":[1,8],"gating_probs":[0.6,0.4],"token_idx":0}"#,
            ],
            kind: .expertOutOfRange,
            line: 2,
            phrase: "expert id 8 is outside 0..<8 (E)"
        )
        try expectStrictError(
            [
                good,
                #"{"dataset":"d","problem_id":0,"layer":1,"experts":[1,2,3],"gating_probs":[0.5,0.3,0.2],"token_idx":0}"#,
            ],
            kind: .topKMismatch,
            line: 2,
            phrase: "record has 3 experts, but top-k is 2"
        )
    }

    /// One bad line per kind, each after a good line: (line, kind, phrase of the message).
    static let badLines: [(String, RecordIssue.Kind, String)] = [
        ("this is not json", .malformed, "expected a JSON object"),
        (
            #"{"dataset":"d","layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#, .malformed,
            "lacks 'problem_id'"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":"0","experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .malformed, "field 'layer' must be an integer"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4]}"#, .malformed,
            "lacks the token position"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1"#,
            .malformed, "expected ',' or '}'"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4,0.1],"token_idx":1}"#,
            .malformed, "'experts' holds 2 ids but 'gating_probs' holds 3 weights"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[-1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .expertOutOfRange, "expert id -1"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,99],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .expertOutOfRange, "expert id 99"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[NaN,0.4],"token_idx":1}"#,
            .invalidWeight, "weight NaN"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,-0.4],"token_idx":1}"#,
            .invalidWeight, "weight -0.4"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[Infinity,0.4],"token_idx":1}"#,
            .invalidWeight, "weight Infinity"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[1e39,0.4],"token_idx":1}"#,
            .invalidWeight, "weight 1e+39"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2,3],"gating_probs":[0.6,0.3,0.1],"token_idx":1}"#,
            .topKMismatch, "3 experts"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[3,3],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .duplicateExpert, "expert id 3 appears twice"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":9,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .layerOutOfRange, "layer 9"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[4,5],"gating_probs":[0.6,0.4],"token_idx":0}"#,
            .duplicateCell, "a second record for layer 0 of token 0 of problem 0 (d); the first is on line 1"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":1,"experts":[4,5],"gating_probs":[0.6,0.4],"token_idx":0,"phase":"prefill"}"#,
            .malformed, "has phase 'prefill' here but 'decode' on line 1"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1,"layer":2}"#,
            .malformed, "field 'layer' appears twice"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1,"token_id":1}"#,
            .malformed, "both 'token_idx' and 'token_id'"
        ),
        (
            #"{"dataset":"d","problem_id":1e3,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .malformed, "'problem_id' must hold integers"
        ),
        (
            #"{"dataset":"d","problem_id":99999999999999999999,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1}"#,
            .malformed, "too large"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1,"phase":"warmup"}"#,
            .malformed, "'phase' must be"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[],"gating_probs":[],"token_idx":1}"#, .malformed,
            "'experts' is empty"
        ),
        (
            #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":1} trailing"#,
            .malformed, "after the end of the record"
        ),
    ]

    @Test func eachBadInputKindThrowsInStrictModeNamingFileLineAndProblem() throws {
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        for (bad, kind, phrase) in Self.badLines {
            try expectStrictError([good, bad], kind: kind, line: 2, phrase: phrase)
        }
    }

    @Test func lenientModeSkipsAndCountsEachBadRecordByKind() throws {
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        let path = try JSONLFixtures.file(lines: [good] + Self.badLines.map(\.0))
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny, lenient: true))
        let blocks = try JSONLFixtures.readAll(reader)
        var expected: [RecordIssue.Kind: Int] = [:]
        for (_, kind, _) in Self.badLines { expected[kind, default: 0] += 1 }
        #expect(reader.summary.skipped == expected)
        #expect(reader.summary.skippedTotal == Self.badLines.count)
        #expect(reader.summary.examples.count == min(20, Self.badLines.count))
        #expect(reader.summary.examples.first?.contains("trace.jsonl:2: ") == true)
        #expect(reader.recordsRead == 1)
        #expect(blocks.map(\.tokenCount) == [1])
        #expect(blocks.first?.expert(token: 0, layer: 0, slot: 0) == 1)
    }

    @Test func nonContiguousProblemIsDetected() throws {
        func record(_ problem: Int, _ token: Int, _ domain: String = "gsm8k") -> String {
            #"{"dataset":"\#(domain)","problem_id":\#(problem),"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":\#(token)}"#
        }
        try expectStrictError(
            [record(3, 0), record(4, 0), record(3, 1, "humaneval"), record(3, 1)],
            kind: .nonContiguousProblem,
            line: 4,
            phrase:
                "records of problem 3 (gsm8k) resume at line 4 after other problems (sort the file by problem first, or read it with --interleaved (holds every problem in memory))"
        )
        let path = try JSONLFixtures.file(lines: [record(3, 0), record(4, 0), record(3, 1), record(3, 2), record(4, 1)])
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny, lenient: true))
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(reader.summary.skipped == [.nonContiguousProblem: 2])  // 3/1 and 3/2; 4/1 continues problem 4
        #expect(blocks.flatMap(\.problemID) == [3, 4, 4])
    }

    @Test func layerMajorAndTokenMajorOrdersGiveTheSameBlocks() throws {
        var layerMajor: [String] = []
        var tokenMajor: [String] = []
        func record(_ t: Int, _ l: Int) -> String {
            #"{"dataset":"d","problem_id":5,"layer":\#(l),"experts":[\#(l),\#((l + t + 1) % 8)],"gating_probs":[0.75,0.25],"token_idx":\#(t)}"#
        }
        for l in 0..<4 { for t in 0..<5 { layerMajor.append(record(t, l)) } }
        for t in 0..<5 { for l in 0..<4 { tokenMajor.append(record(t, l)) } }
        let shuffled = [2, 0, 4, 1, 3].flatMap { t in (0..<4).reversed().map { record(t, $0) } }
        let options = TraceReadOptions(shape: tiny)
        let a = try JSONLFixtures.readAll(
            JSONLTraceReader(path: JSONLFixtures.file(lines: layerMajor), options: options)
        )
        let b = try JSONLFixtures.readAll(
            JSONLTraceReader(path: JSONLFixtures.file(lines: tokenMajor), options: options)
        )
        let c = try JSONLFixtures.readAll(JSONLTraceReader(path: JSONLFixtures.file(lines: shuffled), options: options))
        #expect(a == b)
        #expect(a == c)
        #expect(a.first?.position == [0, 1, 2, 3, 4])
        #expect(a.first?.completeJourneyCount == 5)
    }

    @Test func splitsIntoBlocksOfAboutBlockTokens() throws {
        var lines: [String] = []
        for p in 0..<2 {
            for t in 0..<(p == 0 ? 4 : 3) {
                lines.append(
                    #"{"dataset":"d","problem_id":\#(p),"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":\#(t)}"#
                )
            }
        }
        let reader = try JSONLTraceReader(
            path: JSONLFixtures.file(lines: lines),
            options: TraceReadOptions(shape: tiny, blockTokens: 3)
        )
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(blocks.map(\.tokenCount) == [3, 3, 1])
        #expect(blocks.flatMap(\.problemID) == [0, 0, 0, 0, 1, 1, 1])
        #expect(blocks.flatMap(\.position) == [0, 1, 2, 3, 0, 1, 2])
        #expect(try reader.nextBlock() == nil)
    }

    @Test func blankLinesCRLFAndMissingFinalNewlineAreFine() throws {
        let a = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        let b = #"{"dataset":"d","problem_id":0,"layer":1,"experts":[3,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        let text = "\u{FEFF}\n\r\n   \t\n" + a + "\r\n\r\n" + b
        let reader = try JSONLTraceReader(
            path: JSONLFixtures.file(bytes: Array(text.utf8)),
            options: TraceReadOptions(shape: tiny)
        )
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(reader.recordsRead == 2)
        #expect(reader.linesRead == 6)
        #expect(blocks.first?.expert(token: 0, layer: 1, slot: 0) == 3)
    }

    @Test func emptyFileGivesNoBlocksOrAClearInferenceError() throws {
        let path = try JSONLFixtures.file("empty.jsonl", bytes: [])
        #expect(try JSONLFixtures.readAll(JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))).isEmpty)
        #expect {
            try JSONLTraceReader(path: path)
        } throws: { error in
            "\(error)".contains("empty.jsonl") && "\(error)".contains("no routing records to infer the model shape")
        }
    }

    @Test func missingFileIsAClearError() throws {
        let path = try JSONLFixtures.directory().appendingPathComponent("nope.jsonl").path
        #expect {
            try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny))
        } throws: { error in
            (error as? TraceFileError)?.description == "\(path): cannot open for reading: No such file or directory"
        }
        let dir = try JSONLFixtures.directory().path
        #expect(throws: TraceFileError.self) { try JSONLTraceReader(path: dir, options: TraceReadOptions(shape: tiny)) }
    }

    @Test func garbageNeverCrashesOrHangs() throws {
        var rng = SeededRandom(seed: 42)
        var bytes: [UInt8] = []
        // Random binary lines, invalid UTF-8, NULs, deep nesting, huge numbers, cut-off records.
        for _ in 0..<300 {
            for _ in 0..<Int(rng.next() % 200) {
                let b = UInt8(truncatingIfNeeded: rng.next())
                bytes.append(b == 0x0A ? 0x0B : b)
            }
            bytes.append(0x0A)
        }
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        var specials: [[UInt8]] = [
            Array(#"{"dataset":"\#u{FF}","problem_id":0}"#.utf8),
            [0x7B, 0x22, 0x64, 0x61, 0x74, 0x61, 0x73, 0x65, 0x74, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D],
            Array(("{\"x\":" + String(repeating: "[", count: 100_000)).utf8),
            Array(("{\"x\":" + String(repeating: "{\"a\":", count: 5000)).utf8),
            Array(#"{"problem_id":1\#(String(repeating: "9", count: 5000)),"layer":0}"#.utf8),
            Array(
                #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.\#(String(repeating: "1", count: 3000)),1e-999999999999],"token_idx":0}"#
                    .utf8
            ),
            Array(
                #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[4.9e-324,1e400],"token_idx":0}"#
                    .utf8
            ),
            Array(#"{"dataset":"a\u00"#.utf8),
            Array(#"{"dataset":"d\"#.utf8),
            [0x7B, 0x00, 0x7D],
            Array("{\"dataset\":\"d\0\"}".utf8),
        ]
        for cut in stride(from: 0, to: good.utf8.count, by: 7) { specials.append(Array(good.utf8.prefix(cut))) }
        for s in specials { bytes += s + [0x0A] }
        // Random single-byte mutations of a good record.
        for _ in 0..<400 {
            var line = Array(good.utf8)
            for _ in 0..<3 {
                line[Int(rng.next() % UInt64(line.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            bytes += line.filter { $0 != 0x0A } + [0x0A]
        }
        bytes += Array(good.utf8)
        let path = try JSONLFixtures.file(bytes: bytes)
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny, lenient: true))
        _ = try JSONLFixtures.readAll(reader)
        #expect(reader.recordsRead >= 1)
        #expect(reader.summary.skippedTotal > 650)
        #expect(reader.linesRead == 300 + specials.count + 400 + 1)
        // Strict mode stops at the first bad line with a TraceError, not a crash.
        #expect(throws: TraceError.self) {
            _ = try JSONLFixtures.readAll(JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny)))
        }
        // Inference in lenient mode ignores the garbage.
        let inferred = try JSONLTraceReader(path: path, options: TraceReadOptions(lenient: true))
        #expect(inferred.shape.topK == 2)
    }

    @Test func lineLongerThan64MiBIsSkippedAsMalformed() throws {
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        var bytes = [UInt8](repeating: UInt8(ascii: " "), count: (64 << 20) + 10)
        bytes[0] = UInt8(ascii: "{")
        bytes.append(0x0A)
        bytes += Array(good.utf8)
        let path = try JSONLFixtures.file(bytes: bytes)
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: tiny, lenient: true))
        let blocks = try JSONLFixtures.readAll(reader)
        #expect(reader.summary.skipped == [.malformed: 1])
        #expect(reader.summary.examples.first?.contains("trace.jsonl:1: line is longer than 64 MiB") == true)
        #expect(blocks.map(\.tokenCount) == [1])
        try? FileManager.default.removeItem(atPath: path)
    }

    @Test func readsSeveralFilesAsOneStreamWithOneShape() throws {
        func record(_ d: String, _ p: Int, _ l: Int, _ t: Int, _ e: Int) -> String {
            #"{"dataset":"\#(d)","problem_id":\#(p),"layer":\#(l),"experts":[\#(e),0],"gating_probs":[0.6,0.4],"token_idx":\#(t)}"#
        }
        let a = try JSONLFixtures.file("a.jsonl", lines: [record("gsm8k", 0, 0, 0, 1), record("gsm8k", 0, 1, 0, 2)])
        let b = try JSONLFixtures.file(
            "b.jsonl",
            lines: [record("gsm8k", 1, 3, 0, 11), record("humaneval", 0, 0, 0, 4)]
        )
        #expect(try JSONLTraceReader.inferShape(paths: [a, b]) == ModelShape(layers: 4, experts: 12, topK: 2))
        let reader = try JSONLTraceReader(paths: [a, b])
        #expect(reader.shape == (try ModelShape(layers: 4, experts: 12, topK: 2)))
        let tokens = JSONLFixtures.tokens(try JSONLFixtures.readAll(reader)).map(\.0.description)
        #expect(tokens == ["gsm8k/0/0", "gsm8k/1/0", "humaneval/0/0"])
        #expect(reader.domains == ["gsm8k", "humaneval"])
        #expect(reader.recordsRead == 4)

        let c = try JSONLFixtures.file("c.jsonl", lines: [record("gsm8k", 0, 2, 0, 3)])
        #expect {
            _ = try JSONLFixtures.readAll(JSONLTraceReader(paths: [a, c], options: TraceReadOptions(shape: tiny)))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .nonContiguousProblem && e.path == c && e.line == 1
                && e.description.contains("problem 0 (gsm8k)") && e.description.contains("already read from \(a)")
        }
    }

    // MARK: - Real data

    /// Independent counts from a naive Foundation parse: records, tokens, incomplete journeys.
    private func naiveCounts(_ path: String) throws -> (records: Int, tokens: Int, incomplete: Int, layers: Int) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var cells: [String: Set<Int>] = [:]
        var maxLayer = 0
        var records = 0
        for line in text.split(separator: "\n") where !line.isEmpty {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let layer = try #require(obj["layer"] as? Int)
            let key = "\(obj["dataset"] ?? "")/\(obj["problem_id"] ?? "")/\(obj["token_idx"] ?? "")"
            cells[key, default: []].insert(layer)
            maxLayer = max(maxLayer, layer)
            records += 1
        }
        let incomplete = cells.values.filter { $0.count < maxLayer + 1 }.count
        return (records, cells.count, incomplete, maxLayer + 1)
    }

    @Test(
        .enabled(if: JSONLFixtures.sharedData(JSONLFixtures.humaneval) != nil, "shared data ../shared/data is absent")
    )
    func readsTheRealTraces() throws {
        for (name, expectedRecords) in [(JSONLFixtures.humaneval, 10779), (JSONLFixtures.gsm8k, 7889)] {
            let path = try #require(JSONLFixtures.sharedData(name))
            let naive = try naiveCounts(path)
            #expect(naive.records == expectedRecords)
            let reader = try JSONLTraceReader(path: path)
            #expect(reader.shape == (try ModelShape(layers: 32, experts: 8, topK: 2)))
            var stats = StreamStatistics()
            for block in try JSONLFixtures.readAll(reader) { stats.add(block) }
            #expect(reader.recordsRead == expectedRecords)
            #expect(stats.records == expectedRecords)
            #expect(stats.tokens == naive.tokens)
            #expect(stats.incompleteJourneys == naive.incomplete)
            #expect(reader.summary.skippedTotal == 0)
            print(
                "\(name): \(stats.records) records, \(stats.tokens) tokens, \(stats.incompleteJourneys) incomplete journeys"
            )
        }
        let both = try JSONLTraceReader(
            paths: [JSONLFixtures.humaneval, JSONLFixtures.gsm8k].compactMap(JSONLFixtures.sharedData)
        )
        var stats = StreamStatistics()
        for block in try JSONLFixtures.readAll(both) { stats.add(block) }
        #expect(stats.records == 10779 + 7889)
        #expect(both.domains == ["humaneval", "gsm8k"])
    }
}
