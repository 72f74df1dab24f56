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

        @Argument(help: "Trace files (.jsonl, .moetrace). Several are read as one stream.")
        var traces: [String]

        @OptionGroup var read: ReadOptions

        @Option(help: "Output format: text, json or markdown.")
        var format: OutputFormat = .text

        func run() throws {
            let inputs = try TraceInputs(paths: traces, options: try read.traceOptions())
            let summary = TraceSummaryAnalyzer()
            let mux = MultiplexAnalyzer([summary])
            let dispatcher = AnalysisDispatcher(analyzers: mux)
            try dispatcher.run(source: inputs.source, context: AnalysisContext(shape: inputs.shape, settings: inputs.settings))
            let (reports, failures) = mux.finishAll()
            if let f = failures.first { throw CLIError("\(f)") }
            var report = reports[0]
            let timing = inputs.timing
            if let timing { report.notes.append(timing.inspectLine) }
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
                if let timing { members.append(.init("timing", timing.totals.reportValue)) }
                print(ReportValue.object(members).jsonString(indent: 2))
            case .text: print(report.renderText(), terminator: "")
            case .markdown: print(report.renderMarkdown(), terminator: "")
            }
        }
    }
}
