// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting
public import MoERoutingTraces

/// What `moe-routing inspect` says about traces: the summary analyzer's report (shape, records,
/// tokens, journeys, domains, problems, phases) with notes on timings, steps, the phase kept,
/// how each binary file ended and an inferred shape, and the same as one JSON object.
///
/// ```swift
/// let inspection = try TraceInspection(traces: ["out/run/trace.moetrace"])
/// print(inspection.report.renderText(), terminator: "")
/// ```
public struct TraceInspection {
    /// The summary report with its notes.
    public var report: AnalyzerReport
    /// The JSON form (`--format json`): `files`, the summary's members, `shape_inferred`,
    /// `skipped_records`, `lost_bytes`, and when known `phase_kept`, `timing`, `steps`, `closure`
    /// and `closures`.
    public var json: ReportValue

    /// Reads `traces` as one stream (keeping `phase`) and describes them; the readers' warnings
    /// go to `log`.
    public init(
        traces: [String],
        readOptions: TraceReadOptions = TraceReadOptions(),
        phase: PhaseSelection = .all,
        log: PipelineLog = .standardError
    ) throws {
        let inputs = try TraceInputs(paths: traces, options: readOptions)
        let summary = TraceSummaryAnalyzer()
        let steps = StepColumnSummary()
        let mux = MultiplexAnalyzer([summary, steps])
        let dispatcher = AnalysisDispatcher(analyzers: mux)
        let source = PhaseFilteredSource(inputs.source, keeping: phase)
        try dispatcher.run(source: source, context: AnalysisContext(shape: inputs.shape, settings: inputs.settings))
        let (reports, failures) = mux.finishAll()
        if let f = failures.first { throw PipelineError("\(f)") }
        var report = reports[0]
        let timing = inputs.timing
        if let timing { report.notes.append(timing.inspectLine) }
        if let line = steps.inspectLine { report.notes.append(line) }
        if phase != .all {
            report.notes.insert(
                "\(phase) tokens only (--phase); \(source.droppedTokens) tokens of the other phase left out",
                at: 0
            )
        }
        let closures = inputs.closures
        for (path, closure) in closures { report.notes.append("\(path): \(closure)") }
        if inputs.shapeWasInferred {
            report.notes.insert(
                "shape inferred from the data (\(inputs.shape)); state it with --shape or --layers/--experts/--top-k",
                at: 0
            )
        }
        for w in inputs.warnings { log(w) }
        var members = report.json.objectMembers ?? []
        members.insert(.init("files", .array(traces.map(ReportValue.string))), at: 0)
        members.append(.init("shape_inferred", .bool(inputs.shapeWasInferred)))
        members.append(
            .init(
                "skipped_records",
                .object(inputs.skipped.keys.sorted().map { .init($0.rawValue, .int(inputs.skipped[$0]!)) })
            )
        )
        members.append(.init("lost_bytes", .int(inputs.lostBytes)))
        if phase != .all { members.append(.init("phase_kept", .string(phase.rawValue))) }
        if let timing { members.append(.init("timing", timing.totals.reportValue)) }
        if let value = steps.reportValue { members.append(.init("steps", value)) }
        if !closures.isEmpty {
            // The stream's closure is its worst file's: cut off, else interrupted, else closed.
            let names = closures.map(\.closure.name)
            let worst = names.contains("cut_off") ? "cut_off" : names.contains("interrupted") ? "interrupted" : "closed"
            members.append(.init("closure", .string(worst)))
            members.append(
                .init(
                    "closures",
                    .array(
                        closures.map { path, closure in
                            var m: [ReportValue.Member] = [
                                .init("file", .string(path)), .init("closure", .string(closure.name)),
                            ]
                            if case .interrupted(let completed, let total) = closure {
                                m += [.init("completed", .int(completed)), .init("total", .int(total))]
                            }
                            return .object(m)
                        }
                    )
                )
            )
        }
        self.report = report
        self.json = .object(members)
    }
}

/// What a stream's per-token step column (``RoutingBlock/step``) says: how many tokens carry the
/// engine step that routed them, the first and last step and how many distinct steps there are.
public final class StepColumnSummary: RoutingAnalyzer {
    public let name = "steps"
    /// Tokens with a known step.
    public private(set) var tokens = 0
    /// Whether any block had a step column.
    public private(set) var hasColumn = false
    private var distinct = Set<UInt32>()

    /// A summary with nothing seen yet.
    public init() {}

    public func begin(_ context: AnalysisContext) throws {}

    public func consume(_ block: RoutingBlock) throws {
        guard let step = block.step else { return }
        hasColumn = true
        for s in step where s != .max {
            tokens += 1
            distinct.insert(s)
        }
    }

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        tokens += o.tokens
        hasColumn = hasColumn || o.hasColumn
        distinct.formUnion(o.distinct)
    }

    public func finish() throws -> AnalyzerReport {
        AnalyzerReport(analyzer: name, title: "Steps", json: reportValue ?? .null)
    }

    /// A note such as `steps: 5000 tokens carry the engine step that routed them, steps 0...127 (128 distinct)`;
    /// `nil` when the trace has no step column.
    public var inspectLine: String? {
        guard hasColumn else { return nil }
        guard let lo = distinct.min(), let hi = distinct.max() else {
            return "steps: the trace has a step column, but no token's step is known"
        }
        return
            "steps: \(tokens) tokens carry the engine step that routed them, steps \(lo)...\(hi) (\(distinct.count) distinct)"
    }

    /// `{"tokens": n, "first": a, "last": b, "distinct": d}`, or `nil` without a step column.
    public var reportValue: ReportValue? {
        guard hasColumn else { return nil }
        var members: [ReportValue.Member] = [.init("tokens", .int(tokens)), .init("distinct", .int(distinct.count))]
        if let lo = distinct.min(), let hi = distinct.max() {
            members.insert(contentsOf: [.init("first", .int(Int(lo))), .init("last", .int(Int(hi)))], at: 1)
        }
        return .object(members)
    }
}
