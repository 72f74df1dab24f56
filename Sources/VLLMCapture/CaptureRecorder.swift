// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The observer the command-line tool uses: blocks to an AnalysisDispatcher (trace writers and
// live analyzers), generated outputs and step timings to JSONL files beside the trace, progress
// to standard error.

import Foundation
public import MoERouting
public import MoERoutingTraces

/// A ``CaptureObserver`` that feeds each finished request's block to an ``AnalysisDispatcher``
/// (its sinks write the trace, its analyzers run live), appends each output to a JSONL file, each
/// step's timings to another and to every ``BinaryTraceWriter`` among the dispatcher's sinks
/// (layer-timings chunks, flushed every 64 steps, before each block and when the writer closes),
/// and prints progress on standard error.
///
/// ```swift
/// let recorder = try CaptureRecorder(dispatcher: dispatcher, outputsPath: "run.outputs.jsonl")
/// let summary = try engine.capture(problems, observer: recorder)
/// try recorder.close()
/// ```
public final class CaptureRecorder: CaptureObserver {
    /// Where blocks go.
    public let dispatcher: AnalysisDispatcher
    /// Requests handed over unfinished (a run that stopped early).
    public private(set) var partialRequests = 0
    /// Requests finished.
    public private(set) var finishedRequests = 0
    /// Whether progress is printed.
    public var showsProgress: Bool
    /// Seconds between progress lines when standard error is not a terminal.
    public var progressInterval: Double = 5

    private let outputs: LineFile?
    private let timings: LineFile?
    /// The binary traces among the dispatcher's sinks, which also keep the step timings.
    private let traceWriters: [BinaryTraceWriter]
    private let encoder: JSONEncoder
    private let label: String
    private var lastPrint: Double = -1
    private let interactive: Bool
    private var printedInteractive = false

    /// Creates a recorder.
    ///
    /// - Parameters:
    ///   - dispatcher: receives every request's block (begin it before the run).
    ///   - outputsPath: a JSONL file for generated outputs, one object per finished request.
    ///   - timingsPath: a JSONL file for per-step timings (written only when timing is on).
    ///   - showsProgress: print progress on standard error.
    ///   - label: the progress lines' prefix (`collect`, `run`).
    /// - Throws: ``CaptureError/sinkFailed(_:)`` when a file cannot be created.
    public init(
        dispatcher: AnalysisDispatcher,
        outputsPath: String? = nil,
        timingsPath: String? = nil,
        showsProgress: Bool = true,
        label: String = "collect"
    ) throws {
        self.dispatcher = dispatcher
        self.outputs = try outputsPath.map(LineFile.init(path:))
        self.timings = try timingsPath.map(LineFile.init(path:))
        self.traceWriters = dispatcher.sinks.compactMap { $0 as? BinaryTraceWriter }
        self.showsProgress = showsProgress
        self.label = label
        self.interactive = LibC.standardErrorIsTerminal()
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.encoder = e
    }

    /// One output line of the outputs file.
    struct OutputRecord: Encodable {
        var domain: String
        var problem_id: Int64
        var source_id: String
        var prompt: String
        var prompt_token_ids: [Int32]
        var token_ids: [Int32]
        var text: String
        var finish_reason: String
    }

    struct TimingRecord: Encodable {
        var step: Int
        var rows: Int
        var routing_ns: [Int64]
        var moe_ns: [Int64]
    }

    public func requestFinished(_ routing: RequestRouting, output: GenerationOutput?) throws {
        if output == nil { partialRequests += 1 } else { finishedRequests += 1 }
        if routing.block.tokenCount > 0 {
            do {
                try dispatcher.dispatch(routing.block)
            } catch {
                throw CaptureError.sinkFailed("\(error)")
            }
        }
        if let output, let outputs {
            let record = OutputRecord(
                domain: output.problem.domain,
                problem_id: output.problem.problemID,
                source_id: output.problem.sourceID,
                prompt: output.problem.prompt,
                prompt_token_ids: output.promptTokenIDs,
                token_ids: output.tokenIDs,
                text: output.text,
                finish_reason: output.finishReason
            )
            try outputs.append(try encoder.encode(record))
        }
    }

    public func stepEnded(_ timing: StepTiming) throws {
        for w in traceWriters {
            do {
                try w.addTiming(timing)
            } catch {
                throw CaptureError.sinkFailed("\(error)")
            }
        }
        guard let timings else { return }
        let record = TimingRecord(
            step: Int(timing.step),
            rows: Int(timing.rows),
            routing_ns: timing.routingNanoseconds,
            moe_ns: timing.moeNanoseconds
        )
        try timings.append(try encoder.encode(record))
    }

    public func progress(_ p: CaptureProgress) -> Bool {
        guard showsProgress else { return false }
        let interval = interactive ? 0.5 : progressInterval
        if lastPrint < 0 || p.seconds - lastPrint >= interval {
            lastPrint = p.seconds
            printLine(Self.format(p, label: label))
        }
        return false
    }

    /// Prints the final progress line (and ends the terminal's updating line).
    public func finishProgress(_ summary: CaptureSummary, total: Int) {
        guard showsProgress else { return }
        let p = CaptureProgress(
            finished: summary.outputs.count,
            total: total,
            generatedTokens: summary.generatedTokens,
            routedRows: summary.assembly.rows,
            seconds: summary.seconds,
            remainingTokenBudget: 0
        )
        let end = summary.interrupted ? "interrupted after" : "done in"
        printLine(Self.format(p, label: label) + " | \(end) \(Self.clock(summary.seconds))")
        if interactive && printedInteractive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// Closes the outputs and timings files (not the dispatcher's sinks).
    public func close() throws {
        try outputs?.close()
        try timings?.close()
    }

    private func printLine(_ line: String) {
        if interactive {
            printedInteractive = true
            FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8 + Array(line.utf8)))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// `moe-routing: collect 3/8 problems | 412 tokens, 151.2 tok/s | 2312 routing rows/s | ETA ≤ 0:12`.
    static func format(_ p: CaptureProgress, label: String) -> String {
        var s = "moe-routing: \(label) \(p.finished)/\(p.total) problems | \(p.generatedTokens) tokens, "
        s += String(format: "%.1f tok/s | %.0f routing rows/s", p.tokensPerSecond, p.rowsPerSecond)
        if p.finished < p.total, let eta = p.estimatedSecondsLeft { s += " | ETA ≤ \(clock(eta))" }
        return s
    }

    /// `m:ss` or `h:mm:ss`.
    static func clock(_ seconds: Double) -> String {
        let t = Int(seconds.rounded())
        let (h, m, s) = (t / 3600, (t % 3600) / 60, t % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}

/// An append-only text file written a line at a time (each line reaches the kernel at once, so a
/// killed run keeps every finished line), under a temporary name beside `path` until ``close()``
/// renames it into place (an ``AtomicOutputFile``).
final class LineFile {
    let path: String
    private let file: AtomicOutputFile
    private var closed = false

    init(path: String) throws {
        do {
            file = try AtomicOutputFile(path: path)
        } catch {
            throw CaptureError.sinkFailed(error.description)
        }
        self.path = path
    }

    func append(_ line: Data) throws {
        guard !closed else { throw CaptureError.sinkFailed("\(path): write after close") }
        do {
            try file.write(Array(line) + [0x0A])
        } catch {
            throw CaptureError.sinkFailed(error.description)
        }
    }

    /// Puts the file in place (flush, rename).
    func close() throws {
        guard !closed else { return }
        closed = true
        do {
            try file.commit()
        } catch {
            throw CaptureError.sinkFailed(error.description)
        }
    }
}
