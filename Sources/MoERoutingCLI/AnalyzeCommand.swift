// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting

extension MoERoutingCommand {
    struct Analyze: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run analyzer plugins over traces and print or write their reports.",
            discussion: """
                With --format json, standard output is one JSON object keyed by analyzer name \
                (keys documented in docs/analyzers.md). With --output DIR, report.html (charts, \
                self-contained), report.json, report.md, report.txt and run.json are written there too. An analyzer that fails is reported \
                on standard error and dropped; the others go on, and the exit code is 3.

                Examples:
                  moe-routing analyze ../shared/data/mixtral_*_routing.jsonl
                  moe-routing analyze run.moetrace --analyzer transition multihop --format json
                  moe-routing analyze trace.jsonl --domain humaneval --plugin ./libExpertLoadPlugin.so --analyzer expert-load
                  moe-routing analyze --list-analyzers
                """
        )

        @Argument(help: "Trace files (.jsonl, .moetrace). Several are read as one stream.")
        var traces: [String] = []

        @Option(name: .customLong("analyzer"), parsing: .upToNextOption,
                help: "Analyzers to run (default: transition multihop domain).")
        var analyzers: [String] = []

        @Option(name: .customLong("plugin"), help: ArgumentHelp("A plugin shared library to load (repeatable).", valueName: "lib.so"))
        var plugins: [String] = []

        @Option(help: "Output format on standard output: text, json or markdown.")
        var format: OutputFormat = .text

        @Option(help: ArgumentHelp("Also write report files into this directory.", valueName: "dir"))
        var output: String?

        @Option(name: .customLong("analysis-seed"), help: "Seed for shuffled nulls, permutation tests and bootstraps.")
        var seed: UInt64 = 0x5EED

        @Flag(help: "List the available analyzers (with plugins) and exit.")
        var listAnalyzers = false

        @OptionGroup var read: ReadOptions

        func validate() throws {
            if !listAnalyzers && traces.isEmpty { throw ValidationError("give at least one trace file") }
        }

        func run() throws {
            let registry = try BuiltinAnalyzers.registry(plugins: plugins)
            if listAnalyzers {
                for e in registry.allEntries { print("\(e.name)\t\(e.summary)") }
                return
            }
            let names = analyzers.isEmpty ? BuiltinAnalyzers.defaultNames : analyzers
            let instances = try names.map { try registry.make($0) }
            let inputs = try TraceInputs(paths: traces, options: try read.traceOptions())
            var result = try AnalysisRunner.run(
                source: inputs.source,
                analyzers: instances,
                context: AnalysisContext(shape: inputs.shape, settings: inputs.settings, seed: seed),
                run: [
                    "inputs": .array(traces.map(ReportValue.string)),
                    "shape": ["layers": .int(inputs.shape.layers), "experts": .int(inputs.shape.experts), "top_k": .int(inputs.shape.topK)],
                    "shape_inferred": .bool(inputs.shapeWasInferred),
                    "skipped_records": .object(inputs.skipped.keys.sorted().map { .init($0.rawValue, .int(inputs.skipped[$0]!)) }),
                    "lost_bytes": .int(inputs.lostBytes),
                    "seed": .string(String(seed)),
                ]
            )
            // Traces captured with --timing carry per-layer timings: add the capture's timing section.
            if let timing = inputs.timing, let capture = CaptureReport.make(timing: timing) {
                result.reports.append(capture)
            }
            for w in inputs.warnings { Console.warn(w) }
            if inputs.shapeWasInferred { Console.warn("shape inferred from the data: \(inputs.shape) (state it with --shape)") }
            try emit(result, format: format, output: output, subtitle: traces.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))
            if !result.failures.isEmpty { throw ExitCode(3) }
        }
    }
}

/// Drives a source through analyzers and collects an ``AnalysisResult``.
enum AnalysisRunner {
    static func run(
        source: any RoutingBlockSource,
        analyzers: [any RoutingAnalyzer],
        context: AnalysisContext,
        sinks: [any RoutingBlockSink] = [],
        run: ReportValue
    ) throws -> AnalysisResult {
        let mux = MultiplexAnalyzer(analyzers)
        let dispatcher = AnalysisDispatcher(analyzers: mux, sinks: sinks)
        try dispatcher.run(source: source, context: context)
        let (reports, failures) = mux.finishAll()
        for f in failures { Console.warn("\(f)") }
        var runInfo = run.objectMembers ?? []
        let s = dispatcher.statistics
        runInfo.append(.init("tokens", .int(s.tokens)))
        runInfo.append(.init("records", .int(s.records)))
        runInfo.append(.init("complete_journeys", .int(s.completeJourneys)))
        runInfo.append(.init("incomplete_journeys", .int(s.incompleteJourneys)))
        runInfo.append(.init("failures", .array(failures.map { ["analyzer": .string($0.analyzer), "stage": .string($0.stage), "message": .string($0.message)] })))
        return AnalysisResult(reports: reports, failures: failures, statistics: s, run: .object(runInfo))
    }
}

/// Prints a result in `format` and writes report files when `output` is set.
func emit(_ result: AnalysisResult, format: OutputFormat, output: String?, subtitle: String? = nil) throws {
    switch format {
    case .json: print(result.json.jsonString(indent: 2))
    case .text: print(result.renderText(), terminator: "")
    case .markdown: print(result.renderMarkdown(), terminator: "")
    }
    if let output {
        let files = try ReportFiles.write(result, to: output, subtitle: subtitle)
        Console.warn("wrote \(files.joined(separator: ", "))")
    }
}
