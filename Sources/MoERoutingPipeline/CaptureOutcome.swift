// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting
public import VLLMCapture

/// What a capture produced (``CaptureJob/capture(to:jsonl:analyzers:analysisSeed:alsoWrites:)``),
/// and the error that stopped it, if any. The files are closed and readable either way.
public struct CaptureOutcome {
    /// The capture's counts and statistics; `nil` when the capture failed before it ended.
    public var summary: CaptureSummary?
    /// What the analyzers and sinks were fed.
    public var statistics: StreamStatistics
    /// The trace writer's totals, as `moe-routing` prints them (`N tokens, M records, ...`).
    public var traceTotals: String
    /// The live analyzers, ready for ``MultiplexAnalyzer/finishAll()``.
    public var analyzers: MultiplexAnalyzer
    /// The engine's and capture's settings (also in the trace header).
    public var settings: [String: String]
    /// The model's shape.
    public var shape: ModelShape
    /// The problems submitted.
    public var problems: [Problem]
    /// The error that stopped the capture, or `nil` when it ran to the end (or was interrupted).
    public var error: (any Error)?

    /// The facts of a run stopped by SIGINT or SIGTERM, or `nil` when it ran to the end.
    public var interruption: CaptureStopFacts? {
        guard let summary, summary.interrupted else { return nil }
        return CaptureStopFacts(
            signal: CaptureInterruption.signal,
            completed: summary.outputs.count,
            total: problems.count,
            partial: summary.partialRequests
        )
    }
}

/// What a run stopped by a signal leaves: which signal, how many problems completed of how many,
/// and the problems whose routing is partial (their tokens so far are in the trace).
public struct CaptureStopFacts: Sendable {
    /// The signal that stopped the run, or `nil` for a stop asked for without one.
    public var signal: Int32?
    /// Problems that finished.
    public var completed: Int
    /// Problems submitted.
    public var total: Int
    /// The unfinished problems whose routing so far was kept.
    public var partial: [CaptureSummary.PartialRequest]

    /// A stop record.
    public init(signal: Int32?, completed: Int, total: Int, partial: [CaptureSummary.PartialRequest]) {
        self.signal = signal
        self.completed = completed
        self.total = total
        self.partial = partial
    }

    /// `SIGINT`, `SIGTERM`, or `request` (a stop asked for without a signal).
    public var signalName: String { signal.map(CaptureInterruption.name(of:)) ?? "request" }

    /// Where the partial problems' routing went: `the trace and the analyses` (`run`), `the trace`.
    public var keptIn = "the trace"

    /// The report banner: `interrupted after 3 of 8 problems (SIGINT); the routing of 5 unfinished
    /// problems is partial (kept in the trace and the analyses): humaneval/4 (57 tokens), ...`.
    public var notice: String {
        var s = "interrupted after \(completed) of \(total) problems (\(signalName))"
        if partial.isEmpty {
            s += "; no unfinished problem had routing yet"
        } else {
            let shown = partial.prefix(12).map { "\($0.problem.domain)/\($0.problem.problemID) (\($0.tokens) tokens)" }
            s += "; the routing of \(partial.count) unfinished problem\(partial.count == 1 ? "" : "s") is partial "
            s += "(kept in \(keptIn)): " + shown.joined(separator: ", ")
            if partial.count > shown.count { s += ", and \(partial.count - shown.count) more (run.json lists them)" }
        }
        return s
    }

    /// `run.json`'s `interrupted`: `{"signal", "completed", "total", "partial": [...]}`.
    public var reportValue: ReportValue {
        [
            "signal": .string(signalName), "completed": .int(completed), "total": .int(total),
            "partial": .array(partial.map(\.reportValue)),
        ]
    }
}
