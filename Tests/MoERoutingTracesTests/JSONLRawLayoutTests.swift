// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

/// The seed's raw per-step capture (token_pos is the row within a forward batch, so decode rows
/// reuse 0), `--positions by-order`, and the evidence behind an inferred shape.
struct JSONLRawLayoutTests {
    typealias F = JSONLFixtures

    /// A raw capture of one problem, step-major as the seed wrote it: a prefill batch of
    /// `prompt` rows (token_pos 0..<prompt), then `steps` decode batches of one row (token_pos 0),
    /// each for `layers` layers. Token n (in order) routes to experts (n % 8, (n + 1) % 8) at
    /// every layer with weights 0.7, 0.3.
    static func rawCapture(prompt: Int, steps: Int, layers: Int = 2, problem: Int = 0) -> [String] {
        var lines: [String] = []
        var n = 0
        func rows(_ count: Int) {
            for l in 0..<layers {
                for r in 0..<count {
                    let t = n + r
                    lines.append(
                        #"{"dataset": "raw", "problem_id": \#(problem), "layer": \#(l), "experts": [\#(t % 8), \#((t + 1) % 8)], "gating_probs": [0.7, 0.3], "token_pos": \#(r)}"#
                    )
                }
            }
            n += count
        }
        rows(prompt)
        for _ in 0..<steps { rows(1) }
        return lines
    }

    @Test func strictReadingOfTheRawLayoutNamesItAndTheFix() throws {
        let path = try F.file(lines: Self.rawCapture(prompt: 5, steps: 3))
        do {
            _ = try F.readAll(
                try JSONLTraceReader(
                    path: path,
                    options: TraceReadOptions(shape: .init(layers: 2, experts: 8, topK: 2))
                )
            )
            Issue.record("the raw layout must not read silently as written")
        } catch let e as TraceError {
            // Line 11 is the first decode row (after 5 prompt rows at each of 2 layers).
            #expect(e.line == 11)
            #expect(e.issue.kind == .duplicateCell)
            #expect(e.description.contains("this looks like the seed's raw per-step layout"), "\(e)")
            #expect(e.description.contains("--positions by-order"))
        }
    }

    @Test func lenientReadingCountsTheRestartsInsteadOfHidingThem() throws {
        let path = try F.file(lines: Self.rawCapture(prompt: 5, steps: 3))
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(lenient: true))
        let blocks = try F.readAll(reader)
        #expect(blocks.reduce(0) { $0 + $1.tokenCount } == 5)  // only the prompt survives as written
        #expect(reader.summary.skipped == [.duplicateCell: 6])
        #expect(reader.summary.restartedPositions == 6)
    }

    @Test func byOrderReadsTheRawLayoutAsWholeProblems() throws {
        let path = try F.file(
            lines: Self.rawCapture(prompt: 5, steps: 3) + Self.rawCapture(prompt: 2, steps: 2, problem: 1)
        )
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(positions: .byOrder))
        let blocks = try F.readAll(reader)
        #expect(reader.summary.skippedTotal == 0)
        #expect(blocks.count == 1)
        let b = try #require(blocks.first)
        #expect(b.tokenCount == 8 + 4)
        #expect(b.problemID == [Int64](repeating: 0, count: 8) + [Int64](repeating: 1, count: 4))
        #expect(b.position.map(Int.init) == Array(0..<8) + Array(0..<4))
        #expect(b.completeJourneyCount == 12)
        for t in 0..<8 {
            for l in 0..<2 {
                #expect(b.expert(token: t, layer: l, slot: 0) == t % 8)
                #expect(b.expert(token: t, layer: l, slot: 1) == (t + 1) % 8)
            }
        }
        #expect(b.expert(token: 8 + 3, layer: 1, slot: 0) == 3)
    }

    @Test func byOrderIgnoresWrittenPositionsOfOrdinaryFilesInLayerMajorOrder() throws {
        // The shared data's layer-major order with token_idx already right reads the same either way.
        let lines = (0..<2).flatMap { l in
            (0..<4).map { t in
                #"{"problem_id": 0, "layer": \#(l), "experts": [\#(t), 7], "gating_probs": [0.6, 0.4], "token_idx": \#(t)}"#
            }
        }
        let path = try F.file(lines: lines)
        let a = try F.readAll(try JSONLTraceReader(path: path))
        let b = try F.readAll(try JSONLTraceReader(path: path, options: TraceReadOptions(positions: .byOrder)))
        #expect(a == b)
    }

    @Test func inferredShapeComesWithItsEvidence() throws {
        // 3 layers, ids 0..7, except one stray 8 on line 4.
        var lines: [String] = []
        for t in 0..<10 {
            for l in 0..<3 {
                let first = t == 1 && l == 0 ? 8 : (t + l) % 8
                lines.append(
                    #"{"problem_id": 0, "layer": \#(l), "experts": [\#(first), \#((t + l + 1) % 8)], "gating_probs": [0.6, 0.4], "token_idx": \#(t)}"#
                )
            }
        }
        let path = try F.file(lines: lines)
        let reader = try JSONLTraceReader(path: path)
        #expect(reader.shape.experts == 9)
        let e = try #require(reader.shapeEvidence)
        #expect(e.records == 30)
        #expect(e.highestExpert == 8 && e.highestExpertRecords == 1)
        #expect(e.highestLayer == 2 && e.highestLayerRecords == 10)
        #expect(!e.highestExpertLooksStray)  // 1 of 30 is more than 1 %
        let line = e.explanation(reader.shape)
        #expect(
            line.hasPrefix(
                "L=3 (highest layer 2 in 10 of 30 rows), E=9 (highest expert id 8 used in 1 of 30 rows), k=2 (the expert count of the first record, \(path):1)"
            ),
            "\(line)"
        )

        // With 200 tokens the stray id is under 1 % of the rows: the line says how to state the shape.
        let many = (0..<200).flatMap { t in
            (0..<3).map { l in
                let first = t == 1 && l == 0 ? 8 : (t + l) % 8
                return
                    #"{"problem_id": 0, "layer": \#(l), "experts": [\#(first), \#((t + l + 1) % 8)], "gating_probs": [0.6, 0.4], "token_idx": \#(t)}"#
            }
        }
        let big = try JSONLTraceReader(path: try F.file(lines: many))
        let advice = try #require(big.shapeEvidence).explanation(big.shape)
        #expect(
            advice.contains(
                "E=9 (highest expert id 8 used in 1 of 600 rows; state --layers 3 --experts 8 --top-k 2 if that is a stray id)"
            ),
            "\(advice)"
        )
        // Stated, the stray id is an error naming its line.
        do {
            _ = try F.readAll(
                try JSONLTraceReader(
                    path: try F.file(lines: many),
                    options: TraceReadOptions(shape: .init(layers: 3, experts: 8, topK: 2))
                )
            )
            Issue.record("id 8 with E = 8 must not read")
        } catch let error as TraceError {
            #expect(error.line == 4)
            #expect(error.issue.kind == .expertOutOfRange)
            #expect(error.description.contains("expert id 8 is outside 0..<8 (E)"))
        }
        #expect(
            try JSONLTraceReader(path: path, options: TraceReadOptions(shape: .init(layers: 3, experts: 9, topK: 2)))
                .shapeEvidence == nil
        )
    }
}
