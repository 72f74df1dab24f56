// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `.moetrace` reader: validates the header, then yields one block per block chunk, checking
// every chunk's checksum. A file cut off mid-chunk yields every complete chunk and records what
// was lost; corruption stops the read (strict) or is skipped by finding the next chunk (lenient).

public import MoERouting

/// Reads a `.moetrace` binary trace back as routing blocks, one per block chunk written.
///
/// The shape comes from the file's header. Reading never crashes or hangs, whatever the bytes:
/// - A file that ends inside a chunk (a writer that was killed) is not an error: every complete
///   chunk is returned, then ``summary`` records the lost bytes and why
///   (``TraceReadSummary/lostBytes``, ``TraceReadSummary/lossReason``).
/// - A corrupt chunk (checksum mismatch, impossible length, values outside the shape) throws a
///   ``TraceError`` with its byte offset in strict mode (the default). In lenient mode it is
///   skipped and counted as ``RecordIssue/Kind/corruptChunk`` (or by the kind of its bad value)
///   when the next chunk can be found; otherwise reading stops and the loss is recorded.
///
/// Memory is bounded by one chunk: each chunk is read with one large positioned read, its CRC
/// checked, and its columns copied in bulk into the block's arrays.
/// ``TraceReadOptions/blockTokens`` does not apply: blocks come back as they were written. A
/// block chunk with the optional step column (tag 32, `u32` or `u64`) gives a block with
/// ``RoutingBlock/step``; one without it gives `step == nil`.
///
/// ```swift
/// let reader = try BinaryTraceReader(path: "run.moetrace")
/// while let block = try reader.nextBlock() { try analyzers.consume(block) }
/// if let why = reader.summary.lossReason { print("warning: \(why)") }
/// ```
public final class BinaryTraceReader: RoutingBlockSource {
    /// The file read.
    public let path: String
    /// The file's header: format version, shape, initial domain names, settings.
    public let header: BinaryTraceHeader
    /// The options in force.
    public let options: TraceReadOptions
    /// The shape of every block (from the header).
    public var shape: ModelShape { header.shape }
    /// The domain table so far: the header's names, then those introduced by domain chunks.
    public private(set) var domains: [String]
    /// Skipped chunks (lenient) and bytes lost at the end.
    public private(set) var summary = TraceReadSummary()
    /// What has been returned so far.
    public private(set) var totals = BinaryTraceTotals()
    /// The totals the writer recorded in its end chunk, once that chunk has been read; `nil`
    /// before the end or when the file was never closed cleanly.
    public private(set) var endTotals: BinaryTraceTotals?
    /// Per-layer sums of the layer-timings chunks passed so far (they are read on the way to
    /// the blocks, so the sums are final once ``nextBlock()`` has returned `nil`); `nil` while
    /// no timing chunk has been read, and for traces captured without timing.
    public private(set) var timingTotals: TraceTimingTotals?
    /// Whether to keep the layer-timing records themselves, not only their sums, for
    /// ``takeTimingRecords()`` (a converter carrying them to another file sets this before
    /// reading). Off by default: the records of a long run take 16 x L bytes per step.
    public var collectsTimingRecords = false
    private var timingRecords: [LayerTimingRecord] = []

    /// The layer-timing records read since the last call, in file order (with
    /// ``collectsTimingRecords`` set; otherwise always empty). Timing chunks are read on the way
    /// to the blocks, so after ``nextBlock()`` has returned `nil` every record has been offered.
    ///
    /// ```swift
    /// reader.collectsTimingRecords = true
    /// while let block = try reader.nextBlock() {
    ///     try writer.write(block)
    ///     try writer.writeTimings(reader.takeTimingRecords())
    /// }
    /// ```
    public func takeTimingRecords() -> [LayerTimingRecord] {
        defer { timingRecords = [] }
        return timingRecords
    }
    /// Whether the end chunk was read: the writer closed the file (cleanly or after an
    /// interruption, see ``closure``).
    public var isComplete: Bool { endTotals != nil }
    /// How the file ended, final once ``nextBlock()`` has returned `nil`: ``BinaryTraceClosure/closed``
    /// or ``BinaryTraceClosure/interrupted(completed:total:)`` from the end chunk, or
    /// ``BinaryTraceClosure/cutOff`` when there is none (also before the end has been reached).
    public var closure: BinaryTraceClosure { endClosure ?? .cutOff }
    private var endClosure: BinaryTraceClosure?
    /// The file's size in bytes when it was opened.
    public var fileSize: Int { file.size }

    private let file: BinaryInputFile
    private var offset: Int
    private var finished = false
    private var skippedChunks = 0
    private var frame = [UInt8](repeating: 0, count: BinaryTraceFormat.frameSize)
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// Opens a trace and reads its header.
    ///
    /// - Parameters:
    ///   - path: A `.moetrace` file.
    ///   - options: ``TraceReadOptions/lenient`` selects lenient recovery; ``TraceReadOptions/shape``,
    ///     when stated, must equal the header's shape.
    /// - Throws: ``TraceFileError`` when the file cannot be opened; ``TraceError`` when it is not a
    ///   `.moetrace` file, has an unsupported version, a corrupt header, or a shape other than the
    ///   stated one.
    public init(path: String, options: TraceReadOptions = TraceReadOptions()) throws {
        self.path = path
        self.options = options
        let file = try BinaryInputFile(path: path)
        self.file = file
        func fail(_ at: Int, _ message: String, hint: String? = nil) -> TraceError {
            TraceError(path: path, byteOffset: at, issue: RecordIssue(.malformed, message), hint: hint)
        }
        let fmt = BinaryTraceFormat.self
        let prefix = try file.read(count: fmt.headerPrefixSize, at: 0)
        guard prefix.count >= fmt.magic.count, Array(prefix[0..<fmt.magic.count]) == fmt.magic else {
            throw fail(0, TraceFormat.notBinaryTraceMessage(prefix))
        }
        guard prefix.count == fmt.headerPrefixSize else {
            throw fail(
                0,
                "the file ends inside the .moetrace header (\(prefix.count) bytes): it is not a complete trace"
            )
        }
        let major = Int(UInt16(prefix[8]) | UInt16(prefix[9]) << 8)
        let minor = Int(UInt16(prefix[10]) | UInt16(prefix[11]) << 8)
        guard major == fmt.currentMajorVersion else {
            throw fail(
                8,
                "this is a .moetrace binary trace of format version \(major).\(minor), but this reader supports only version \(fmt.currentMajorVersion).x",
                hint: major > fmt.currentMajorVersion ? "read it with a newer moe-routing" : nil
            )
        }
        let payloadLength = Int(
            UInt32(prefix[12]) | UInt32(prefix[13]) << 8 | UInt32(prefix[14]) << 16 | UInt32(prefix[15]) << 24
        )
        guard payloadLength <= fmt.maximumHeaderPayload else {
            throw fail(12, "the header claims an impossible length of \(payloadLength) bytes: the header is corrupt")
        }
        let headerSize = fmt.headerPrefixSize + payloadLength + 4
        let bytes = try file.read(count: headerSize, at: 0)
        guard bytes.count == headerSize else {
            throw fail(
                0,
                "the file ends inside the .moetrace header (\(bytes.count) of \(headerSize) bytes): it is not a complete trace"
            )
        }
        let (stored, computed) = bytes.withUnsafeBytes { raw in
            (
                raw.binaryLoadLE(UInt32.self, at: headerSize - 4),
                CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(headerSize - 4)]))
            )
        }
        guard stored == computed else {
            throw fail(
                0,
                "header checksum mismatch (stored \(binaryHex(stored)), computed \(binaryHex(computed))): the header is corrupt"
            )
        }
        let parsed = bytes.withUnsafeBytes { raw in
            Result { () throws(BinaryFormatProblem) -> BinaryTraceHeader in
                try BinaryTraceHeader.decodePayload(
                    UnsafeRawBufferPointer(rebasing: raw[fmt.headerPrefixSize..<(headerSize - 4)]),
                    major: major,
                    minor: minor
                )
            }
        }
        let decoded: BinaryTraceHeader
        switch parsed {
        case .success(let h): decoded = h
        case .failure(let problem): throw fail(fmt.headerPrefixSize, problem.message)
        }
        if let stated = options.shape,
            stated.layers != decoded.shape.layers || stated.experts != decoded.shape.experts
                || stated.topK != decoded.shape.topK
        {
            throw TraceError(
                path: path,
                byteOffset: 16,
                issue: RecordIssue(
                    .malformed,
                    "the stated shape \(stated) differs from the shape in the file's header, \(decoded.shape)"
                ),
                hint: "a .moetrace file carries its own shape; drop the shape options or state the header's"
            )
        }
        self.header = decoded
        self.domains = decoded.domains
        self.offset = headerSize
    }

    deinit {
        buffer.deallocate()
    }

    /// Closes the file; later calls to ``nextBlock()`` return `nil`.
    public func close() {
        finished = true
        file.close()
    }

    // MARK: - Reading

    /// The next block, or `nil` at the end of the file, at the end chunk, or at a cut-off or
    /// unrecoverable tail (see ``summary``).
    ///
    /// - Throws: ``TraceError`` with the byte offset of a corrupt chunk (strict mode), of a chunk
    ///   kind or column this reader does not know and may not skip, or of bytes after the end
    ///   chunk (strict mode).
    public func nextBlock() throws -> RoutingBlock? {
        let f = BinaryTraceFormat.frameSize
        while !finished {
            let pos = offset
            let have = try frame.withUnsafeMutableBytes { try file.read(into: $0, at: pos) }
            if have == 0 {
                finished = true
                return nil
            }
            if have < f {
                recordTruncation(at: pos, have: have, chunkSize: nil)
                return nil
            }
            let parsed = frame.withUnsafeBytes { Self.parseFrame($0) }
            guard case .valid(let kind, let flags, let length, let crc) = parsed else {
                if case .corrupt(let why) = parsed { try corrupt(at: pos, why) }
                continue
            }
            if length > file.size - pos - f {
                recordTruncation(at: pos, have: file.size - pos, chunkSize: f + length)
                return nil
            }
            let payload = try loadPayload(at: pos + f, length: length)
            let computed = CRC32.checksum(UnsafeRawBufferPointer(payload))
            guard computed == crc else {
                try corrupt(
                    at: pos,
                    "payload checksum mismatch (stored \(binaryHex(crc)), computed \(binaryHex(computed)))"
                )
                continue
            }
            offset = pos + f + length
            switch BinaryChunkKind(rawValue: kind) {
            case .block:
                do {
                    let (block, records) = try decodeBlock(UnsafeRawBufferPointer(payload))
                    totals.blocks += 1
                    totals.tokens += block.tokenCount
                    totals.records += records
                    return block
                } catch {
                    try invalid(at: pos, error)
                }
            case .domains:
                do {
                    try applyDomains(UnsafeRawBufferPointer(payload))
                } catch {
                    try invalid(at: pos, error)
                }
            case .end:
                try readEnd(UnsafeRawBufferPointer(payload), at: pos)
            case .layerTimings:
                do {
                    let records = try binaryDecodeTimings(UnsafeRawBufferPointer(payload), layers: header.shape.layers)
                    var t = timingTotals ?? TraceTimingTotals(layers: header.shape.layers)
                    for r in records { t.add(r) }
                    timingTotals = t
                    if collectsTimingRecords { timingRecords += records }
                } catch {
                    try invalid(at: pos, error)
                }
            case nil:
                guard flags & BinaryTraceFormat.optionalFlag != 0 else {
                    throw TraceError(
                        path: path,
                        byteOffset: pos,
                        issue: RecordIssue(
                            .malformed,
                            "chunk kind \(kind) is not known to this reader (format \(BinaryTraceFormat.currentMajorVersion).\(BinaryTraceFormat.currentMinorVersion)) and is not marked optional"
                        ),
                        hint: "read this file (format \(header.formatVersion)) with a newer moe-routing"
                    )
                }
            }
        }
        return nil
    }

    // MARK: - Frames

    enum Frame {
        case valid(kind: UInt16, flags: UInt16, length: Int, crc: UInt32)
        case corrupt(String)
    }

    /// Checks a 24-byte frame: magic, frame CRC, a plausible length.
    static func parseFrame(_ b: UnsafeRawBufferPointer) -> Frame {
        guard b.binaryLoadLE(UInt32.self, at: 0) == BinaryTraceFormat.chunkMagicWord else {
            return .corrupt("no chunk starts here (the bytes are not the chunk magic 'MOEC')")
        }
        let stored = b.binaryLoadLE(UInt32.self, at: 20)
        let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: b[0..<20]))
        guard stored == computed else {
            return .corrupt(
                "chunk header checksum mismatch (stored \(binaryHex(stored)), computed \(binaryHex(computed)))"
            )
        }
        let length = b.binaryLoadLE(UInt64.self, at: 8)
        guard length % 8 == 0, length <= UInt64(BinaryTraceFormat.maximumChunkPayload) else {
            return .corrupt("impossible chunk length \(length)")
        }
        return .valid(
            kind: b.binaryLoadLE(UInt16.self, at: 4),
            flags: b.binaryLoadLE(UInt16.self, at: 6),
            length: Int(length),
            crc: b.binaryLoadLE(UInt32.self, at: 16)
        )
    }

    private func loadPayload(at position: Int, length: Int) throws -> UnsafeMutableRawBufferPointer {
        if buffer.count < length {
            buffer.deallocate()
            buffer = .allocate(byteCount: max(length, min(buffer.count * 2, length * 2)), alignment: 16)
        }
        let p = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
        let got = try file.read(into: p, at: position)
        guard got == length else {
            throw TraceError(
                path: path,
                byteOffset: position,
                issue: RecordIssue(.corruptChunk, "the file shrank while it was read (\(got) of \(length) bytes)")
            )
        }
        return p
    }

    // MARK: - Losses and corruption

    private func recordTruncation(at pos: Int, have: Int, chunkSize: Int?) {
        finished = true
        summary.lostBytes += have
        let size =
            chunkSize.map { "a chunk of \($0) bytes" } ?? "a chunk of at least \(BinaryTraceFormat.frameSize) bytes"
        summary.lossReason =
            "file ends \(have) bytes into \(size) at byte offset \(pos): the writer was probably killed; every complete chunk before it was read"
    }

    /// A chunk whose framing or checksum is bad: throw (strict) or skip to the next chunk (lenient).
    private func corrupt(at pos: Int, _ why: String) throws {
        guard options.lenient else {
            throw TraceError(
                path: path,
                byteOffset: pos,
                issue: RecordIssue(.corruptChunk, "corrupt chunk: \(why)"),
                hint: "--lenient skips corrupt chunks and reads the rest"
            )
        }
        skippedChunks += 1
        if let next = try resync(from: pos + 1) {
            summary.skip(
                TraceError(
                    path: path,
                    byteOffset: pos,
                    issue: RecordIssue(
                        .corruptChunk,
                        "corrupt chunk (\(why)); skipped \(next - pos) bytes to the next chunk at byte \(next)"
                    )
                )
            )
            offset = next
        } else {
            summary.skip(
                TraceError(path: path, byteOffset: pos, issue: RecordIssue(.corruptChunk, "corrupt chunk (\(why))"))
            )
            finished = true
            let lost = file.size - pos
            summary.lostBytes += lost
            summary.lossReason =
                "corrupt chunk at byte offset \(pos) (\(why)) and no valid chunk after it: the last \(lost) bytes were not read; every chunk before it was read"
        }
    }

    /// A chunk with a good checksum whose contents are invalid: throw (strict) or skip it (lenient).
    private func invalid(at pos: Int, _ error: BinaryFormatProblem) throws {
        let e = TraceError(
            path: path,
            byteOffset: pos,
            issue: RecordIssue(error.kind, error.message),
            hint: options.lenient ? nil : "--lenient skips invalid chunks and reads the rest"
        )
        guard options.lenient else { throw e }
        skippedChunks += 1
        summary.skip(e)
    }

    /// The offset of the next plausible chunk at or after `start`: the chunk magic, a valid frame
    /// checksum, and a valid payload checksum (or a payload cut off by the end of the file).
    private func resync(from start: Int) throws -> Int? {
        let window = 1 << 20
        let f = BinaryTraceFormat.frameSize
        var scratch = [UInt8](repeating: 0, count: window)
        var s = start
        while s < file.size {
            let got = try scratch.withUnsafeMutableBytes { try file.read(into: $0, at: s) }
            if got == 0 { break }
            let atEnd = s + got >= file.size
            let limit = atEnd ? got : got - (f - 1)
            var found: Int?
            try scratch.withUnsafeBytes { w in
                var i = 0
                while i < limit {
                    defer { i += 1 }
                    guard w[i] == 0x4D, i + 4 <= got,
                        w.binaryLoadLE(UInt32.self, at: i) == BinaryTraceFormat.chunkMagicWord
                    else { continue }
                    let c = s + i
                    guard i + f <= got else {
                        found = c  // a cut-off frame at the very end: the main loop records it
                        return
                    }
                    guard
                        case .valid(_, _, let length, let crc) = Self.parseFrame(
                            UnsafeRawBufferPointer(rebasing: w[i..<(i + f)])
                        )
                    else { continue }
                    if length > file.size - c - f {
                        found = c
                        return
                    }
                    let payload = try loadPayload(at: c + f, length: length)
                    if CRC32.checksum(UnsafeRawBufferPointer(payload)) == crc {
                        found = c
                        return
                    }
                }
            }
            if let found { return found }
            if atEnd { break }
            s += limit
        }
        return nil
    }

    // MARK: - Chunk contents

    private func applyDomains(_ p: UnsafeRawBufferPointer) throws(BinaryFormatProblem) {
        var d = BinaryByteDecoder(p)
        do {
            let first = Int(try d.u32())
            let count = Int(try d.u32())
            guard count <= d.remaining / 4, first + count <= 65_536 else {
                throw BinaryFormatProblem(
                    .malformed,
                    "domain chunk claims \(count) names from index \(first), more than it can hold"
                )
            }
            if first > domains.count {
                guard options.lenient, skippedChunks > 0 else {
                    throw BinaryFormatProblem(
                        .malformed,
                        "domain chunk starts at index \(first) but only \(domains.count) domain names are known"
                    )
                }
                padDomains(to: first)
            }
            var names: [String] = []
            for _ in 0..<count { names.append(try d.string()) }
            for (i, name) in names.enumerated() {
                let index = first + i
                if index < domains.count {
                    guard domains[index] == name else {
                        throw BinaryFormatProblem(
                            .malformed,
                            "domain chunk names index \(index) '\(name)', but it is already '\(domains[index])'"
                        )
                    }
                } else {
                    domains.append(name)
                }
            }
        } catch let e as BinaryFormatProblem {
            throw e
        } catch {
            throw BinaryFormatProblem(.malformed, "domain chunk ends in the middle of a name")
        }
    }

    /// Fills a gap in the domain table left by a skipped domain chunk (lenient mode).
    private func padDomains(to count: Int) {
        while domains.count < count { domains.append("<lost domain \(domains.count)>") }
    }

    private func readEnd(_ p: UnsafeRawBufferPointer, at pos: Int) throws {
        guard p.count >= 28 else {
            try invalid(
                at: pos,
                BinaryFormatProblem(.corruptChunk, "end chunk is \(p.count) bytes, expected at least 28")
            )
            finished = true
            return
        }
        let recorded = BinaryTraceTotals(
            blocks: Int(clamping: p.binaryLoadLE(UInt64.self, at: 0)),
            tokens: Int(clamping: p.binaryLoadLE(UInt64.self, at: 8)),
            records: Int(clamping: p.binaryLoadLE(UInt64.self, at: 16))
        )
        endTotals = recorded
        // Format 1.1: bytes 28..<32 hold the status (0 in 1.0 files: closed), an interrupted
        // close adds the problem counts.
        let status = p.count >= BinaryTraceFormat.endPayloadSize ? p.binaryLoadLE(UInt32.self, at: 28) : 0
        if status == BinaryTraceFormat.endStatusClosed {
            endClosure = .closed
        } else if p.count >= BinaryTraceFormat.interruptedEndPayloadSize {
            endClosure = .interrupted(
                completed: Int(clamping: p.binaryLoadLE(UInt64.self, at: 32)),
                total: Int(clamping: p.binaryLoadLE(UInt64.self, at: 40))
            )
        } else {
            // A status this reader does not know, without counts: interrupted, counts unknown.
            endClosure = .interrupted(completed: 0, total: 0)
        }
        finished = true
        if skippedChunks == 0, recorded != totals {
            try invalid(
                at: pos,
                BinaryFormatProblem(
                    .corruptChunk,
                    "the end chunk counts \(recorded), but the file holds \(totals): chunks are missing"
                )
            )
        }
        let trailing = file.size - offset
        if trailing > 0 {
            let message = "\(trailing) bytes follow the end chunk at byte offset \(pos)"
            guard options.lenient else {
                throw TraceError(
                    path: path,
                    byteOffset: offset,
                    issue: RecordIssue(.corruptChunk, message),
                    hint: "--lenient ignores them"
                )
            }
            summary.lostBytes += trailing
            summary.lossReason = "\(message); they were ignored"
        }
    }

    /// Decodes a block payload into a block and its number of present cells.
    private func decodeBlock(_ p: UnsafeRawBufferPointer) throws(BinaryFormatProblem) -> (RoutingBlock, Int) {
        let s = header.shape
        let L = s.layers
        let k = s.topK
        let E = s.experts
        let narrow = s.usesNarrowIDs
        guard p.count >= BinaryTraceFormat.blockPrefixSize else {
            throw BinaryFormatProblem(.malformed, "block chunk of \(p.count) bytes is too short")
        }
        let T = Int(p.binaryLoadLE(UInt32.self, at: 0))
        let C = Int(p.binaryLoadLE(UInt16.self, at: 4))
        let directoryEnd = BinaryTraceFormat.blockPrefixSize + C * BinaryTraceFormat.columnEntrySize
        guard directoryEnd <= p.count else {
            throw BinaryFormatProblem(.malformed, "block column directory (\(C) columns) overruns the chunk")
        }
        let cells = T * L  // T < 2^32, L <= 4096, k <= 65536: no overflow in 64 bits
        let slots = cells * k
        let expected: [BinaryColumnTag: (BinaryColumnDType, Int)] = [
            .ids: narrow ? (.u8, slots) : (.u16, slots * 2),
            .weights: (.f32, slots * 4),
            .mask: (.u8, cells),
            .domain: (.u16, T * 2),
            .problemID: (.i64, T * 8),
            .position: (.i32, T * 4),
            .phase: (.u8, T),
            .tokenID: (.i32, T * 4),
            .step: (.u32, T * 4),  // optional; u64 (T * 8 bytes) is accepted too
        ]
        var found: [BinaryColumnTag: UnsafeRawBufferPointer] = [:]
        var stepIsU64 = false
        for c in 0..<C {
            let e = BinaryTraceFormat.blockPrefixSize + c * BinaryTraceFormat.columnEntrySize
            let rawTag = p.binaryLoadLE(UInt16.self, at: e)
            let rawType = p.binaryLoadLE(UInt8.self, at: e + 2)
            let flags = p.binaryLoadLE(UInt8.self, at: e + 3)
            let off = p.binaryLoadLE(UInt64.self, at: e + 8)
            let len = p.binaryLoadLE(UInt64.self, at: e + 16)
            guard off <= UInt64(p.count), len <= UInt64(p.count) - off else {
                throw BinaryFormatProblem(
                    .malformed,
                    "block column \(c) (tag \(rawTag)) spans bytes \(off)+\(len), beyond the chunk's \(p.count)"
                )
            }
            guard let tag = BinaryColumnTag(rawValue: rawTag), let (dtype, bytes) = expected[tag] else {
                guard flags & BinaryTraceFormat.optionalColumnFlag != 0 else {
                    throw BinaryFormatProblem(
                        .malformed,
                        "block column tag \(rawTag) is not known to this reader and is not marked optional; read this file with a newer moe-routing"
                    )
                }
                continue
            }
            guard found[tag] == nil else {
                throw BinaryFormatProblem(.malformed, "block has two '\(tag.name)' columns")
            }
            let wide = tag == .step && rawType == BinaryColumnDType.u64.rawValue
            guard wide ? Int(len) == T * 8 : rawType == dtype.rawValue && Int(len) == bytes else {
                let typeName = BinaryColumnDType(rawValue: rawType)?.name ?? "dtype \(rawType)"
                let wanted =
                    tag == .step ? "u32 of \(bytes) bytes or u64 of \(T * 8) bytes" : "\(dtype.name) of \(bytes) bytes"
                throw BinaryFormatProblem(
                    .malformed,
                    "block column '\(tag.name)' is \(typeName) of \(len) bytes, expected \(wanted) for \(T) tokens of \(s)"
                )
            }
            if wide { stepIsU64 = true }
            found[tag] = UnsafeRawBufferPointer(rebasing: p[Int(off)..<(Int(off) + Int(len))])
        }
        func column(_ tag: BinaryColumnTag) throws(BinaryFormatProblem) -> UnsafeRawBufferPointer {
            guard let c = found[tag] else {
                throw BinaryFormatProblem(.malformed, "block lacks the required '\(tag.name)' column")
            }
            return c
        }

        // Mask: bytes 0/1, counted eight at a time.
        let maskBytes = try column(.mask)
        guard let records = binaryCountMask(maskBytes) else {
            throw BinaryFormatProblem(.malformed, "block mask holds a byte other than 0 or 1")
        }
        let present: [Bool] = binaryMakeArray(maskBytes, count: cells)

        // Expert ids below E; weights finite and non-negative. Fast checks over every slot, and a
        // precise check over present cells only when the fast one fails (missing cells hold
        // whatever the writer had; they are zeroed here).
        let idBytes = try column(.ids)
        var ids: ExpertIDs
        var idsOK: Bool
        if narrow {
            let a: [UInt8] = binaryMakeArray(idBytes, count: slots)
            idsOK = E >= 256 || a.withUnsafeBufferPointer { binaryMaxValue($0) } < UInt8(truncatingIfNeeded: E)
            ids = .narrow(a)
        } else {
            let a: [UInt16] = binaryMakeLittleEndianArray(idBytes, count: slots)
            idsOK = E >= 65_536 || Int(a.withUnsafeBufferPointer { binaryMaxValue($0) }) < E
            ids = .wide(a)
        }
        var weights: [Float] = binaryMakeFloatArray(try column(.weights), count: slots)
        let weightsOK = weights.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: UInt32.self) { binaryMaxValue($0) } <= 0x7F7F_FFFF
        }
        if !idsOK || !weightsOK {
            try checkCells(ids: &ids, weights: &weights, present: present)
        }

        // Per-token columns.
        let domain: [UInt16] = binaryMakeLittleEndianArray(try column(.domain), count: T)
        let maxDomain = Int(domain.withUnsafeBufferPointer { binaryMaxValue($0) })
        if T > 0, maxDomain >= domains.count {
            guard options.lenient, skippedChunks > 0 else {
                throw BinaryFormatProblem(
                    .malformed,
                    "block uses domain index \(maxDomain) but only \(domains.count) domain names are known"
                )
            }
            padDomains(to: maxDomain + 1)
        }
        let phaseBytes = try column(.phase)
        var phase: [RoutingPhase] = []
        phase.reserveCapacity(T)
        for b in phaseBytes {
            guard b <= 1 else {
                throw BinaryFormatProblem(.malformed, "block phase byte \(b) is neither 0 (prefill) nor 1 (decode)")
            }
            phase.append(b == 0 ? .prefill : .decode)
        }
        var step: [UInt32]?
        if let stepBytes = found[.step] {
            step =
                stepIsU64
                ? try binaryNarrowSteps(stepBytes, count: T) : binaryMakeLittleEndianArray(stepBytes, count: T)
        }
        let block = RoutingBlock(
            unchecked: s,
            tokenCount: T,
            ids: ids,
            weights: weights,
            present: present,
            domain: domain,
            domains: domains,
            problemID: binaryMakeLittleEndianArray(try column(.problemID), count: T),
            position: binaryMakeLittleEndianArray(try column(.position), count: T),
            phase: phase,
            tokenID: binaryMakeLittleEndianArray(try column(.tokenID), count: T),
            step: step
        )
        return (block, records)
    }

    /// The precise check of present cells after a fast check failed; zeroes missing cells.
    private func checkCells(ids: inout ExpertIDs, weights: inout [Float], present: [Bool]) throws(BinaryFormatProblem) {
        let s = header.shape
        let k = s.topK
        var narrowIDs: [UInt8] = []
        var wideIDs: [UInt16] = []
        switch ids {
        case .narrow(let a): narrowIDs = a
        case .wide(let a): wideIDs = a
        }
        let isNarrow = s.usesNarrowIDs
        for cell in 0..<present.count {
            let base = cell * k
            guard present[cell] else {
                for j in base..<(base + k) {
                    weights[j] = 0
                    if isNarrow { narrowIDs[j] = 0 } else { wideIDs[j] = 0 }
                }
                continue
            }
            for j in base..<(base + k) {
                let e = isNarrow ? Int(narrowIDs[j]) : Int(wideIDs[j])
                guard e < s.experts else {
                    throw BinaryFormatProblem(
                        .expertOutOfRange,
                        "token \(cell / s.layers) layer \(cell % s.layers): expert id \(e) is outside 0..<\(s.experts) (E)"
                    )
                }
                let w = weights[j]
                guard w.isFinite, w >= 0 else {
                    throw BinaryFormatProblem(
                        .invalidWeight,
                        "token \(cell / s.layers) layer \(cell % s.layers): weight \(w) is not a finite, non-negative number"
                    )
                }
            }
        }
        ids = isNarrow ? .narrow(narrowIDs) : .wide(wideIDs)
    }
}

// MARK: - Errors and bulk decoding helpers

/// `0x1234ABCD`.
func binaryHex(_ v: UInt32) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// The number of 1 bytes, or `nil` when a byte is neither 0 nor 1.
private func binaryCountMask(_ b: UnsafeRawBufferPointer) -> Int? {
    var n = 0
    var bad: UInt64 = 0
    var i = 0
    let c = b.count
    while i + 8 <= c {
        let w = b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        bad |= w & 0xFEFE_FEFE_FEFE_FEFE
        n &+= w.nonzeroBitCount
        i += 8
    }
    while i < c {
        let v = b[i]
        bad |= UInt64(v & 0xFE)
        n &+= Int(v)
        i += 1
    }
    return bad == 0 ? n : nil
}

/// The largest value (0 when empty); written so the compiler vectorises it.
private func binaryMaxValue<T: FixedWidthInteger & UnsignedInteger>(_ a: UnsafeBufferPointer<T>) -> T {
    var m: T = 0
    for v in a { m = Swift.max(m, v) }
    return m
}

/// A new array holding `count` values copied verbatim from `src`.
private func binaryMakeArray<T>(_ src: UnsafeRawBufferPointer, count: Int) -> [T] {
    [T](unsafeUninitializedCapacity: count) { buf, n in
        if count > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: src) }
        n = count
    }
}

/// A new array of little-endian integers from `src` (a bulk copy on little-endian hosts).
private func binaryMakeLittleEndianArray<T: FixedWidthInteger>(_ src: UnsafeRawBufferPointer, count: Int) -> [T] {
    #if _endian(little)
    return binaryMakeArray(src, count: count)
    #else
    return (0..<count).map { src.binaryLoadLE(T.self, at: $0 * MemoryLayout<T>.size) }
    #endif
}

/// The `u32` steps of a `u64` step column: all ones (unknown) becomes `UInt32.max`; any other
/// value above `UInt32.max - 1` is a corrupt column.
private func binaryNarrowSteps(_ src: UnsafeRawBufferPointer, count: Int) throws(BinaryFormatProblem) -> [UInt32] {
    var out: [UInt32] = []
    out.reserveCapacity(count)
    for t in 0..<count {
        let v = src.binaryLoadLE(UInt64.self, at: 8 * t)
        if v < UInt64(UInt32.max) {
            out.append(UInt32(truncatingIfNeeded: v))
        } else if v == .max {
            out.append(.max)
        } else {
            throw BinaryFormatProblem(
                .malformed,
                "block column 'step' (u64) holds \(v) for token \(t); steps must be below \(UInt32.max) (all ones = unknown)"
            )
        }
    }
    return out
}

/// A new array of little-endian IEEE-754 binary32 values from `src`.
private func binaryMakeFloatArray(_ src: UnsafeRawBufferPointer, count: Int) -> [Float] {
    #if _endian(little)
    return binaryMakeArray(src, count: count)
    #else
    return (0..<count).map { Float(bitPattern: src.binaryLoadLE(UInt32.self, at: $0 * 4)) }
    #endif
}
