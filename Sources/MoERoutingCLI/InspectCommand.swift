// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERouting
import MoERoutingTraces

extension MoERoutingCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe traces: shape, records, tokens, journeys, domains, problems, phases.",
            discussion: """
                Examples:
                  moe-routing inspect ../shared/data/mixtral_humaneval_2problems_routing.jsonl
                  moe-routing inspect run.moetrace --format json
                """
        )

        @Argument(help: "Trace files (.jsonl, .moetrace, .npz). Several are read as one stream.")
        var traces: [String]

        @OptionGroup var read: ReadOptions

        @OptionGroup var phase: PhaseOption

        @Option(help: "Output format: text, json or markdown.")
        var format: OutputFormat = .text

        func run() throws {
            let inputs = try TraceInputs(paths: traces, options: try read.traceOptions())
            let summary = TraceSummaryAnalyzer()
            let steps = StepColumnSummary()
            let mux = MultiplexAnalyzer([summary, steps])
            let dispatcher = AnalysisDispatcher(analyzers: mux)
            let source = phase.filter(inputs.source)
            try dispatcher.run(source: source, context: AnalysisContext(shape: inputs.shape, settings: inputs.settings))
            let (reports, failures) = mux.finishAll()
            if let f = failures.first { throw CLIError("\(f)") }
            var report = reports[0]
            let timing = inputs.timing
            if let timing { report.notes.append(timing.inspectLine) }
            if let line = steps.inspectLine { report.notes.append(line) }
            if phase.phase != .all {
                report.notes.insert("\(phase.phase) tokens only (--phase); \(source.droppedTokens) tokens of the other phase left out", at: 0)
            }
            let closures = inputs.closures
            for (path, closure) in closures { report.notes.append("\(path): \(closure)") }
            if inputs.shapeWasInferred {
                report.notes.insert("shape inferred from the data (\(inputs.shape)); state it with --shape or --layers/--experts/--top-k", at: 0)
            }
            for w in inputs.warnings { Console.warn(w) }
            switch format {
            case .json:
                var members = report.json.objectMembers ?? []
                members.insert(.init("files", .array(traces.map(ReportValue.string))), at: 0)
                members.append(.init("shape_inferred", .bool(inputs.shapeWasInferred)))
                members.append(.init("skipped_records", .object(inputs.skipped.keys.sorted().map { .init($0.rawValue, .int(inputs.skipped[$0]!)) })))
                members.append(.init("lost_bytes", .int(inputs.lostBytes)))
                if phase.phase != .all { members.append(.init("phase_kept", .string(phase.phase.rawValue))) }
                if let timing { members.append(.init("timing", timing.totals.reportValue)) }
                if let value = steps.reportValue { members.append(.init("steps", value)) }
                if !closures.isEmpty {
                    // The stream's closure is its worst file's: cut off, else interrupted, else closed.
                    let names = closures.map(\.closure.name)
                    let worst = names.contains("cut_off") ? "cut_off" : names.contains("interrupted") ? "interrupted" : "closed"
                    members.append(.init("closure", .string(worst)))
                    members.append(.init("closures", .array(closures.map { path, closure in
                        var m: [ReportValue.Member] = [.init("file", .string(path)), .init("closure", .string(closure.name))]
                        if case .interrupted(let completed, let total) = closure {
                            m += [.init("completed", .int(completed)), .init("total", .int(total))]
                        }
                        return .object(m)
                    })))
                }
                print(ReportValue.object(members).jsonString(indent: 2))
            case .text: print(report.renderText(), terminator: "")
            case .markdown: print(report.renderMarkdown(), terminator: "")
            }
        }
    }
}

/// What a stream's per-token step column (``RoutingBlock/step``) says: how many tokens carry the
/// engine step that routed them, the first and last step and how many distinct steps there are.
final class StepColumnSummary: RoutingAnalyzer {
    let name = "steps"
    /// Tokens with a known step.
    private(set) var tokens = 0
    /// Whether any block had a step column.
    private(set) var hasColumn = false
    private var distinct = Set<UInt32>()

    func begin(_ context: AnalysisContext) throws {}

    func consume(_ block: RoutingBlock) throws {
        guard let step = block.step else { return }
        hasColumn = true
        for s in step where s != .max {
            tokens += 1
            distinct.insert(s)
        }
    }

    func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        tokens += o.tokens
        hasColumn = hasColumn || o.hasColumn
        distinct.formUnion(o.distinct)
    }

    func finish() throws -> AnalyzerReport { AnalyzerReport(analyzer: name, title: "Steps", json: reportValue ?? .null) }

    /// A note such as `steps: 5000 tokens carry the engine step that routed them, steps 0...127 (128 distinct)`;
    /// `nil` when the trace has no step column.
    var inspectLine: String? {
        guard hasColumn else { return nil }
        guard let lo = distinct.min(), let hi = distinct.max() else {
            return "steps: the trace has a step column, but no token's step is known"
        }
        return "steps: \(tokens) tokens carry the engine step that routed them, steps \(lo)...\(hi) (\(distinct.count) distinct)"
    }

    /// `{"tokens": n, "first": a, "last": b, "distinct": d}`, or `nil` without a step column.
    var reportValue: ReportValue? {
        guard hasColumn else { return nil }
        var members: [ReportValue.Member] = [.init("tokens", .int(tokens)), .init("distinct", .int(distinct.count))]
        if let lo = distinct.min(), let hi = distinct.max() {
            members.insert(contentsOf: [.init("first", .int(Int(lo))), .init("last", .int(Int(hi)))], at: 1)
        }
        return .object(members)
    }
}
