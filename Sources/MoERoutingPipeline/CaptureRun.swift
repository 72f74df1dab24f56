// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting
import VLLMCapture

/// A capture analyzed live (``CaptureJob/run(in:analyzers:analysisSeed:jsonl:)``): the capture's
/// outcome and the analysis result, with the run facts (`run.json`) and the capture's own report
/// section, ready for ``ReportFiles/write(_:to:subtitle:)``.
public struct CaptureRun {
    /// The files written so far (the trace, outputs, and the JSONL trace and timings when asked
    /// for); `run.json` and the report files are written by ``ReportFiles``.
    public var files: CaptureFiles
    /// The capture's outcome.
    public var outcome: CaptureOutcome
    /// The analyzers' reports (and the capture section), the run facts and any notice.
    public var result: AnalysisResult
    /// The facts of a run stopped by a signal, or `nil` when it ran to the end.
    public var interruption: CaptureStopFacts?
}

/// A capture that failed during generation: the trace so far was closed and is readable.
public struct CaptureFailure: Error, CustomStringConvertible {
    /// What stopped the capture (a ``CaptureError`` with the Python traceback, usually).
    public var error: any Error
    /// The files of the capture.
    public var files: CaptureFiles
    /// The trace writer's totals when it closed.
    public var traceTotals: String

    public var description: String { "\(error)" }
}

extension CaptureJob {
    /// What `moe-routing run` does: captures into `directory` (``CaptureFiles/init(directory:)``)
    /// with `analyzers` fed live, then finishes them and gathers the result: their reports, the
    /// capture's report section (timing, router logits), the run facts and, after a signal, the
    /// banner naming the partial problems. The report files are checked before the run starts.
    ///
    /// ```swift
    /// let run = try CaptureJob().run(in: "out/run", analyzers: [TraceSummaryAnalyzer()])
    /// try ReportFiles.write(run.result, to: "out/run")
    /// ```
    ///
    /// - Throws: ``CaptureFailure`` when generation failed (the trace so far is readable), and
    ///   the errors of ``capture(to:jsonl:analyzers:analysisSeed:alsoWrites:)`` before it started.
    public func run(
        in directory: String,
        analyzers: [any RoutingAnalyzer],
        analysisSeed: UInt64 = 0x5EED,
        jsonl: Bool = false
    ) throws -> CaptureRun {
        let files = CaptureFiles(directory: directory)
        let outcome = try capture(
            to: files,
            jsonl: jsonl,
            analyzers: analyzers,
            analysisSeed: analysisSeed,
            alsoWrites: ReportFiles.paths(in: directory)
        )
        if let error = outcome.error {
            throw CaptureFailure(error: error, files: files, traceTotals: outcome.traceTotals)
        }
        var (reports, failures) = outcome.analyzers.finishAll()
        if let summary = outcome.summary, let capture = CaptureReport.make(summary) { reports.append(capture) }
        for f in failures { log("\(f)") }
        var facts = RunFacts([
            .init("inputs", .array([.string(files.trace)])),
            .init("trace", .string(files.trace)),
            .init("outputs", .string(files.outputs)),
        ])
        facts.appendShape(outcome.shape)
        facts.appendSettings(outcome.settings)
        facts.appendAnalysisSeed(analysisSeed)
        if let summary = outcome.summary { facts.append("capture", summary.reportValue) }
        var stop = outcome.interruption
        stop?.keptIn = "the trace and the analyses"
        if let stop { facts.append("interrupted", stop.reportValue) }
        facts.appendStream(outcome.statistics, failures: failures)
        let result = AnalysisResult(
            reports: reports,
            failures: failures,
            statistics: outcome.statistics,
            run: facts.value,
            notices: stop.map { [$0.notice] } ?? []
        )
        return CaptureRun(files: files, outcome: outcome, result: result, interruption: stop)
    }

    /// The facts `collect` writes to `T.capture.json`: the trace, the settings, the capture's
    /// summary and, after a signal, what was interrupted; `nil` when the capture failed.
    public static func collectFacts(_ outcome: CaptureOutcome, files: CaptureFiles) -> ReportValue? {
        guard let summary = outcome.summary else { return nil }
        var facts = RunFacts([.init("trace", .string(files.trace))])
        facts.appendSettings(outcome.settings)
        facts.append("capture", summary.reportValue)
        if let stop = outcome.interruption { facts.append("interrupted", stop.reportValue) }
        return facts.value
    }
}
