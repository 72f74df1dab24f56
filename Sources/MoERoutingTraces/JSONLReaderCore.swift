// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// The state of a ``JSONLTraceReader``, kept in a struct so the per-record path runs without
/// class-property access checks.
struct JSONLReaderCore {
    static let tooLongIssue = RecordIssue(
        .malformed,
        "line is longer than \(JSONLLineSource.maximumLineBytes >> 20) MiB; a JSONL record is one short line"
    )

    let shape: ModelShape
    let options: TraceReadOptions
    let paths: [String]
    let shapeWasInferred: Bool
    private let blockTokens: Int
    private let scratch = JSONLScratch()
    /// ``TraceReadOptions/interleavedProblems``.
    private let interleaved: Bool
    /// ``TraceReadOptions/positions`` is ``TracePositions/byOrder``.
    private let byOrder: Bool

    private(set) var builder: RoutingBlockBuilder
    private var source: JSONLLineSource?
    private var fileIndex = -1
    private var fileDomain: UInt16?
    private var problem: JSONLProblemBuffer
    private var finished: [JSONLProblemKey: Int] = [:]
    private var pending: [RoutingBlock] = []
    private var done = false

    // Interleaved mode: every problem's buffer, in order of first appearance, and its slot by key.
    // The current problem lives in `problem`; its slot then holds an empty buffer, swapped back
    // in O(1) when another problem's record comes. Stored lines carry their file index above
    // `lineBits` (`fileTag`), since a problem may span files. Keys hold indices into
    // `heldDomains`; a domain reaches the block builder only when its first problem is emitted
    // (see `drainOpenProblem`), so the blocks' domain tables grow as in streaming mode.
    private var open: [JSONLProblemBuffer] = []
    private var openSlots: [JSONLProblemKey: Int] = [:]
    private var openFirstFiles: [Int] = []
    private var heldDomains: [String] = []
    private var heldDomainIndex: [String: UInt16] = [:]
    private var currentSlot = -1
    private var drained = 0
    private var fileTag = 0
    private static let lineBits = 40

    private var cachedDomainBytes: [UInt8] = []
    private var cachedDomainIndex: UInt16 = 0
    private var hasCachedDomain = false
    /// The first `knownDomainLimit` `dataset` spellings met and their indices, looked through when
    /// the record's domain is not the last one's (records of several domains interleaved).
    private var knownDomains: [(bytes: [UInt8], index: UInt16)] = []
    private static let knownDomainLimit = 32

    private(set) var summary = TraceReadSummary()
    private(set) var linesRead = 0
    private(set) var recordsRead = 0
    private(set) var tokensRead = 0
    private var bytesOfClosedFiles = 0

    init(shape: ModelShape, options: TraceReadOptions, paths: [String], shapeWasInferred: Bool) {
        self.shape = shape
        self.options = options
        self.paths = paths
        self.shapeWasInferred = shapeWasInferred
        self.blockTokens = max(1, options.blockTokens)
        self.interleaved = options.interleavedProblems
        self.byOrder = options.positions == .byOrder
        self.builder = RoutingBlockBuilder(shape: shape)
        self.problem = JSONLProblemBuffer(layers: shape.layers, topK: shape.topK)
    }

    /// Bytes read from the files so far.
    var bytesRead: Int { bytesOfClosedFiles + (source?.bytesRead ?? 0) }

    // MARK: - Reading

    mutating func nextBlock() throws -> RoutingBlock? {
        while pending.isEmpty {
            if done { return nil }
            try advance()
        }
        return pending.removeFirst()
    }

    /// Reads lines until a block is ready or the stream ends.
    private mutating func advance() throws {
        while pending.isEmpty {
            guard let src = source else {
                guard fileIndex + 1 < paths.count else {
                    if interleaved, try drainOpenProblem() { continue }
                    if builder.tokenCount > 0 { pending.append(builder.makeBlock()) }
                    done = true
                    return
                }
                fileIndex += 1
                source = try JSONLLineSource(path: paths[fileIndex])
                fileDomain = nil
                if interleaved { fileTag = fileIndex << Self.lineBits }
                continue
            }
            guard let line = try src.nextLine() else {
                if !interleaved { try flushProblem() }
                bytesOfClosedFiles += src.bytesRead
                source = nil
                continue
            }
            linesRead += 1
            switch line {
            case .tooLong:
                try reject(Self.tooLongIssue, line: src.lineNumber)
            case .text(let p, let count):
                try process(p, count, line: src.lineNumber)
            }
        }
    }

    /// Parses, checks and stores one line's record.
    @inline(__always)
    private mutating func process(_ p: UnsafePointer<UInt8>, _ count: Int, line: Int) throws {
        var parser = JSONLRecordParser(line: p, count: count, scratch: scratch)
        var record: JSONLRecord
        let key: JSONLProblemKey
        do {
            guard let r = try parser.parse() else { return }
            record = r
            try JSONLValidation.check(
                r,
                scratch,
                layers: shape.layers,
                experts: shape.experts,
                topK: shape.topK,
                boundsAreShape: true
            )
            key = JSONLProblemKey(domain: try domainIndex(r, p), problem: r.problemID)
        } catch {
            try reject(error, line: line)
            return
        }
        if !problem.active || key != problem.key {
            if interleaved {
                switchProblem(to: key)
            } else {
                if let earlier = finished[key] {
                    try rejectResumed(key, line: line, earlierFile: earlier)
                    return
                }
                try flushProblem()
                problem.active = true
                problem.key = key
            }
        }
        let stored = line | fileTag  // the line as buffers keep it
        if byOrder { record.position = problem.nextOrderPosition(layer: record.layer) }
        let t: Int
        if let existing = problem.token(at: record.position) {
            t = existing
            do {
                try checkSameToken(record, token: t)
            } catch {
                if error.kind == .duplicateCell, !byOrder,
                    problem.restarts(layer: record.layer, position: record.position)
                {
                    try rejectRestarted(error, line: line)
                } else {
                    try reject(error, line: line)
                }
                return
            }
        } else {
            t = problem.addToken(
                position: record.position,
                phase: record.phase,
                tokenID: record.tokenID,
                step: record.step,
                line: stored
            )
        }
        problem.setCell(token: t, layer: record.layer, line: stored, scratch: scratch)
        recordsRead += 1
    }

    /// Checks a record for a token that already has records: a new layer, the same metadata.
    private func checkSameToken(_ r: JSONLRecord, token t: Int) throws(RecordIssue) {
        func who() -> String { "token \(r.position) of problem \(r.problemID) (\(domainName(problem.key.domain)))" }
        if problem.present[t * shape.layers + r.layer] {
            throw RecordIssue(
                .duplicateCell,
                "a second record for layer \(r.layer) of \(who()); the first is on \(lineName(problem.lines[t * shape.layers + r.layer]))"
            )
        }
        if problem.phases[t] != r.phase {
            throw RecordIssue(
                .malformed,
                "\(who()) has phase '\(r.phase)' here but '\(problem.phases[t])' on \(lineName(problem.firstLines[t]))"
            )
        }
        if problem.tokenIDs[t] != r.tokenID {
            throw RecordIssue(
                .malformed,
                "\(who()) has vocabulary id \(r.tokenID) here but \(problem.tokenIDs[t]) on \(lineName(problem.firstLines[t]))"
            )
        }
        if problem.steps[t] != r.step {
            func name(_ s: UInt32) -> String { s == .max ? "no 'step'" : "'step' \(s)" }
            throw RecordIssue(
                .malformed,
                "\(who()) has \(name(r.step)) here but \(name(problem.steps[t])) on \(lineName(problem.firstLines[t])); all records of a token must carry the same step"
            )
        }
    }

    // MARK: - Domains

    /// The domain index of a record: its `dataset`, else the file's default domain.
    @inline(__always)
    private mutating func domainIndex(_ r: JSONLRecord, _ line: UnsafePointer<UInt8>) throws(RecordIssue) -> UInt16 {
        let n = r.datasetEnd - r.datasetStart
        guard r.datasetStart >= 0, n > 0 else { return try fileDomainIndex() }
        let raw = line + r.datasetStart
        if hasCachedDomain, cachedDomainBytes.count == n,
            cachedDomainBytes.withUnsafeBufferPointer({ LibC.memcmp($0.baseAddress!, raw, n) == 0 })
        {
            return cachedDomainIndex
        }
        return try newDomainIndex(r, raw, n)
    }

    /// The domain index of a record whose `dataset` differs from the last record's.
    @inline(never)
    private mutating func newDomainIndex(
        _ r: JSONLRecord,
        _ raw: UnsafePointer<UInt8>,
        _ n: Int
    ) throws(RecordIssue) -> UInt16 {
        for known in knownDomains where known.bytes.count == n {
            if known.bytes.withUnsafeBufferPointer({ LibC.memcmp($0.baseAddress!, raw, n) == 0 }) {
                cachedDomainBytes = known.bytes
                cachedDomainIndex = known.index
                return known.index
            }
        }
        let rawBytes = UnsafeBufferPointer(start: raw, count: n)
        let decoded = r.datasetEscaped ? JSONLRecordParser.unescape(rawBytes) : Array(rawBytes)
        guard let name = String(validating: decoded, as: UTF8.self) else {
            throw RecordIssue(.malformed, "field 'dataset' is not valid UTF-8")
        }
        let index = try register(name)
        cachedDomainBytes = Array(rawBytes)
        cachedDomainIndex = index
        hasCachedDomain = true
        if knownDomains.count < Self.knownDomainLimit { knownDomains.append((cachedDomainBytes, index)) }
        return index
    }

    /// The domain of records without `dataset` in the current file: `options.defaultDomain`,
    /// else the file's base name without its extension.
    private mutating func fileDomainIndex() throws(RecordIssue) -> UInt16 {
        if let fileDomain { return fileDomain }
        let name = options.defaultDomain ?? Self.baseName(paths[fileIndex])
        let index = try register(name)
        fileDomain = index
        return index
    }

    /// The index of a domain name for problem keys: the builder's, or in interleaved mode the
    /// reader's own (`heldDomains`).
    private mutating func register(_ name: String) throws(RecordIssue) -> UInt16 {
        guard interleaved else { return try registerInBuilder(name) }
        if let i = heldDomainIndex[name] { return i }
        guard heldDomains.count <= Int(UInt16.max) else {
            throw RecordIssue(.malformed, "more than 65536 distinct domains")
        }
        let i = UInt16(heldDomains.count)
        heldDomains.append(name)
        heldDomainIndex[name] = i
        return i
    }

    /// The name of a problem key's domain.
    private func domainName(_ index: UInt16) -> String {
        interleaved ? heldDomains[Int(index)] : builder.domains[Int(index)]
    }

    /// Interleaved mode: the builder's index of a held domain, registering it there when new.
    private mutating func builderDomain(_ held: UInt16) throws(RecordIssue) -> UInt16 {
        try registerInBuilder(heldDomains[Int(held)])
    }

    private mutating func registerInBuilder(_ name: String) throws(RecordIssue) -> UInt16 {
        do {
            return try builder.domainIndex(of: name)
        } catch let RoutingError.invalidRecord(issue) {
            throw issue
        } catch {
            throw RecordIssue(.malformed, "\(error)")
        }
    }

    /// `dir/name.ext` -> `name`.
    static func baseName(_ path: String) -> String {
        let file = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
        guard let dot = file.lastIndex(of: "."), dot != file.startIndex else { return file }
        return String(file[..<dot])
    }

    // MARK: - Problems and blocks

    /// Interleaved mode: makes `key`'s buffer the current problem, opening one on its first record.
    /// O(1): buffers are swapped, never copied.
    private mutating func switchProblem(to key: JSONLProblemKey) {
        if problem.active { swap(&problem, &open[currentSlot]) }
        if let slot = openSlots[key] {
            currentSlot = slot
        } else {
            currentSlot = open.count
            openSlots[key] = currentSlot
            open.append(JSONLProblemBuffer(layers: shape.layers, topK: shape.topK))
            openFirstFiles.append(fileIndex)
        }
        swap(&problem, &open[currentSlot])
        problem.active = true
        problem.key = key
    }

    /// Interleaved mode, at the end of the input: hands the next open problem (in order of first
    /// appearance) to the block builder and frees its buffer; `false` when none is left.
    ///
    /// The builder learns the problem's domain now, and the next problem's too when that one
    /// first appeared in the same file: streaming mode has read the next problem's first record
    /// when it emits a problem, except at the end of a file. A contiguous input so gets blocks
    /// with the same domain tables both ways.
    private mutating func drainOpenProblem() throws -> Bool {
        if problem.active {
            swap(&problem, &open[currentSlot])
            currentSlot = -1
        }
        guard drained < open.count else {
            openSlots = [:]
            open = []
            return false
        }
        let i = drained
        swap(&problem, &open[i])
        drained += 1
        let domain = try builderDomain(problem.key.domain)
        if i + 1 < open.count, openFirstFiles[i + 1] == openFirstFiles[i] {
            _ = try builderDomain(open[i + 1].key.domain)
        }
        try flushProblem(domain: domain)
        problem = JSONLProblemBuffer(layers: shape.layers, topK: shape.topK)
        return true
    }

    /// A stored line for messages: `line N`, or in interleaved mode `line N of PATH` when it is
    /// in another file than the one being read.
    private func lineName(_ stored: Int) -> String {
        guard interleaved else { return "line \(stored)" }
        let (file, line) = location(stored)
        return file == fileIndex ? "line \(line)" : "line \(line) of \(paths[file])"
    }

    /// The file index and line of a stored line.
    private func location(_ stored: Int) -> (file: Int, line: Int) {
        guard interleaved else { return (fileIndex, stored) }
        return (stored >> Self.lineBits, stored & ((1 << Self.lineBits) - 1))
    }

    /// Hands the current problem's tokens, in position order, to the block builder.
    ///
    /// - Parameter domain: the builder's index of the problem's domain; `nil`: the key's (streaming
    ///   mode, where keys hold the builder's indices).
    private mutating func flushProblem(domain: UInt16? = nil) throws {
        guard problem.active else { return }
        let domainIndex = domain ?? problem.key.domain
        if !interleaved { finished[problem.key] = fileIndex }
        let L = shape.layers
        let k = shape.topK
        let order = problem.order()
        // Unsafe buffers: the builder's generic setCell is much cheaper on them than on slices.
        try problem.experts.withUnsafeBufferPointer { experts in
            try problem.weights.withUnsafeBufferPointer { weights in
                for t in order {
                    let bt = builder.appendToken(
                        domainIndex: domainIndex,
                        problemID: problem.key.problem,
                        position: problem.positions[t],
                        phase: problem.phases[t],
                        tokenID: problem.tokenIDs[t],
                        step: problem.steps[t]
                    )
                    tokensRead += 1
                    for l in 0..<L where problem.present[t * L + l] {
                        let base = (t * L + l) * k
                        do {
                            try builder.setCell(
                                token: bt,
                                layer: l,
                                experts: UnsafeBufferPointer(rebasing: experts[base..<(base + k)]),
                                weights: UnsafeBufferPointer(rebasing: weights[base..<(base + k)])
                            )
                        } catch let RoutingError.invalidRecord(issue) {
                            recordsRead -= 1
                            let (file, line) = location(problem.lines[t * L + l])
                            try report(TraceError(path: paths[file], line: line, issue: issue, hint: hint(for: issue)))
                        }
                    }
                    if builder.tokenCount >= blockTokens { pending.append(builder.makeBlock()) }
                }
            }
        }
        problem.reset()
    }

    // MARK: - Bad input

    /// Throws (strict) or counts (lenient) a bad record.
    private mutating func reject(_ issue: RecordIssue, line: Int) throws(TraceError) {
        let path = fileIndex >= 0 && fileIndex < paths.count ? paths[fileIndex] : "?"
        try report(TraceError(path: path, line: line, issue: issue, hint: hint(for: issue)))
    }

    /// Throws (strict) or counts (lenient) a second record for a cell whose position restarts
    /// the positions of its (problem, layer): the seed's raw per-step layout.
    private mutating func rejectRestarted(_ issue: RecordIssue, line: Int) throws(TraceError) {
        let path = fileIndex >= 0 && fileIndex < paths.count ? paths[fileIndex] : "?"
        let error = TraceError(path: path, line: line, issue: issue, hint: Self.rawLayoutHint)
        guard options.lenient else { throw error }
        summary.restartedPositions += 1
        summary.skip(error)
    }

    /// What a duplicate record with restarting positions means, and the fix.
    static let rawLayoutHint =
        "this looks like the seed's raw per-step layout, where token_pos is a row's index within its forward batch and restarts every step; read it with --positions by-order"

    private mutating func report(_ error: TraceError) throws(TraceError) {
        guard options.lenient else { throw error }
        summary.skip(error)
    }

    /// A record of a problem that already ended.
    private mutating func rejectResumed(_ key: JSONLProblemKey, line: Int, earlierFile: Int) throws(TraceError) {
        let who = "problem \(key.problem) (\(builder.domains[Int(key.domain)]))"
        let error: TraceError
        if earlierFile == fileIndex {
            error = TraceError(
                path: paths[fileIndex],
                line: line,
                issue: RecordIssue(
                    .nonContiguousProblem,
                    "records of \(who) resume at line \(line) after other problems"
                ),
                hint: "sort the file by problem first, or read it with --interleaved (holds every problem in memory)"
            )
        } else {
            error = TraceError(
                path: paths[fileIndex],
                line: line,
                issue: RecordIssue(
                    .nonContiguousProblem,
                    "records of \(who) appear at line \(line), but that problem was already read from \(paths[earlierFile])"
                ),
                hint:
                    "keep each problem's records in one file, or read them with --interleaved (holds every problem in memory)"
            )
        }
        try report(error)
    }

    /// How to fix a bad record beyond correcting it.
    private func hint(for issue: RecordIssue) -> String? {
        if options.lenient { return nil }
        switch issue.kind {
        case .layerOutOfRange, .expertOutOfRange, .topKMismatch:
            return shapeWasInferred
                ? "the shape \(shape) was inferred from the files; use --lenient to skip such records"
                : "the stated shape is \(shape); state the right shape, or use --lenient to skip such records"
        default:
            return "use --lenient to skip bad records"
        }
    }
}
