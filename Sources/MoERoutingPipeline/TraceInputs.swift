// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting
public import MoERoutingTraces

/// Opens the trace files named on the command line as one stream, and collects what the readers
/// met on the way (skipped records, lost bytes, inferred shapes).
///
/// A file given twice (the same path, or two paths of one file) is refused, and so is a
/// (problem, domain) key that two inputs hold, in any formats (``DuplicateProblemError``): either
/// would count every token twice.
public final class TraceInputs {
    /// The files, in the order given.
    public let paths: [String]
    /// The files as one stream.
    public let source: any RoutingBlockSource
    private let jsonl: JSONLTraceReader?
    private let binaries: [(String, BinaryTraceReader)]
    private let archives: [(String, NPZTraceReader)]
    /// The options the inputs were read with.
    public let options: TraceReadOptions
    /// Whether the shape came from the data rather than the user or a header.
    public let shapeWasInferred: Bool
    /// Capture settings from binary headers (the first file's value where two differ).
    public let settings: [String: String]
    /// A one-line warning when two inputs store different kinds of weights
    /// (``RoutingConvention/hasComparableWeights(to:)``), else nil.
    public let weightKindMismatch: String?

    /// - Parameter collectTimings: keep the binary inputs' layer-timing records for
    ///   ``takeTimingRecords()`` (convert), not only their sums.
    public init(paths: [String], options: TraceReadOptions, collectTimings: Bool = false) throws {
        self.paths = paths
        try FileIdentity.requireDistinct(paths)
        self.options = options
        var jsonlPaths: [String] = []
        var sources: [any RoutingBlockSource] = []
        var names: [String] = []
        var binaries: [(String, BinaryTraceReader)] = []
        var archives: [(String, NPZTraceReader)] = []
        var settings: [String: String] = [:]
        // Inputs whose header states its convention; one with malformed keys reads as none here.
        var conventions: [(String, RoutingConvention)] = []
        func note(_ path: String, _ s: [String: String]) {
            if let c = (try? RoutingConvention(settings: s)) ?? nil { conventions.append((path, c)) }
        }
        for p in paths {
            switch try TraceFormat.detect(readingPath: p) {
            case .jsonl:
                jsonlPaths.append(p)
            case .binary:
                let r = try BinaryTraceReader(path: p, options: options)
                r.collectsTimingRecords = collectTimings
                binaries.append((p, r))
                sources.append(r)
                names.append(p)
                settings.merge(r.header.settings) { a, _ in a }
                note(p, r.header.settings)
            case .npz:
                let r = try NPZTraceReader(path: p, options: options)
                archives.append((p, r))
                sources.append(r)
                names.append(p)
                settings.merge(r.settings) { a, _ in a }
                note(p, r.settings)
            }
        }
        var jsonlOptions = options
        if jsonlOptions.shape == nil, let first = binaries.first?.1.shape ?? archives.first?.1.shape {
            jsonlOptions.shape = first  // JSONL inputs must follow the binary trace's shape
        }
        if !jsonlPaths.isEmpty {
            let r = try JSONLTraceReader(paths: jsonlPaths, options: jsonlOptions)
            jsonl = r
            sources.insert(r, at: 0)
            names.insert(jsonlPaths.count == 1 ? jsonlPaths[0] : "one of \(jsonlPaths.joined(separator: ", "))", at: 0)
            shapeWasInferred = r.shapeWasInferred
        } else {
            jsonl = nil
            shapeWasInferred = binaries.isEmpty && archives.contains { $0.1.shapeWasInferred }
        }
        self.binaries = binaries
        self.archives = archives
        self.settings = settings
        weightKindMismatch = Self.mismatch(conventions)
        source = sources.count == 1 ? sources[0] : try ConcatenatedSource(sources, names: names)
    }

    /// The stream's shape.
    public var shape: ModelShape { source.shape }

    /// The warning for the first input whose weights do not compare with the first input's.
    private static func mismatch(_ conventions: [(String, RoutingConvention)]) -> String? {
        guard let (firstPath, first) = conventions.first,
            let (otherPath, other) = conventions.dropFirst().first(where: { !$0.1.hasComparableWeights(to: first) })
        else { return nil }
        func kind(_ c: RoutingConvention) -> String {
            "\(c.weightKind), scale \(c.settings[RoutingConvention.Key.weightScale] ?? "\(c.weightScale)")"
        }
        return
            "\(firstPath) stores \(kind(first)) weights but \(otherPath) stores \(kind(other)) weights: weight figures across these inputs do not compare, and the run's capture settings are those of \(firstPath); analyze them separately to compare weights"
    }

    /// One-line warnings for standard error: skipped records by kind, lost bytes.
    public var warnings: [String] {
        var out: [String] = []
        func add(_ name: String, _ s: TraceReadSummary) {
            if s.skippedTotal > 0 {
                let kinds = s.skipped.keys.sorted().map { "\($0.rawValue) \(s.skipped[$0]!)" }.joined(separator: ", ")
                out.append(
                    "\(name): skipped \(s.skippedTotal) bad records (\(kinds)); first: \(s.examples.first ?? "")"
                )
            }
            if s.lostBytes > 0 {
                out.append("\(name): \(s.lostBytes) bytes at the end were lost: \(s.lossReason ?? "incomplete chunk")")
            }
            if s.restartedPositions >= shape.layers {
                out.append(
                    "\(name): \(s.restartedPositions) of the skipped duplicates restart the positions of their (problem, layer): \(JSONLTraceReader.rawLayoutHint)"
                )
            }
        }
        for (name, s) in summaries { add(name, s) }
        if let weightKindMismatch { out.append(weightKindMismatch) }
        if let jsonl, let evidence = jsonl.shapeEvidence {
            out.append("shape inferred from the data: \(evidence.explanation(jsonl.shape))")
        }
        return out
    }

    /// Each reader's summary, named by its file (the JSONL inputs share one).
    private var summaries: [(String, TraceReadSummary)] {
        var out: [(String, TraceReadSummary)] = []
        if let jsonl { out.append((jsonl.paths.count == 1 ? jsonl.paths[0] : "JSONL inputs", jsonl.summary)) }
        for (p, r) in binaries { out.append((p, r.summary)) }
        for (p, r) in archives { out.append((p, r.summary)) }
        return out
    }

    /// Skipped-record counts by kind over all inputs, for JSON output.
    public var skipped: [RecordIssue.Kind: Int] {
        var all: [RecordIssue.Kind: Int] = [:]
        for (_, s) in summaries { all.merge(s.skipped, uniquingKeysWith: +) }
        return all
    }

    /// Bytes lost at the end of the binary inputs (an incomplete last chunk).
    public var lostBytes: Int { binaries.reduce(0) { $0 + $1.1.summary.lostBytes } }

    /// Skipped duplicates whose positions restart below positions already seen.
    public var restartedPositions: Int { jsonl?.summary.restartedPositions ?? 0 }

    /// Whether the restarts look like the seed's raw per-step layout rather than a stray
    /// duplicate: at least one decode step's worth (L records).
    public var looksLikeRawLayout: Bool { restartedPositions >= shape.layers }

    /// How each binary input ended (closed, interrupted, cut off), final once the source has
    /// been drained; JSONL inputs have no end marker and are not listed.
    public var closures: [(path: String, closure: BinaryTraceClosure)] { binaries.map { ($0.0, $0.1.closure) } }

    /// Per-layer timing sums over the binary inputs' layer-timings chunks and the archives'
    /// `timing_*` arrays, or `nil` when none has any; final once the source has been drained.
    public var timing: CaptureReport.Timing? {
        CaptureReport.Timing.merged(
            binaries.compactMap { $0.1.timingTotals } + archives.compactMap { $0.1.timingTotals }
        )
    }

    /// The layer-timing records read since the last call (with `collectTimings`).
    public func takeTimingRecords() -> [LayerTimingRecord] {
        binaries.flatMap { $0.1.takeTimingRecords() } + archives.flatMap { $0.1.takeTimingRecords() }
    }

    /// Whether the shape came from a file (a `.moetrace` header, an `.npz` `shape` array) rather
    /// than from the user or the data.
    public var shapeFromFile: Bool { !binaries.isEmpty || archives.contains { !$0.1.shapeWasInferred } }

    /// Domain names the binary and archive inputs declare (their tokens may not use them all).
    public var declaredDomains: [String] {
        var seen = Set<String>()
        var out: [String] = []
        for name in binaries.flatMap({ $0.1.header.domains }) + archives.flatMap({ $0.1.domains })
        where seen.insert(name).inserted {
            out.append(name)
        }
        return out
    }

    /// What was read and what was left out, for `run.json` and the `input` member of the analysis
    /// JSON (docs/analyzers.md, "The input section"): the records skipped by reason, their total,
    /// the bytes lost, the phase kept and how positions were assigned.
    public func facts(phase: PhaseSelection, droppedTokens: Int) -> ReportValue {
        let skipped = self.skipped
        return .object([
            .init("skipped_records", .object(skipped.keys.sorted().map { .init($0.rawValue, .int(skipped[$0]!)) })),
            .init("skipped_total", .int(skipped.values.reduce(0, +))),
            .init("restarted_positions", .int(restartedPositions)),
            .init("lost_bytes", .int(lostBytes)),
            .init("phase", .string(phase.rawValue)),
            .init("phase_dropped_tokens", .int(droppedTokens)),
            .init("positions", .string(options.positions.rawValue)),
            .init("shape_inferred", .bool(shapeWasInferred)),
        ])
    }

    /// Sentences a reader of a report must see first (``AnalysisResult/notices``): records
    /// skipped, bytes lost, a raw per-step layout read as written.
    public var notices: [String] {
        var out: [String] = []
        let skipped = self.skipped
        let total = skipped.values.reduce(0, +)
        if total > 0 {
            let kinds = skipped.keys.sorted().map { "\(skipped[$0]!) \($0.rawValue)" }.joined(separator: ", ")
            out.append(
                "\(total) bad record\(total == 1 ? " was" : "s were") skipped (\(kinds)); the figures exclude \(total == 1 ? "it" : "them")."
            )
        }
        if looksLikeRawLayout {
            out.append(
                "\(restartedPositions) of the skipped duplicates restart the positions of their (problem, layer): the input looks like the seed's raw per-step layout, and what remains is only each problem's first forward pass; read it with --positions by-order."
            )
        }
        for (p, r) in binaries where r.summary.lostBytes > 0 {
            out.append(
                "\(r.summary.lostBytes) bytes at the end of \(p) were lost (\(r.summary.lossReason ?? "incomplete chunk")); the figures exclude them."
            )
        }
        return out
    }
}
