// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingTraces

extension MoERoutingCommand {
    struct Analyze: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run analyzer plugins over traces and print or write their reports.",
            discussion: """
                With --format json, standard output is one JSON object keyed by analyzer name \
                (keys documented in docs/analyzers.md). With --output DIR, report.html (charts, \
                self-contained), report.json, report.md, report.txt and run.json are written there too \
                (DIR is checked before the analysis starts; each file is written under a temporary name \
                and renamed into place). An analyzer that fails is reported \
                on standard error and dropped; the others go on, and the exit code is 3. Inputs with no \
                routing records are refused (unless --allow-empty), and so is a file given twice or a \
                problem that two inputs hold (a trace and its converted copy): its counts would double.

                Examples:
                  moe-routing analyze ../shared/data/mixtral_*_routing.jsonl
                  moe-routing analyze run.moetrace --analyzer transition multihop --format json
                  moe-routing analyze trace.jsonl --domain humaneval --plugin ./libExpertLoadPlugin.so --analyzer expert-load
                  moe-routing analyze run.npz --phase decode
                  moe-routing analyze raw_capture.jsonl --positions by-order --interleaved
                  moe-routing analyze --list-analyzers

                With --lenient, bad records are skipped: standard error, run.json and the \
                "input" member of the JSON output count them by reason, and every report opens \
                with a notice saying so.
                """
        )

        @Argument(help: "Trace files (.jsonl, .moetrace, .npz). Several are read as one stream.")
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

        @Flag(name: .customLong("allow-empty"), help: "Analyze even when the traces hold no routing records (empty tables).")
        var allowEmpty = false

        @OptionGroup var read: ReadOptions

        @OptionGroup var phase: PhaseOption

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
            if let output {
                try OutputPreflight.check(files: ReportFiles.paths(in: output), directories: [output], inputs: traces)
            }
            let inputs = try TraceInputs(paths: traces, options: try read.traceOptions())
            let source = phase.filter(inputs.source)
            var result = try AnalysisRunner.run(
                source: source,
                analyzers: instances,
                context: AnalysisContext(shape: inputs.shape, settings: inputs.settings, seed: seed),
                run: [
                    "inputs": .array(traces.map(ReportValue.string)),
                    "shape": ["layers": .int(inputs.shape.layers), "experts": .int(inputs.shape.experts), "top_k": .int(inputs.shape.topK)],
                    "shape_inferred": .bool(inputs.shapeWasInferred),
                    "skipped_records": .object(inputs.skipped.keys.sorted().map { .init($0.rawValue, .int(inputs.skipped[$0]!)) }),
                    "lost_bytes": .int(inputs.lostBytes),
                    "seed": .integer(seed),
                ]
            )
            // What the readers skipped is known only now that the source is drained.
            let facts = inputs.facts(phase: phase.phase, droppedTokens: source.droppedTokens)
            result.run = result.run.replacing("skipped_records", facts["skipped_records"] ?? [:])
                .replacing("lost_bytes", .int(inputs.lostBytes)).appending("input", facts)
            result.notices += inputs.notices
            if phase.phase != .all {
                let other = phase.phase == .decode ? "prefill" : "decode"
                result.notices.append(
                    "Only \(phase.phase) tokens are analyzed (--phase \(phase.phase)); \(source.droppedTokens) \(other) tokens were left out.")
            }
            if phase.phase != .all, result.statistics.tokens == 0 {
                for w in inputs.warnings { Console.warn(w) }
                throw CLIError(
                    "no \(phase.phase) tokens in the input (\(source.droppedTokens) tokens of the other phase were left out; JSONL records without a 'phase' field are decode tokens)"
                )
            }
            // Traces captured with --timing carry per-layer timings: add the capture's timing section.
            if let timing = inputs.timing, let capture = CaptureReport.make(timing: timing) {
                result.reports.append(capture)
            }
            for w in inputs.warnings { Console.warn(w) }
            if inputs.shapeWasInferred, !inputs.warnings.contains(where: { $0.hasPrefix("shape inferred") }) {
                Console.warn("shape inferred from the data: \(inputs.shape) (state it with --shape)")
            }
            try EmptyTraceCheck.require(
                records: result.statistics.records, in: traces, skipped: inputs.skipped.values.reduce(0, +),
                allowEmpty: allowEmpty)
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
    case .json: print(analysisJSON(result).jsonString(indent: 2))
    case .text: print(result.renderText(), terminator: "")
    case .markdown: print(result.renderMarkdown(), terminator: "")
    }
    if let output {
        let files = try ReportFiles.write(result, to: output, subtitle: subtitle)
        Console.warn("wrote \(files.joined(separator: ", "))")
    }
}

/// The JSON output of an analysis (`--format json`, report.json): one member per analyzer, then,
/// when the run facts carry one, the `input` section (records skipped by reason, bytes lost,
/// phase, positions; docs/analyzers.md).
func analysisJSON(_ result: AnalysisResult) -> ReportValue {
    guard let input = result.run["input"], var members = result.json.objectMembers else { return result.json }
    members.append(.init("input", input))
    return .object(members)
}

extension ReportValue {
    /// This object with the value of member `key` replaced (a non-object, or an object without
    /// `key`, is returned unchanged).
    func replacing(_ key: String, _ value: ReportValue) -> ReportValue {
        guard let members = objectMembers else { return self }
        return .object(members.map { $0.key == key ? .init(key, value) : $0 })
    }

    /// This object with one more member at the end (a non-object is returned unchanged).
    func appending(_ key: String, _ value: ReportValue) -> ReportValue {
        guard var members = objectMembers else { return self }
        members.append(.init(key, value))
        return .object(members)
    }
}
