// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

/// Reading JSONL traces whose problems' records interleave (``TraceReadOptions/interleavedProblems``).
struct JSONLInterleavedTests {
    /// One problem of the fixture: its tokens' positions in the order they are written.
    struct Problem {
        var domain: String
        var id: Int
        var positions: [Int]
    }

    /// Three problems over two domains; humaneval/7 writes its tokens in reverse order, gsm8k/1
    /// lacks layer 3 of its token 2.
    static let problems = [
        Problem(domain: "gsm8k", id: 1, positions: [0, 1, 2, 3, 4]),
        Problem(domain: "humaneval", id: 7, positions: [2, 1, 0]),
        Problem(domain: "gsm8k", id: 0, positions: [0, 1, 2, 3]),
    ]

    static let tiny = ModelShape.tinyMixtral

    /// One record, with phase, vocabulary id and step; weights alternate in order so the reader's
    /// sort by weight matters.
    static func record(_ p: Problem, _ position: Int, _ layer: Int, step: Int? = nil) -> String {
        let e1 = (p.id * 3 + position + layer) % 8
        let e2 = (e1 + 1 + layer) % 8
        let weights = (position + layer) % 2 == 0 ? "[0.7,0.3]" : "[0.25,0.75]"
        let phase = position < 2 ? "prefill" : "decode"
        let s = step ?? (position < 2 ? 10 : 10 + position)
        return
            #"{"dataset":"\#(p.domain)","problem_id":\#(p.id),"layer":\#(layer),"experts":[\#(e1),\#(e2)],"gating_probs":\#(weights),"token_idx":\#(position),"phase":"\#(phase)","token":\#(100 * p.id + position),"step":\#(s)}"#
    }

    /// All records of one token (layers 0..<4, minus the fixture's missing cell).
    static func token(_ p: Problem, _ position: Int) -> [String] {
        (0..<4).filter { !(p.id == 1 && position == 2 && $0 == 3) }.map { record(p, position, $0) }
    }

    /// Each problem's records together, problem after problem.
    static var sortedLines: [String] {
        problems.flatMap { p in p.positions.flatMap { token(p, $0) } }
    }

    /// The records of the three problems round-robin by token: token i of every problem, then
    /// token i + 1, ...
    static var interleavedLines: [String] {
        let rounds = problems.map(\.positions.count).max() ?? 0
        return (0..<rounds).flatMap { i in
            problems.flatMap { p in i < p.positions.count ? token(p, p.positions[i]) : [] }
        }
    }

    static func options(
        shape: ModelShape? = tiny,
        lenient: Bool = false,
        blockTokens: Int = 4,
        interleaved: Bool
    ) -> TraceReadOptions {
        TraceReadOptions(shape: shape, lenient: lenient, blockTokens: blockTokens, interleavedProblems: interleaved)
    }

    static func read(_ paths: [String], _ options: TraceReadOptions) throws -> (JSONLTraceReader, [RoutingBlock]) {
        let reader = try JSONLTraceReader(paths: paths, options: options)
        return (reader, try JSONLFixtures.readAll(reader))
    }

    // MARK: - Same blocks as the sorted file

    @Test func interleavedFileGivesTheSameBlocksAsTheSortedFile() throws {
        let sortedPath = try JSONLFixtures.file("sorted.jsonl", lines: Self.sortedLines)
        let (sortedReader, sorted) = try Self.read([sortedPath], Self.options(interleaved: false))
        // By construction: 5 + 3 + 4 tokens, problems in first-appearance order, 4 tokens a block.
        #expect(sorted.map(\.tokenCount) == [4, 4, 4])
        #expect(sorted.flatMap(\.problemID) == [1, 1, 1, 1, 1, 7, 7, 7, 0, 0, 0, 0])
        #expect(sorted.flatMap(\.position) == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3])
        #expect(sortedReader.recordsRead == 12 * 4 - 1)

        let lines = Self.interleavedLines
        #expect(lines.count == Self.sortedLines.count)
        #expect(lines[4].contains(#""problem_id":7"#))  // really interleaved: problem 7 follows token 0 of problem 1
        let path = try JSONLFixtures.file("interleaved.jsonl", lines: lines)
        let (reader, blocks) = try Self.read([path], Self.options(interleaved: true))
        #expect(blocks == sorted)
        #expect(reader.recordsRead == sortedReader.recordsRead)
        #expect(reader.tokensRead == 12)
        #expect(reader.domains == ["gsm8k", "humaneval"])
        #expect(reader.summary.skippedTotal == 0)

        // Across two files, every problem split between them.
        let half = lines.count / 2
        let a = try JSONLFixtures.file("a.jsonl", lines: Array(lines[..<half]))
        let b = try JSONLFixtures.file("b.jsonl", lines: Array(lines[half...]))
        let (twoReader, two) = try Self.read([a, b], Self.options(interleaved: true))
        #expect(two == sorted)
        #expect(twoReader.recordsRead == sortedReader.recordsRead)

        // Block size does not change the tokens, only how they are cut.
        let (_, whole) = try Self.read([a, b], Self.options(blockTokens: 8192, interleaved: true))
        #expect(whole.map(\.tokenCount) == [12])
        #expect(JSONLFixtures.tokens(whole).map(\.0) == JSONLFixtures.tokens(sorted).map(\.0))
        #expect(JSONLFixtures.tokens(whole).map(\.1) == JSONLFixtures.tokens(sorted).map(\.1))
    }

    @Test func contiguousFilesReadTheSameBothWays() throws {
        // Token-major (the sorted fixture) and layer-major, with block sizes that split problems.
        let layerMajor = Self.problems.flatMap { p in
            (0..<4).flatMap { l in
                p.positions.filter { !(p.id == 1 && $0 == 2 && l == 3) }.map { Self.record(p, $0, l) }
            }
        }
        // And split into two files at a problem boundary (problem 1 has 19 records).
        let a = try JSONLFixtures.file("a.jsonl", lines: Array(Self.sortedLines[..<19]))
        let b = try JSONLFixtures.file("b.jsonl", lines: Array(Self.sortedLines[19...]))
        let inputs = [
            [try JSONLFixtures.file(lines: Self.sortedLines)], [try JSONLFixtures.file(lines: layerMajor)], [a, b],
        ]
        for paths in inputs {
            for blockTokens in [1, 3, 4, 5, 8192] {
                let (r1, streamed) = try Self.read(paths, Self.options(blockTokens: blockTokens, interleaved: false))
                let (r2, held) = try Self.read(paths, Self.options(blockTokens: blockTokens, interleaved: true))
                #expect(held == streamed, "block tokens \(blockTokens)")
                #expect(r1.recordsRead == r2.recordsRead)
                #expect(r1.domains == r2.domains)
            }
        }
    }

    @Test(
        .enabled(if: JSONLFixtures.sharedData(JSONLFixtures.humaneval) != nil, "shared data ../shared/data is absent")
    )
    func sharedTracesReadTheSameBothWays() throws {
        let paths = [JSONLFixtures.humaneval, JSONLFixtures.gsm8k].compactMap(JSONLFixtures.sharedData)
        #expect(paths.count == 2)
        let (_, streamed) = try Self.read(paths, TraceReadOptions(blockTokens: 100))
        let (_, held) = try Self.read(paths, TraceReadOptions(blockTokens: 100, interleavedProblems: true))
        #expect(streamed.count > 1)
        #expect(held == streamed)
    }

    @Test func problemsComeOutInOrderOfFirstAppearance() throws {
        // 1500 problems, first seen in a scrambled order, three tokens each, round-robin.
        let ids = (0..<1500).map { ($0 * 7919) % 1500 }
        #expect(Set(ids).count == 1500)
        var lines: [String] = []
        for position in 0..<3 {
            for id in ids {
                let p = Problem(domain: "d", id: id, positions: [])
                lines.append(Self.record(p, position, position))
            }
        }
        let path = try JSONLFixtures.file(lines: lines)
        let (reader, blocks) = try Self.read([path], Self.options(blockTokens: 8192, interleaved: true))
        #expect(blocks.map(\.tokenCount) == [4500])
        #expect(blocks.flatMap(\.problemID) == ids.flatMap { [Int64($0), Int64($0), Int64($0)] })
        #expect(blocks.flatMap(\.position) == ids.flatMap { _ in [Int32(0), 1, 2] })
        #expect(reader.recordsRead == 4500)
    }

    // MARK: - Without the option

    @Test func withoutTheOptionStrictModeNamesTheOptionAndLenientModeSkips() throws {
        let lines = Self.interleavedLines
        let path = try JSONLFixtures.file("interleaved.jsonl", lines: lines)
        // Lines 1-4 are token 0 of problem 1, 5-8 token 2 of problem 7, 9-12 token 0 of
        // problem 0, and line 13 resumes problem 1.
        #expect {
            _ = try Self.read([path], Self.options(interleaved: false))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .nonContiguousProblem && e.line == 13
                && e.description.hasSuffix(
                    "records of problem 1 (gsm8k) resume at line 13 after other problems (sort the file by problem first, or read it with --interleaved (holds every problem in memory))"
                )
                && !e.description.contains("\n")
        }

        // Lenient: problem 1 and problem 7 keep their first token; problem 0, current from line
        // 9 on, keeps all of its; every later record of problems 1 and 7 is skipped.
        let (reader, blocks) = try Self.read([path], Self.options(lenient: true, interleaved: false))
        let kept = 4 + 4 + 4 * 4
        #expect(reader.recordsRead == kept)
        #expect(reader.summary.skipped == [.nonContiguousProblem: lines.count - kept])
        #expect(blocks.flatMap(\.problemID) == [1, 7, 0, 0, 0, 0])
        #expect(blocks.flatMap(\.position) == [0, 2, 0, 1, 2, 3])
    }

    @Test func aProblemSpanningTwoFilesIsOneProblemOnlyWithTheOption() throws {
        let lines = Self.sortedLines
        // Problem 1, tokens 0-2 (one cell missing).
        let a = try JSONLFixtures.file("a.jsonl", lines: Array(lines[..<10]))
        let b = try JSONLFixtures.file("b.jsonl", lines: Array(lines[10...]))
        #expect {
            _ = try Self.read([a, b], Self.options(interleaved: false))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .nonContiguousProblem && e.path == b && e.line == 1
                && e.description.contains("already read from \(a)")
                && e.description.contains(
                    "(keep each problem's records in one file, or read them with --interleaved (holds every problem in memory))"
                )
        }
        let whole = try JSONLFixtures.file(lines: lines)
        let (_, expected) = try Self.read([whole], Self.options(interleaved: false))
        let (_, split) = try Self.read([a, b], Self.options(interleaved: true))
        // The same tokens and cells in the same blocks; only the domain tables may differ, which
        // grow as the domains are met (humaneval first appears in b.jsonl here).
        #expect(split.map(\.tokenCount) == expected.map(\.tokenCount))
        #expect(JSONLFixtures.tokens(split).map(\.0) == JSONLFixtures.tokens(expected).map(\.0))
        #expect(JSONLFixtures.tokens(split).map(\.1) == JSONLFixtures.tokens(expected).map(\.1))
        #expect(split.map(\.domains) == [["gsm8k"], ["gsm8k", "humaneval"], ["gsm8k", "humaneval"]])
        #expect(expected.map(\.domains) == [["gsm8k", "humaneval"], ["gsm8k", "humaneval"], ["gsm8k", "humaneval"]])
    }

    // MARK: - Checks that stay

    @Test func aDuplicateRecordAcrossChunksIsCaught() throws {
        let p = Self.problems[0]
        let other = Self.problems[1]
        // Problem 1 token 0 layer 2 on line 3, again on line 5 after problem 7's record.
        let lines = [
            Self.record(p, 0, 0), Self.record(p, 0, 1), Self.record(p, 0, 2),
            Self.record(other, 0, 0),
            Self.record(p, 0, 2),
            Self.record(other, 0, 1),
        ]
        let path = try JSONLFixtures.file("dup.jsonl", lines: lines)
        #expect {
            _ = try Self.read([path], Self.options(interleaved: true))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .duplicateCell && e.line == 5 && e.path == path
                && e.description.contains(
                    "a second record for layer 2 of token 0 of problem 1 (gsm8k); the first is on line 3"
                )
        }
        let (reader, blocks) = try Self.read([path], Self.options(lenient: true, interleaved: true))
        #expect(reader.summary.skipped == [.duplicateCell: 1])
        #expect(reader.recordsRead == 5)
        var clean = lines
        clean.remove(at: 4)
        let (_, expected) = try Self.read([try JSONLFixtures.file(lines: clean)], Self.options(interleaved: true))
        #expect(blocks == expected)

        // Across files, the message names the file of the first record.
        let a = try JSONLFixtures.file("a.jsonl", lines: Array(lines[..<4]))
        let b = try JSONLFixtures.file("b.jsonl", lines: Array(lines[4...]))
        #expect {
            _ = try Self.read([a, b], Self.options(interleaved: true))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .duplicateCell && e.path == b && e.line == 1
                && e.description.contains("the first is on line 3 of \(a)")
        }
    }

    @Test func aTokensMetadataMustAgreeAcrossChunks() throws {
        let p = Self.problems[0]
        let other = Self.problems[2]
        let lines = [
            Self.record(p, 3, 0), Self.record(other, 0, 0), Self.record(p, 3, 1, step: 99), Self.record(other, 0, 1),
        ]
        let path = try JSONLFixtures.file(lines: lines)
        #expect {
            _ = try Self.read([path], Self.options(interleaved: true))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .malformed && e.line == 3
                && e.description.contains("token 3 of problem 1 (gsm8k) has 'step' 99 here but 'step' 13 on line 1")
        }
        let (reader, blocks) = try Self.read([path], Self.options(lenient: true, interleaved: true))
        #expect(reader.summary.skipped == [.malformed: 1])
        #expect(blocks.flatMap(\.problemID) == [1, 0])
        #expect(blocks.first?.step == [13, 10])
    }

    @Test func shapeChecksStayInBothModes() throws {
        // A third expert: a record of another model.
        var lines = Self.interleavedLines
        lines[5] = lines[5].replacingOccurrences(of: #""experts":["#, with: #""experts":[9,"#)
            .replacingOccurrences(of: #""gating_probs":["#, with: #""gating_probs":[0.5,"#)
        let path = try JSONLFixtures.file(lines: lines)
        #expect {
            _ = try Self.read([path], Self.options(interleaved: true))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .topKMismatch && e.line == 6
        }
        // The first expert id replaced: two experts, one out of range.
        var badExpert = Self.interleavedLines
        badExpert[5] = badExpert[5].replacingOccurrences(
            of: #""experts":\[[0-9]+,"#,
            with: #""experts":[9,"#,
            options: .regularExpression
        )
        let bad = try JSONLFixtures.file(lines: badExpert)
        #expect {
            _ = try Self.read([bad], Self.options(interleaved: true))
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.issue.kind == .expertOutOfRange && e.line == 6
                && e.description.contains("expert id 9 is outside 0..<8 (E)")
        }
        let (reader, blocks) = try Self.read([bad], Self.options(lenient: true, interleaved: true))
        #expect(reader.summary.skipped == [.expertOutOfRange: 1])
        #expect(reader.recordsRead == 12 * 4 - 2)
        #expect(blocks.reduce(0) { $0 + $1.tokenCount } == 12)
    }

    // MARK: - Edge cases

    @Test func emptyInputGivesNoBlocks() throws {
        let empty = try JSONLFixtures.file(bytes: [])
        let blank = try JSONLFixtures.file(lines: ["", "  ", ""])
        for paths in [[empty], [blank, empty], []] {
            let (reader, blocks) = try Self.read(paths, Self.options(interleaved: true))
            #expect(blocks.isEmpty)
            #expect(reader.recordsRead == 0)
            #expect(try reader.nextBlock() == nil)
        }
        // Nothing to infer a shape from, as without the option.
        #expect(throws: TraceError.self) { _ = try Self.read([empty], Self.options(shape: nil, interleaved: true)) }
    }

    @Test func theShapePrePassReadsInterleavedFiles() throws {
        let lines = Self.interleavedLines
        let half = lines.count / 2
        let a = try JSONLFixtures.file("a.jsonl", lines: Array(lines[..<half]))
        let b = try JSONLFixtures.file("b.jsonl", lines: Array(lines[half...]))
        let (reader, blocks) = try Self.read([a, b], Self.options(shape: nil, interleaved: true))
        #expect(reader.shapeWasInferred)
        #expect(reader.shape.layers == 4 && reader.shape.experts == 8 && reader.shape.topK == 2)
        let sorted = try JSONLFixtures.file(lines: Self.sortedLines)
        let (_, expected) = try Self.read([sorted], Self.options(shape: nil, interleaved: false))
        #expect(blocks == expected)
    }
}
