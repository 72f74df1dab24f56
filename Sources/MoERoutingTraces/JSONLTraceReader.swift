// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Reads seed-format JSONL routing traces (one JSON object per token-layer record) as a stream
/// of ``RoutingBlock``s.
///
/// Both spellings of a record are accepted, keys in any order, unknown keys ignored:
/// - shared data: `{"dataset": "gsm8k", "problem_id": 0, "layer": 0, "experts": [7, 0],
///   "gating_probs": [0.80, 0.20], "token_idx": 0}` (a raw variant writes `token_pos`);
/// - the seed's docs: `{"problem_id": 0, "layer": 0, "token_id": 0, "expert_ids": [3, 7],
///   "weights": [0.6, 0.4]}`, where `token_id` is the token's position in its problem, not a
///   vocabulary id;
/// - and the optional keys ``JSONLTraceWriter`` adds: `"phase": "prefill"|"decode"`,
///   `"token"` (the vocabulary id) and `"step"` (the engine step that routed the token, an
///   integer in 0...4294967294, or `null` for unknown).
///
/// Field meanings: the position is `token_idx`, `token_pos` or `token_id` (one per record). A
/// record without `phase` is a decode token (the seed kept decode tokens only); without `token`
/// its vocabulary id is -1; without `step` its step is unknown. A block gets a
/// ``RoutingBlock/step`` column when one of its tokens has a step. The domain is `dataset` when present and non-empty, else
/// ``TraceReadOptions/defaultDomain``, else the file's base name without its extension
/// (`runs/gsm8k.jsonl` -> `gsm8k`).
///
/// The file is read in 4 MiB chunks, never whole. By default the records of one (domain, problem)
/// must be contiguous; within a problem they may come in any order (the shared data is layer-major, the
/// writer token-major). The reader holds the current problem's records until the problem ends,
/// then emits its tokens in position order, in blocks of about ``TraceReadOptions/blockTokens``
/// tokens; memory is bounded by one problem. Blocks are built by ``RoutingBlockBuilder``, so each
/// cell's experts are ordered by weight, highest first.
///
/// Traces dumped per engine step interleave the records of many problems. Read them with
/// ``TraceReadOptions/interleavedProblems`` (`--interleaved`): records of different problems may
/// then come in any order, and a problem may span files. Every problem is held until the end of
/// the input (memory grows with the input's routing, two to three times its `.moetrace` size);
/// the blocks then come out, problems in order of first appearance, each exactly as a contiguous
/// file would give them. Time stays O(records).
///
/// Without a stated shape (``TraceReadOptions/shape`` `nil`) a fast pre-pass over all files infers
/// it: L = largest layer + 1, E = largest expert id + 1, k = the first record's expert count, with
/// the evidence in ``shapeEvidence``. An empty input then throws, since there is nothing to infer
/// from.
///
/// The seed's raw per-step capture writes `token_pos`, a row's index within its forward batch, so
/// decode rows reuse position 0. A second record for a cell whose position lies below one already
/// seen for its (problem, layer) is reported with ``rawLayoutHint`` (strict) or counted in
/// ``TraceReadSummary/restartedPositions`` (lenient); ``TracePositions/byOrder`` reads such files.
///
/// Bad input (each a ``TraceError`` naming file, line and problem): a malformed line (not JSON,
/// a missing or mistyped field, `experts` and weights of different lengths, a line over 64 MiB),
/// an expert id outside 0..<E, a layer outside 0..<L, an expert count other than k, a duplicate
/// expert in a record, a NaN, infinite or negative weight (`NaN`/`Infinity` are read as numbers
/// for this), a second record for a (token, layer), a token whose phase, vocabulary id or `step`
/// differs between records (a record without `step` counts as unknown), a `step` outside
/// 0...4294967294, and, unless ``TraceReadOptions/interleavedProblems`` is set, records of a
/// problem after other problems (``RecordIssue/Kind/nonContiguousProblem``, also when a
/// (domain, problem) appears in two files). Strict mode throws the first; lenient
/// mode skips each bad record and counts it in ``summary``. Blank lines are skipped; CRLF line
/// ends and a missing final newline are fine.
///
/// ```swift
/// let reader = try JSONLTraceReader(path: "mixtral_gsm8k_2problems_routing.jsonl")
/// print(reader.shape)                      // L=32 E=8 k=2 (inferred)
/// while let block = try reader.nextBlock() { stats.add(block) }
/// print(reader.recordsRead, reader.summary.skippedTotal)
/// ```
public final class JSONLTraceReader: RoutingBlockSource {
    /// The shape of every block: the stated one, or the one inferred from the files.
    public let shape: ModelShape
    /// Whether ``shape`` was inferred by the pre-pass (no shape was stated).
    public let shapeWasInferred: Bool
    /// What an inferred ``shape`` rests on (how many rows use the highest layer and expert id);
    /// `nil` when the shape was stated.
    public let shapeEvidence: JSONLShapeEvidence?
    /// The files, read in order as one stream.
    public let paths: [String]
    /// The options the reader was created with.
    public let options: TraceReadOptions

    private var core: JSONLReaderCore

    /// Opens one trace file.
    ///
    /// - Throws: ``TraceFileError`` when the file cannot be read; ``TraceError`` when inferring
    ///   the shape fails (strict mode: the first bad record; any mode: no records).
    public convenience init(path: String, options: TraceReadOptions = TraceReadOptions()) throws {
        try self.init(paths: [path], options: options)
    }

    /// Opens several trace files, read in order as one stream with one shape (stated, or inferred
    /// across all of them). A domain may span files; a (domain, problem) may not, unless
    /// ``TraceReadOptions/interleavedProblems`` is set.
    ///
    /// - Throws: ``TraceFileError`` when a file cannot be read; ``TraceError`` when inferring the
    ///   shape fails.
    public init(paths: [String], options: TraceReadOptions = TraceReadOptions()) throws {
        for path in paths { try Self.checkReadable(path) }
        if let stated = options.shape {
            shape = stated
            shapeWasInferred = false
            shapeEvidence = nil
        } else {
            (shape, shapeEvidence) = try JSONLShapeInference.inferWithEvidence(paths: paths, lenient: options.lenient)
            shapeWasInferred = true
        }
        self.paths = paths
        self.options = options
        core = JSONLReaderCore(shape: shape, options: options, paths: paths, shapeWasInferred: shapeWasInferred)
    }

    /// Infers one shape across `paths` with the pre-pass the reader uses when no shape is stated:
    /// L = largest layer + 1, E = largest expert id + 1 (at least k), k = the first record's
    /// expert count.
    ///
    /// ```swift
    /// let shape = try JSONLTraceReader.inferShape(paths: ["a.jsonl", "b.jsonl"])
    /// ```
    ///
    /// - Parameter lenient: leave bad records out instead of throwing at the first.
    /// - Throws: ``TraceFileError`` when a file cannot be read; ``TraceError`` for a bad record
    ///   (strict), a record whose expert count differs from the first record's (strict), or when
    ///   the files hold no record.
    /// - Complexity: one pass over the files, O(1) memory.
    public static func inferShape(paths: [String], lenient: Bool = false) throws -> ModelShape {
        for path in paths { try checkReadable(path) }
        return try JSONLShapeInference.infer(paths: paths, lenient: lenient)
    }

    /// The next block, or `nil` at the end of the last file.
    ///
    /// - Throws: ``TraceError`` for bad input in strict mode; ``TraceFileError`` when reading fails.
    public func nextBlock() throws -> RoutingBlock? { try core.nextBlock() }

    /// Records skipped in lenient mode, by kind, with examples.
    public var summary: TraceReadSummary { core.summary }
    /// Lines read so far, blank and bad ones included.
    public var linesRead: Int { core.linesRead }
    /// Good records (present token-layer cells) read so far.
    public var recordsRead: Int { core.recordsRead }
    /// Tokens emitted in blocks so far.
    public var tokensRead: Int { core.tokensRead }
    /// Bytes read from the files so far.
    public var bytesRead: Int { core.bytesRead }
    /// Domain names seen so far, in block index order (in interleaved mode, those of the problems
    /// emitted so far).
    public var domains: [String] { core.builder.domains }

    /// The advice given with a duplicate record whose position restarts the positions of its
    /// (problem, layer): the input looks like the seed's raw per-step layout; read it with
    /// ``TracePositions/byOrder``.
    public static var rawLayoutHint: String { JSONLReaderCore.rawLayoutHint }

    /// Throws a clear error when a file cannot be opened for reading (missing, a directory, ...).
    private static func checkReadable(_ path: String) throws(TraceFileError) {
        _ = try JSONLLineSource(path: path)
    }
}
