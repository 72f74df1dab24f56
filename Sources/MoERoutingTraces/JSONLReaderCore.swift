// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

    private(set) var builder: RoutingBlockBuilder
    private var source: JSONLLineSource?
    private var fileIndex = -1
    private var fileDomain: UInt16?
    private var problem: JSONLProblemBuffer
    private var finished: [JSONLProblemKey: Int] = [:]
    private var pending: [RoutingBlock] = []
    private var done = false

    private var cachedDomainBytes: [UInt8] = []
    private var cachedDomainIndex: UInt16 = 0
    private var hasCachedDomain = false

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
                fileIndex += 1
                guard fileIndex < paths.count else {
                    if builder.tokenCount > 0 { pending.append(builder.makeBlock()) }
                    done = true
                    return
                }
                source = try JSONLLineSource(path: paths[fileIndex])
                fileDomain = nil
                continue
            }
            guard let line = try src.nextLine() else {
                try flushProblem()
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
        let record: JSONLRecord
        let key: JSONLProblemKey
        do {
            guard let r = try parser.parse() else { return }
            record = r
            try JSONLValidation.check(
                r, scratch, layers: shape.layers, experts: shape.experts, topK: shape.topK, boundsAreShape: true
            )
            key = JSONLProblemKey(domain: try domainIndex(r, p), problem: r.problemID)
        } catch {
            try reject(error, line: line)
            return
        }
        if !problem.active || key != problem.key {
            if let earlier = finished[key] {
                try rejectResumed(key, line: line, earlierFile: earlier)
                return
            }
            try flushProblem()
            problem.active = true
            problem.key = key
        }
        let t: Int
        if let existing = problem.token(at: record.position) {
            t = existing
            do {
                try checkSameToken(record, token: t)
            } catch {
                try reject(error, line: line)
                return
            }
        } else {
            t = problem.addToken(
                position: record.position, phase: record.phase, tokenID: record.tokenID, step: record.step, line: line
            )
        }
        problem.setCell(token: t, layer: record.layer, line: line, scratch: scratch)
        recordsRead += 1
    }

    /// Checks a record for a token that already has records: a new layer, the same metadata.
    private func checkSameToken(_ r: JSONLRecord, token t: Int) throws(RecordIssue) {
        func who() -> String { "token \(r.position) of problem \(r.problemID) (\(builder.domains[Int(problem.key.domain)]))" }
        if problem.present[t * shape.layers + r.layer] {
            throw RecordIssue(
                .duplicateCell,
                "a second record for layer \(r.layer) of \(who()); the first is on line \(problem.lines[t * shape.layers + r.layer])"
            )
        }
        if problem.phases[t] != r.phase {
            throw RecordIssue(
                .malformed,
                "\(who()) has phase '\(r.phase)' here but '\(problem.phases[t])' on line \(problem.firstLines[t])"
            )
        }
        if problem.tokenIDs[t] != r.tokenID {
            throw RecordIssue(
                .malformed,
                "\(who()) has vocabulary id \(r.tokenID) here but \(problem.tokenIDs[t]) on line \(problem.firstLines[t])"
            )
        }
        if problem.steps[t] != r.step {
            func name(_ s: UInt32) -> String { s == .max ? "no 'step'" : "'step' \(s)" }
            throw RecordIssue(
                .malformed,
                "\(who()) has \(name(r.step)) here but \(name(problem.steps[t])) on line \(problem.firstLines[t]); all records of a token must carry the same step"
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
            cachedDomainBytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, raw, n) == 0 })
        {
            return cachedDomainIndex
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

    private mutating func register(_ name: String) throws(RecordIssue) -> UInt16 {
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

    /// Hands the current problem's tokens, in position order, to the block builder.
    private mutating func flushProblem() throws {
        guard problem.active else { return }
        finished[problem.key] = fileIndex
        let L = shape.layers
        let k = shape.topK
        let path = paths[fileIndex]
        let order = problem.order()
        // Unsafe buffers: the builder's generic setCell is much cheaper on them than on slices.
        try problem.experts.withUnsafeBufferPointer { experts in
            try problem.weights.withUnsafeBufferPointer { weights in
                for t in order {
                    let bt = builder.appendToken(
                        domainIndex: problem.key.domain, problemID: problem.key.problem,
                        position: problem.positions[t], phase: problem.phases[t], tokenID: problem.tokenIDs[t],
                        step: problem.steps[t]
                    )
                    tokensRead += 1
                    for l in 0..<L where problem.present[t * L + l] {
                        let base = (t * L + l) * k
                        do {
                            try builder.setCell(
                                token: bt, layer: l, experts: UnsafeBufferPointer(rebasing: experts[base..<(base + k)]),
                                weights: UnsafeBufferPointer(rebasing: weights[base..<(base + k)])
                            )
                        } catch let RoutingError.invalidRecord(issue) {
                            recordsRead -= 1
                            try report(
                                TraceError(path: path, line: problem.lines[t * L + l], issue: issue, hint: hint(for: issue))
                            )
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
                path: paths[fileIndex], line: line,
                issue: RecordIssue(.nonContiguousProblem, "records of \(who) resume at line \(line) after other problems"),
                hint: "sort the file by problem first"
            )
        } else {
            error = TraceError(
                path: paths[fileIndex], line: line,
                issue: RecordIssue(
                    .nonContiguousProblem,
                    "records of \(who) appear at line \(line), but that problem was already read from \(paths[earlierFile])"
                ),
                hint: "keep each problem's records in one file"
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
