// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// The facts of one analysis, as `run.json` holds them (``AnalysisResult/run``): what was read
/// (inputs, shape, settings, seed), then what the stream held (tokens, records, journeys) and
/// which analyzers failed. `run`, `analyze` and `demo` build theirs here, so the members and
/// their JSON types are written in one place.
///
/// ```swift
/// var facts = RunFacts()
/// facts.append("inputs", .array([.string("trace.moetrace")]))
/// facts.appendShape(shape)
/// facts.appendAnalysisSeed(0x5EED)
/// facts.appendStream(statistics, failures: failures)
/// let runJSON = facts.value
/// ```
public struct RunFacts: Sendable {
    /// The members so far, in order.
    public private(set) var members: [ReportValue.Member]

    /// Facts starting with `members`.
    public init(_ members: [ReportValue.Member] = []) {
        self.members = members
    }

    /// Appends one member.
    public mutating func append(_ key: String, _ value: ReportValue) {
        members.append(.init(key, value))
    }

    /// Appends `shape`: `{"layers", "experts", "top_k"}`.
    public mutating func appendShape(_ shape: ModelShape) {
        append("shape", ["layers": .int(shape.layers), "experts": .int(shape.experts), "top_k": .int(shape.topK)])
    }

    /// Appends `settings`, sorted by key, every value a string.
    public mutating func appendSettings(_ settings: [String: String], key: String = "settings") {
        append(key, .object(settings.keys.sorted().map { .init($0, .string(settings[$0] ?? "")) }))
    }

    /// Appends the seed of shuffled nulls, permutation tests and bootstraps (`analysis_seed` in
    /// `run`'s facts, `seed` in `analyze`'s).
    public mutating func appendAnalysisSeed(_ seed: UInt64, key: String = "analysis_seed") {
        append(key, .integer(seed))
    }

    /// Appends what the stream held and the analyzers dropped: `tokens`, `records`,
    /// `complete_journeys`, `incomplete_journeys`, `failures` (`[{"analyzer", "stage", "message"}]`).
    public mutating func appendStream(_ statistics: StreamStatistics, failures: [AnalyzerFailure]) {
        append("tokens", .int(statistics.tokens))
        append("records", .int(statistics.records))
        append("complete_journeys", .int(statistics.completeJourneys))
        append("incomplete_journeys", .int(statistics.incompleteJourneys))
        append(
            "failures",
            .array(
                failures.map {
                    ["analyzer": .string($0.analyzer), "stage": .string($0.stage), "message": .string($0.message)]
                }
            )
        )
    }

    /// The facts as one JSON object.
    public var value: ReportValue { .object(members) }
}

/// Drives a source through analyzers and collects an ``AnalysisResult``.
public enum AnalysisRunner {
    /// Runs `analyzers` (and `sinks`) over `source` and finishes them; each failed analyzer is
    /// logged and listed in the result. `facts` gives the run facts known before the stream's
    /// counts; it is called once the source is drained (so readers' counts of skipped records
    /// are final), and the stream's counts and the failures are appended to what it returns.
    ///
    /// ```swift
    /// let result = try AnalysisRunner.run(
    ///     source: try BinaryTraceReader(path: "run.moetrace"), analyzers: [TraceSummaryAnalyzer()],
    ///     context: AnalysisContext(shape: .mixtral8x7B)) { RunFacts() }
    /// ```
    public static func run(
        source: any RoutingBlockSource,
        analyzers: [any RoutingAnalyzer],
        context: AnalysisContext,
        sinks: [any RoutingBlockSink] = [],
        log: PipelineLog = .standardError,
        facts: () -> RunFacts
    ) throws -> AnalysisResult {
        let mux = MultiplexAnalyzer(analyzers)
        let dispatcher = AnalysisDispatcher(analyzers: mux, sinks: sinks)
        try dispatcher.run(source: source, context: context)
        let (reports, failures) = mux.finishAll()
        for f in failures { log("\(f)") }
        var all = facts()
        all.appendStream(dispatcher.statistics, failures: failures)
        return AnalysisResult(reports: reports, failures: failures, statistics: dispatcher.statistics, run: all.value)
    }
}
