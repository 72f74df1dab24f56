// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// How a trace reader treats its input.
///
/// ```swift
/// var options = TraceReadOptions()
/// options.shape = .mixtral8x7B      // a record outside it is bad input
/// options.lenient = true            // skip bad records and count them by kind
/// ```
public struct TraceReadOptions: Sendable, Equatable {
    /// The shape the user stated (`--layers/--experts/--top-k` or `--shape`). `nil`: JSONL
    /// readers infer it from the data; binary traces always use their header's.
    public var shape: ModelShape?
    /// Skip bad records and count them (``TraceReadSummary/skipped``) instead of stopping.
    public var lenient: Bool
    /// Domain label for records that carry no dataset field (`--domain`).
    public var defaultDomain: String?
    /// Tokens per emitted block (a bound on memory, not on results).
    public var blockTokens: Int
    /// JSONL only (`--interleaved`): records of different problems may interleave anywhere in the
    /// files, as in a trace dumped per engine step, and a problem may span files. Every problem is
    /// held until the end of the input, so memory grows with the input's routing: L x (9 + 6k)
    /// bytes per token plus array slack, two to three times the trace's `.moetrace` size. Blocks
    /// come out at the end, problems in order of first appearance, each problem's tokens in
    /// position order. `false` (the default): each problem's records must be contiguous, and
    /// memory is bounded by one problem.
    public var interleavedProblems: Bool
    /// JSONL only (`--positions`): where a token's position comes from. See
    /// ``TracePositions``.
    public var positions: TracePositions

    /// Defaults: infer the shape, strict, no default domain, 8192 tokens per block, problems
    /// contiguous, positions as written.
    public init(
        shape: ModelShape? = nil,
        lenient: Bool = false,
        defaultDomain: String? = nil,
        blockTokens: Int = 8192,
        interleavedProblems: Bool = false,
        positions: TracePositions = .asWritten
    ) {
        self.shape = shape
        self.lenient = lenient
        self.defaultDomain = defaultDomain
        self.blockTokens = blockTokens
        self.interleavedProblems = interleavedProblems
        self.positions = positions
    }
}

/// Where a JSONL reader takes each token's position from (`--positions`).
///
/// The seed's raw capture writes `token_pos`, a row's index within its forward batch: the
/// prefill batch numbers the prompt 0, 1, 2, ..., and every decode step of a single request
/// writes 0 again. Read as positions, every decode row then collides with prompt token 0.
/// ``byOrder`` reads such a file correctly:
///
/// ```swift
/// var options = TraceReadOptions()
/// options.positions = .byOrder     // the n-th record of (problem, layer) is token n
/// ```
public enum TracePositions: String, Sendable, Hashable, CaseIterable {
    /// The record's `token_idx`, `token_pos` or `token_id` (the default).
    case asWritten = "as-written"
    /// The index of the record among the records of its (problem, layer), in file order:
    /// prefill rows then decode rows, as the raw capture writes them. The written position is
    /// ignored. Every token must then have a record at every layer: a dropped row shifts the
    /// later tokens of its layer.
    case byOrder = "by-order"
}

/// What a reader met besides good records: records skipped in lenient mode, by kind, and for
/// binary traces the bytes lost to a cut-off or corrupted tail.
public struct TraceReadSummary: Sendable, Equatable {
    /// Records skipped, by kind (lenient mode only; strict mode throws at the first).
    public var skipped: [RecordIssue.Kind: Int] = [:]
    /// Up to 20 examples of skipped records, as one-line errors with their location.
    public var examples: [String] = []
    /// Bytes at the end of a binary trace that did not form a complete, valid chunk.
    public var lostBytes: Int = 0
    /// Why those bytes were lost, if any were.
    public var lossReason: String?
    /// JSONL: of the skipped ``RecordIssue/Kind/duplicateCell`` records, those whose position
    /// restarts below a position already seen for their (problem, layer): the
    /// signature of the seed's raw per-step layout, to be read with ``TracePositions/byOrder``.
    public var restartedPositions: Int = 0

    public init() {}

    /// Total records skipped.
    public var skippedTotal: Int { skipped.values.reduce(0, +) }

    /// Records one skipped record.
    public mutating func skip(_ error: TraceError) {
        skipped[error.issue.kind, default: 0] += 1
        if examples.count < 20 { examples.append(error.description) }
    }
}

/// A bad input found in a trace file, located by file and line (text) or byte offset (binary).
///
/// The description is one line: `FILE:LINE: problem`, ending with how to fix it where there is a
/// fix beyond correcting the record (for example `--lenient`, or stating the shape).
public struct TraceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// 1-based line number, for text formats.
    public var line: Int?
    /// Byte offset, for binary formats.
    public var byteOffset: Int?
    /// What was wrong.
    public var issue: RecordIssue
    /// How to fix it, if there is more to say than the issue.
    public var hint: String?

    public init(path: String, line: Int? = nil, byteOffset: Int? = nil, issue: RecordIssue, hint: String? = nil) {
        self.path = path
        self.line = line
        self.byteOffset = byteOffset
        self.issue = issue
        self.hint = hint
    }

    public var description: String {
        var where_ = path
        if let line { where_ += ":\(line)" }
        if let byteOffset { where_ += " at byte \(byteOffset)" }
        var s = "\(where_): \(issue.detail)"
        if let hint { s += " (\(hint))" }
        return s
    }
}
