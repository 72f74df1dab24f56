// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import MoERoutingTestKit
import Testing

private final class ArraySource: RoutingBlockSource {
    let shape: ModelShape
    var blocks: [RoutingBlock]
    init(_ blocks: [RoutingBlock]) {
        shape = blocks[0].shape
        self.blocks = blocks
    }
    func nextBlock() throws -> RoutingBlock? { blocks.isEmpty ? nil : blocks.removeFirst() }
}

private final class CollectingSink: RoutingBlockSink {
    var tokens = 0
    var closed = false
    func write(_ block: RoutingBlock) throws { tokens += block.tokenCount }
    func close() throws { closed = true }
}

/// Records the token counts of the blocks it consumes, and throws on block `failsAt`.
private final class FailsAtBlock: RoutingAnalyzer {
    let name: String
    let failsAt: Int?
    var seen: [Int] = []
    init(_ name: String, failsAt: Int? = nil) {
        self.name = name
        self.failsAt = failsAt
    }
    func begin(_ context: AnalysisContext) throws {}
    func consume(_ block: RoutingBlock) throws {
        if seen.count == failsAt { throw RoutingError.analyzerFailed(name: name, message: "block \(seen.count)") }
        seen.append(block.tokenCount)
    }
    func merge(_ other: any RoutingAnalyzer) throws {}
    func finish() throws -> AnalyzerReport {
        AnalyzerReport(analyzer: name, title: name, json: .array(seen.map { .int($0) }))
    }
}

struct DispatchTests {
    @Test func failingAnalyzerIsDroppedOthersAndSinksGoOn() throws {
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 1)
        let blocks = (0..<3).map { _ in gen.makeBlock(problems: 2, tokensPerProblem: 5, domain: "d") }
        let good = RecordingAnalyzer(name: "good")
        let bad = RecordingAnalyzer(name: "bad", failAt: "consume")
        let mux = MultiplexAnalyzer([bad, good])
        let sink = CollectingSink()
        let dispatcher = AnalysisDispatcher(analyzers: mux, sinks: [sink])
        try dispatcher.run(source: ArraySource(blocks), context: AnalysisContext(shape: .tinyMixtral))
        let (reports, failures) = mux.finishAll()
        #expect(reports.map(\.analyzer) == ["good"])
        #expect(reports[0].json["tokens"] == .int(30))
        #expect(failures.count == 1)
        #expect(failures[0].analyzer == "bad" && failures[0].stage == "consume")
        #expect(failures[0].description.contains("told to fail in consume"))
        #expect(sink.tokens == 30 && sink.closed)
        #expect(dispatcher.statistics.tokens == 30)
        #expect(dispatcher.statistics.records == 30 * 4)
        #expect(dispatcher.statistics.completeJourneys == 30)
    }

    @Test func failureInFinishIsReported() {
        let mux = MultiplexAnalyzer([RecordingAnalyzer(name: "a"), RecordingAnalyzer(name: "b", failAt: "finish")])
        let (reports, failures) = mux.finishAll()
        #expect(reports.map(\.analyzer) == ["a"])
        #expect(failures.map(\.stage) == ["finish"])
    }

    /// Parallel and serial multiplexers give the same reports and failures, in the order the
    /// analyzers were given, whatever order the workers finish in.
    @Test func parallelMultiplexMatchesSerial() throws {
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 4)
        let blocks = (0..<6).map { gen.makeBlock(problems: 2, tokensPerProblem: 7, domain: $0 % 2 == 0 ? "a" : "b") }
        func run(
            _ concurrency: MultiplexAnalyzer.Concurrency
        ) throws -> ([AnalyzerReport], [AnalyzerFailure], Set<String>) {
            let mux = MultiplexAnalyzer(
                [
                    RecordingAnalyzer(name: "r1"), RecordingAnalyzer(name: "bad", failAt: "consume"),
                    RecordingAnalyzer(name: "r2"), RecordingAnalyzer(name: "late", failAt: "finish"),
                    RecordingAnalyzer(name: "r3"),
                ],
                concurrency: concurrency
            )
            try mux.begin(AnalysisContext(shape: .tinyMixtral))
            for b in blocks { try mux.consume(b) }
            let timed = Set(mux.consumeDurations.keys)
            let (reports, failures) = mux.finishAll()
            return (reports, failures, timed)
        }
        let serial = try run(.serial)
        let parallel = try run(.parallel(maxThreads: 4))
        #expect(serial.0.map(\.analyzer) == ["r1", "r2", "r3"])
        #expect(parallel.0.map(\.analyzer) == serial.0.map(\.analyzer))
        #expect(parallel.0.map { $0.json.jsonString() } == serial.0.map { $0.json.jsonString() })
        #expect(parallel.0[0].json["tokens"] == .int(84))
        #expect(parallel.1 == serial.1)
        #expect(parallel.1.map(\.analyzer) == ["bad", "late"])
        #expect(parallel.2 == ["r1", "bad", "r2", "late", "r3"])
    }

    /// A pipelined consume keeps every analyzer's blocks in stream order, stops an analyzer at
    /// the block it threw on, and reports failures by block, then by analyzer order, as the
    /// serial multiplexer does; ``MultiplexAnalyzer/flush()`` can be called at any point.
    @Test func pipelinedConsumeFailsInSerialOrder() throws {
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 5)
        // Distinct sizes, so each analyzer's record shows the order it saw the blocks in.
        let blocks = (0..<9).map { gen.makeBlock(problems: 1, tokensPerProblem: 2 + $0, domain: "d") }
        func run(
            _ concurrency: MultiplexAnalyzer.Concurrency
        ) throws -> (
            mux: MultiplexAnalyzer, members: [FailsAtBlock], failures: [AnalyzerFailure]
        ) {
            let members = [
                FailsAtBlock("late", failsAt: 6), FailsAtBlock("early", failsAt: 1), FailsAtBlock("fine"),
                FailsAtBlock("also-early", failsAt: 1), FailsAtBlock("first", failsAt: 0),
            ]
            let mux = MultiplexAnalyzer(members, concurrency: concurrency)
            try mux.begin(AnalysisContext(shape: .tinyMixtral))
            for (i, b) in blocks.enumerated() {
                try mux.consume(b)
                if i == 3 { mux.flush() }
            }
            mux.flush()
            mux.flush()
            return (mux, members, mux.failures)
        }
        let serial = try run(.serial)
        let parallel = try run(.parallel(maxThreads: 3))
        let expected = ["first", "early", "also-early", "late"]
        #expect(serial.failures.map(\.analyzer) == expected)
        #expect(parallel.failures == serial.failures)
        #expect(
            parallel.failures.map(\.message)
                == expected.map { name in
                    let at = ["first": 0, "early": 1, "also-early": 1, "late": 6][name]!
                    return "\(RoutingError.analyzerFailed(name: name, message: "block \(at)"))"
                }
        )
        #expect(parallel.mux.analyzers.map(\.name) == ["fine"])
        let sizes = blocks.map(\.tokenCount)
        for (p, s) in zip(parallel.members, serial.members) {
            #expect(p.seen == s.seen, "\(p.name)")
            #expect(p.seen == Array(sizes.prefix(p.failsAt ?? sizes.count)), "\(p.name)")
        }
        #expect(parallel.mux.finishAll().reports.map(\.analyzer) == ["fine"])
    }

    @Test func multiplexMergeMatchesByName() throws {
        let a = MultiplexAnalyzer([RecordingAnalyzer(name: "r")])
        let b = MultiplexAnalyzer([RecordingAnalyzer(name: "r")])
        var gen = SyntheticRouting(shape: .tinyMixtral, seed: 2)
        try a.consume(gen.makeBlock(problems: 1, tokensPerProblem: 3, domain: "d"))
        try b.consume(gen.makeBlock(problems: 1, tokensPerProblem: 4, domain: "d"))
        try a.merge(b)
        #expect(a.finishAll().reports[0].json["tokens"] == .int(7))
        #expect(throws: RoutingError.self) { try a.merge(RecordingAnalyzer()) }
    }

    @Test func registryMakesFreshInstancesAndRejectsDuplicates() throws {
        var r = AnalyzerRegistry()
        try r.register("rec", summary: "records") { RecordingAnalyzer(name: "rec") }
        #expect(throws: RoutingError.self) { try r.register("rec", summary: "again") { RecordingAnalyzer() } }
        #expect(throws: RoutingError.self) { try r.register("bad name", summary: "") { RecordingAnalyzer() } }
        let x = try r.make("rec")
        let y = try r.make("rec")
        #expect(x !== y)
        #expect(throws: RoutingError.unknownAnalyzer(name: "nope", known: ["rec"])) { try r.make("nope") }
        #expect(RoutingError.unknownAnalyzer(name: "nope", known: ["rec"]).description.contains("known analyzers: rec"))
    }

    @Test func concatenatedSourceUnifiesDomainTables() throws {
        var g1 = SyntheticRouting(shape: .tinyMixtral, seed: 3)
        var g2 = SyntheticRouting(shape: .tinyMixtral, seed: 4)
        let a = g1.makeBlock(problems: 1, tokensPerProblem: 2, domain: "humaneval")
        let b = g2.makeBlock(problems: 1, tokensPerProblem: 3, domain: "gsm8k")
        let c = g2.makeBlock(problems: 1, tokensPerProblem: 1, domain: "humaneval")
        let source = try ConcatenatedSource([ArraySource([a]), ArraySource([b, c])])
        var names: [String] = []
        while let block = try source.nextBlock() {
            names += (0..<block.tokenCount).map { block.domainName(token: $0) }
        }
        #expect(names == ["humaneval", "humaneval", "gsm8k", "gsm8k", "gsm8k", "humaneval"])
        #expect(source.domains == ["humaneval", "gsm8k"])
        let other = ArraySource([SyntheticRouting(shape: .mixtral8x7B, seed: 1).makeBlockCopy()])
        #expect(throws: RoutingError.self) { _ = try ConcatenatedSource([ArraySource([a]), other]) }
    }
}

extension SyntheticRouting {
    fileprivate func makeBlockCopy() -> RoutingBlock {
        var g = self
        return g.makeBlock(problems: 1, tokensPerProblem: 1, domain: "d")
    }
}
