// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
public import MoERouting
public import MoERoutingTraces

/// What `moe-routing analyze` does: reads trace files as one stream (``TraceInputs``), keeps one
/// phase, runs analyzers over it and gathers their reports with the run facts, the readers'
/// notices (skipped records, lost bytes) and, for traces captured with timing, the capture's
/// timing section.
///
/// ```swift
/// var analysis = TraceAnalysis(traces: ["out/run/trace.moetrace"], analyzers: try BuiltinAnalyzers.make(["transition"]))
/// analysis.phase = .decode
/// let result = try analysis.run()
/// print(OutputFormat.text.render(result), terminator: "")
/// ```
public struct TraceAnalysis {
    /// The trace files (`.jsonl`, `.moetrace`, `.npz`), read as one stream.
    public var traces: [String]
    /// The analyzers to run.
    public var analyzers: [any RoutingAnalyzer]
    /// How the traces are read (shape, leniency, positions).
    public var readOptions: TraceReadOptions
    /// The tokens kept by phase.
    public var phase: PhaseSelection
    /// Seed for shuffled nulls, permutation tests and bootstraps.
    public var seed: UInt64
    /// Analyze even when the traces hold no routing records.
    public var allowEmpty: Bool
    /// A directory the report files will be written to, checked before the analysis starts
    /// (writable, and holding none of the inputs); `nil` checks nothing.
    public var reportDirectory: String?
    /// Where warnings go.
    public var log: PipelineLog

    /// An analysis of `traces` with the defaults: strict reading, all phases, seed 0x5EED.
    public init(
        traces: [String],
        analyzers: [any RoutingAnalyzer],
        readOptions: TraceReadOptions = TraceReadOptions(),
        phase: PhaseSelection = .all,
        seed: UInt64 = 0x5EED,
        log: PipelineLog = .standardError
    ) {
        self.traces = traces
        self.analyzers = analyzers
        self.readOptions = readOptions
        self.phase = phase
        self.seed = seed
        self.allowEmpty = false
        self.reportDirectory = nil
        self.log = log
    }

    /// Runs the analysis.
    ///
    /// - Throws: ``PipelineError`` for inputs with no routing records (unless ``allowEmpty``) or
    ///   no token of the phase kept; the readers' errors (a bad record, a file given twice, a
    ///   problem two inputs hold); ``OutputPreflight``'s for an unusable ``reportDirectory``.
    ///   A failing analyzer does not throw: it is logged and listed in the result's failures.
    public func run() throws -> AnalysisResult {
        if let reportDirectory {
            try OutputPreflight.check(
                files: ReportFiles.paths(in: reportDirectory),
                directories: [reportDirectory],
                inputs: traces
            )
        }
        let inputs = try TraceInputs(paths: traces, options: readOptions)
        let source = PhaseFilteredSource(inputs.source, keeping: phase)
        var input: ReportValue = [:]
        var result = try AnalysisRunner.run(
            source: source,
            analyzers: analyzers,
            context: AnalysisContext(shape: inputs.shape, settings: inputs.settings, seed: seed),
            log: log
        ) {
            // What the readers skipped is known only now that the source is drained.
            input = inputs.facts(phase: phase, droppedTokens: source.droppedTokens)
            var facts = RunFacts([.init("inputs", .array(traces.map(ReportValue.string)))])
            facts.appendShape(inputs.shape)
            facts.append("shape_inferred", .bool(inputs.shapeWasInferred))
            facts.append("skipped_records", input["skipped_records"] ?? [:])
            facts.append("lost_bytes", .int(inputs.lostBytes))
            facts.appendAnalysisSeed(seed, key: "seed")
            return facts
        }
        var facts = RunFacts(result.run.objectMembers ?? [])
        facts.append("input", input)
        result.run = facts.value
        result.notices += inputs.notices
        if phase != .all {
            let other = phase == .decode ? "prefill" : "decode"
            result.notices.append(
                "Only \(phase) tokens are analyzed (--phase \(phase)); \(source.droppedTokens) \(other) tokens were left out."
            )
        }
        if phase != .all, result.statistics.tokens == 0 {
            for w in inputs.warnings { log(w) }
            throw PipelineError(
                "no \(phase) tokens in the input (\(source.droppedTokens) tokens of the other phase were left out; JSONL records without a 'phase' field are decode tokens)"
            )
        }
        // Traces captured with --timing carry per-layer timings: add the capture's timing section.
        if let timing = inputs.timing, let capture = CaptureReport.make(timing: timing) {
            result.reports.append(capture)
        }
        for w in inputs.warnings { log(w) }
        if inputs.shapeWasInferred, !inputs.warnings.contains(where: { $0.hasPrefix("shape inferred") }) {
            log("shape inferred from the data: \(inputs.shape) (state it with --shape)")
        }
        try EmptyTraceCheck.require(
            records: result.statistics.records,
            in: traces,
            skipped: inputs.skipped.values.reduce(0, +),
            allowEmpty: allowEmpty
        )
        return result
    }
}
