// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import MoERoutingTraces

/// Opens the trace files named on the command line as one stream, and collects what the readers
/// met on the way (skipped records, lost bytes, inferred shapes).
final class TraceInputs {
    let paths: [String]
    let source: any RoutingBlockSource
    private let jsonl: JSONLTraceReader?
    private let binaries: [(String, BinaryTraceReader)]
    /// Whether the shape came from the data rather than the user or a header.
    let shapeWasInferred: Bool
    /// Capture settings from binary headers.
    let settings: [String: String]

    init(paths: [String], options: TraceReadOptions) throws {
        self.paths = paths
        var jsonlPaths: [String] = []
        var sources: [any RoutingBlockSource] = []
        var binaries: [(String, BinaryTraceReader)] = []
        var settings: [String: String] = [:]
        for p in paths {
            switch try TraceFormat.detect(readingPath: p) {
            case .jsonl:
                jsonlPaths.append(p)
            case .binary:
                let r = try BinaryTraceReader(path: p, options: options)
                binaries.append((p, r))
                sources.append(r)
                settings.merge(r.header.settings) { a, _ in a }
            case .npz:
                throw CLIError("\(p): .npz is an export format for Python and cannot be read back; keep the .moetrace or .jsonl")
            }
        }
        var jsonlOptions = options
        if jsonlOptions.shape == nil, let first = binaries.first?.1 {
            jsonlOptions.shape = first.shape  // JSONL inputs must follow the binary trace's shape
        }
        if !jsonlPaths.isEmpty {
            let r = try JSONLTraceReader(paths: jsonlPaths, options: jsonlOptions)
            jsonl = r
            sources.insert(r, at: 0)
            shapeWasInferred = r.shapeWasInferred
        } else {
            jsonl = nil
            shapeWasInferred = false
        }
        self.binaries = binaries
        self.settings = settings
        source = sources.count == 1 ? sources[0] : try ConcatenatedSource(sources)
    }

    var shape: ModelShape { source.shape }

    /// One-line warnings for standard error: skipped records by kind, lost bytes.
    var warnings: [String] {
        var out: [String] = []
        func add(_ name: String, _ s: TraceReadSummary) {
            if s.skippedTotal > 0 {
                let kinds = s.skipped.keys.sorted().map { "\($0.rawValue) \(s.skipped[$0]!)" }.joined(separator: ", ")
                out.append("\(name): skipped \(s.skippedTotal) bad records (\(kinds)); first: \(s.examples.first ?? "")")
            }
            if s.lostBytes > 0 {
                out.append("\(name): \(s.lostBytes) bytes at the end were lost: \(s.lossReason ?? "incomplete chunk")")
            }
        }
        if let jsonl { add(paths.count == 1 ? paths[0] : "JSONL inputs", jsonl.summary) }
        for (p, r) in binaries { add(p, r.summary) }
        return out
    }

    /// Skipped-record counts by kind over all inputs, for JSON output.
    var skipped: [RecordIssue.Kind: Int] {
        var all: [RecordIssue.Kind: Int] = [:]
        if let jsonl { all.merge(jsonl.summary.skipped, uniquingKeysWith: +) }
        for (_, r) in binaries { all.merge(r.summary.skipped, uniquingKeysWith: +) }
        return all
    }

    var lostBytes: Int { binaries.reduce(0) { $0 + $1.1.summary.lostBytes } }

    /// How each binary input ended (closed, interrupted, cut off), final once the source has
    /// been drained; JSONL inputs have no end marker and are not listed.
    var closures: [(path: String, closure: BinaryTraceClosure)] { binaries.map { ($0.0, $0.1.closure) } }

    /// Per-layer timing sums over the binary inputs' layer-timings chunks, or `nil` when none has
    /// any; final once the source has been drained.
    var timing: CaptureReport.Timing? {
        CaptureReport.Timing.merged(binaries.compactMap { $0.1.timingTotals })
    }
}

/// An error for the user: one line, printed without decoration.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
