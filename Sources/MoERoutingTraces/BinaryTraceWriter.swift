// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `.moetrace` writer: a versioned header, then one checksummed chunk per block, each handed to
// the kernel before `write` returns, and an end chunk with totals at `close()`.

public import MoERouting

/// Writes routing blocks to a `.moetrace` binary trace, append-only, one checksummed chunk per
/// block, so a run that is killed keeps every block written before the kill.
///
/// The header (written when the writer is created) holds the model shape, the domain names known
/// so far and the capture settings. Domain names that blocks introduce later are written in a
/// domain chunk just before the first block that uses them; indices never change. Each chunk goes
/// to the kernel in one `write(2)` before ``write(_:)`` returns: a killed process loses at most the
/// chunk being written (a machine crash may lose what the kernel had not yet stored).
/// ``close()`` writes an end chunk with the totals, which tells readers the file is complete;
/// ``close(interruptedAfter:of:)`` marks it interrupted, with the number of problems completed.
///
/// The file is written under a temporary name beside `path` (``temporaryPath``,
/// `<path>.partial-<pid>`, see ``AtomicOutputFile``) and renamed onto `path` when it is closed, so
/// an earlier file at `path` stays whole until the new one is complete; ``discard()`` abandons the
/// output instead. A killed process leaves its chunks at ``temporaryPath``, readable up to the
/// last complete one.
/// A block with a ``RoutingBlock/step`` column is written with the optional step column (tag 32,
/// `u32`); blocks without steps are written exactly as before.
///
/// ```swift
/// let writer = try BinaryTraceWriter(path: "run.moetrace", shape: .mixtral8x7B,
///                                    settings: ["engine": "vllm"])
/// try writer.write(block)
/// try writer.close()
/// ```
public final class BinaryTraceWriter: RoutingBlockSink {
    /// The file written (at ``close()``; until then the bytes go to ``temporaryPath``).
    public let path: String
    /// Where the chunks go until ``close()`` renames the file onto ``path``.
    public var temporaryPath: String { file.temporaryPath }
    /// The header written at the start of the file.
    public let header: BinaryTraceHeader
    /// The shape every block must have.
    public var shape: ModelShape { header.shape }
    /// What has been written so far.
    public private(set) var totals = BinaryTraceTotals()
    /// The domain table so far (header names, then names introduced by blocks).
    public var domains: [String] { mapper.names }
    /// Timing records written to the file so far (not counting those still buffered).
    public private(set) var timingRecordsWritten = 0

    private let file: AtomicOutputFile
    private var mapper: BinaryDomainMapper
    private var closed = false
    /// Timing records added with ``addTiming(_:)`` and not yet written.
    private var pendingTimings: [LayerTimingRecord] = []
    /// Scratch space for one chunk (frame and payload), reused across blocks.
    private var scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// Creates the temporary file beside `path` and writes the header; any file at `path` is
    /// untouched until ``close()``.
    ///
    /// - Parameters:
    ///   - path: The output file, conventionally ending in `.moetrace`.
    ///   - shape: The shape of every block that will be written.
    ///   - domains: Domain names to register up front (indices 0, 1, ...); more may come with blocks.
    ///   - settings: Capture settings to record in the header.
    /// - Throws: ``OutputFileError`` when the file cannot be created or written.
    public init(path: String, shape: ModelShape, domains: [String] = [], settings: [String: String] = [:]) throws {
        self.path = path
        self.mapper = BinaryDomainMapper(domains)
        self.header = BinaryTraceHeader(shape: shape, domains: mapper.names, settings: settings)
        self.file = try AtomicOutputFile(path: path)
        try file.write(header.encoded())
    }

    deinit {
        scratch.deallocate()
    }

    // MARK: - RoutingBlockSink

    /// Appends one block (and, before it, a domain chunk if it introduces domain names).
    ///
    /// - Throws: ``TraceFileError`` for a block of another shape, a write after ``close()``, or a
    ///   failed write.
    /// - Complexity: O(size of the block): bulk copies, one CRC pass, one `write(2)`.
    public func write(_ block: RoutingBlock) throws {
        guard !closed else { throw TraceFileError(path: path, message: "write after close") }
        let s = block.shape
        guard s.layers == shape.layers, s.experts == shape.experts, s.topK == shape.topK else {
            throw TraceFileError(
                path: path,
                message:
                    "block shape \(s) differs from the trace's \(shape); a .moetrace file holds one shape, so write this model's blocks to another file"
            )
        }
        let T = block.tokenCount
        let before = mapper.names.count
        let remap = try mapper.absorbChecked(block, path: path)
        if mapper.names.count > before {
            try writeDomainChunk(first: before)
        }
        guard T > 0 else { return }
        try flushTimings()
        try writeBlockChunk(block, remap: remap)
        totals.blocks += 1
        totals.tokens += T
        totals.records += Self.countPresent(block.present)
    }

    /// Writes the end chunk with the totals, marked closed normally, closes the file and renames it
    /// onto ``path`` (``AtomicOutputFile/commit()``). A second call (or one after
    /// ``close(interruptedAfter:of:)``) does nothing.
    ///
    /// - Throws: ``OutputFileError`` when the write, flush or rename fails.
    public func close() throws {
        try finish(interrupted: nil)
    }

    /// Writes the end chunk with the totals, marked interrupted after `completed` of `total`
    /// problems, and closes the file: readers see ``BinaryTraceClosure/interrupted(completed:total:)``.
    /// A second call (or one after ``close()``) does nothing.
    ///
    /// ```swift
    /// try writer.close(interruptedAfter: 3, of: 8)
    /// ```
    ///
    /// - Throws: ``TraceFileError`` for negative counts, `completed` above `total`, or a failed
    ///   write or close.
    public func close(interruptedAfter completed: Int, of total: Int) throws {
        guard completed >= 0, total >= completed else {
            throw TraceFileError(
                path: path,
                message: "an interrupted close needs 0 <= completed <= total, got \(completed) of \(total)"
            )
        }
        try finish(interrupted: (completed, total))
    }

    private func finish(interrupted: (completed: Int, total: Int)?) throws {
        guard !closed else { return }
        try flushTimings()
        closed = true
        var e = BinaryByteEncoder()
        e.u64(UInt64(totals.blocks))
        e.u64(UInt64(totals.tokens))
        e.u64(UInt64(totals.records))
        e.u32(UInt32(mapper.names.count))
        if let interrupted {
            e.u32(BinaryTraceFormat.endStatusInterrupted)
            e.u64(UInt64(interrupted.completed))
            e.u64(UInt64(interrupted.total))
        } else {
            e.u32(BinaryTraceFormat.endStatusClosed)
        }
        try writeSmallChunk(kind: .end, payload: e.bytes)
        try file.commit()
    }

    /// Abandons the output: removes the temporary file, leaving any file at ``path`` as it was.
    /// Later writes are refused; ``close()`` does nothing. Does nothing after ``close()``.
    public func discard() {
        guard !closed else { return }
        closed = true
        pendingTimings.removeAll()
        file.discard()
    }

    // MARK: - Timings

    /// Writes one optional layer-timings chunk (kind 16) holding any records buffered by
    /// ``addTiming(_:)`` followed by `records`, handed to the kernel before this returns.
    /// Readers that do not know the kind skip it; ``BinaryTraceReader/timingTotals`` sums it.
    ///
    /// - Throws: ``TraceFileError`` for a record whose routing or MoE times do not hold one value
    ///   per layer, a negative row count or time, a write after ``close()``, or a failed write.
    public func writeTimings(_ records: [LayerTimingRecord]) throws {
        guard !closed else { throw TraceFileError(path: path, message: "write after close") }
        for r in records { try check(r) }
        let all = pendingTimings + records
        pendingTimings.removeAll(keepingCapacity: true)
        guard !all.isEmpty else { return }
        try writeTimingChunk(all)
    }

    /// Buffers one step's timings; they are written in one layer-timings chunk every
    /// 64 records, before the next block, and at ``close()``, so a killed run keeps most of them.
    ///
    /// - Throws: ``TraceFileError`` as ``writeTimings(_:)`` does.
    public func addTiming(_ record: LayerTimingRecord) throws {
        guard !closed else { throw TraceFileError(path: path, message: "write after close") }
        try check(record)
        pendingTimings.append(record)
        if pendingTimings.count >= BinaryTraceFormat.timingBatchSize { try flushTimings() }
    }

    /// Writes the buffered timing records, if any.
    private func flushTimings() throws {
        guard !pendingTimings.isEmpty else { return }
        let records = pendingTimings
        pendingTimings.removeAll(keepingCapacity: true)
        try writeTimingChunk(records)
    }

    private func check(_ r: LayerTimingRecord) throws {
        let L = shape.layers
        guard r.routingNanoseconds.count == L, r.moeNanoseconds.count == L else {
            throw TraceFileError(
                path: path,
                message:
                    "timing record of step \(r.step) has \(r.routingNanoseconds.count) routing and \(r.moeNanoseconds.count) MoE times, expected \(L) each (one per layer)"
            )
        }
        guard r.rows >= 0, r.routingNanoseconds.allSatisfy({ $0 >= 0 }), r.moeNanoseconds.allSatisfy({ $0 >= 0 }) else {
            throw TraceFileError(
                path: path,
                message: "timing record of step \(r.step) holds a negative row count or time"
            )
        }
    }

    private func writeTimingChunk(_ records: [LayerTimingRecord]) throws {
        let L = shape.layers
        let size = LayerTimingRecord.encodedSize(layers: L)
        let payloadSize = BinaryTraceFormat.timingPrefixSize + records.count * size
        let f = BinaryTraceFormat.frameSize
        let buf = scratchBuffer(f + payloadSize)
        let p = UnsafeMutableRawBufferPointer(rebasing: buf[f..<(f + payloadSize)])
        p.binaryStoreLE(UInt32(records.count), at: 0)
        p.binaryStoreLE(UInt32(L), at: 4)
        for (i, r) in records.enumerated() {
            let base = BinaryTraceFormat.timingPrefixSize + i * size
            p.binaryStoreLE(r.step, at: base)
            p.binaryStoreLE(r.rows, at: base + 8)
            p.binaryStoreLE(UInt32(0), at: base + 12)
            let valuesAt = base + BinaryTraceFormat.timingRecordPrefixSize
            for l in 0..<L {
                p.binaryStoreLE(r.routingNanoseconds[l], at: valuesAt + 8 * l)
                p.binaryStoreLE(r.moeNanoseconds[l], at: valuesAt + 8 * (L + l))
            }
        }
        try emitChunk(kind: .layerTimings, flags: BinaryTraceFormat.optionalFlag, payloadSize: payloadSize, buffer: buf)
        timingRecordsWritten += records.count
    }

    // MARK: - Chunks

    private func writeDomainChunk(first: Int) throws {
        var e = BinaryByteEncoder()
        e.u32(UInt32(first))
        e.u32(UInt32(mapper.names.count - first))
        for n in mapper.names[first...] { e.string(n) }
        e.pad(toMultipleOf: 8)
        try writeSmallChunk(kind: .domains, payload: e.bytes)
    }

    private func writeSmallChunk(kind: BinaryChunkKind, payload: [UInt8]) throws {
        let buf = scratchBuffer(BinaryTraceFormat.frameSize + payload.count)
        payload.withUnsafeBytes { src in
            UnsafeMutableRawBufferPointer(rebasing: buf[BinaryTraceFormat.frameSize...]).copyMemory(from: src)
        }
        try emitChunk(kind: kind, flags: 0, payloadSize: payload.count, buffer: buf)
    }

    /// Fills the frame of a chunk whose payload already sits after it in `buffer`, and writes both.
    private func emitChunk(
        kind: BinaryChunkKind,
        flags: UInt16,
        payloadSize: Int,
        buffer: UnsafeMutableRawBufferPointer
    )
        throws
    {
        let f = BinaryTraceFormat.frameSize
        let payload = UnsafeRawBufferPointer(rebasing: buffer[f..<(f + payloadSize)])
        buffer.binaryStoreLE(BinaryTraceFormat.chunkMagicWord, at: 0)
        buffer.binaryStoreLE(kind.rawValue, at: 4)
        buffer.binaryStoreLE(flags, at: 6)
        buffer.binaryStoreLE(UInt64(payloadSize), at: 8)
        buffer.binaryStoreLE(CRC32.checksum(payload), at: 16)
        buffer.binaryStoreLE(CRC32.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<20])), at: 20)
        try file.write(UnsafeRawBufferPointer(rebasing: buffer[0..<(f + payloadSize)]))
    }

    private func writeBlockChunk(_ block: RoutingBlock, remap: [UInt16]?) throws {
        let T = block.tokenCount
        let cells = T * shape.layers
        let slots = cells * shape.topK
        let narrow = shape.usesNarrowIDs
        // (tag, dtype, byte length, directory flags)
        var columns: [(BinaryColumnTag, BinaryColumnDType, Int, UInt8)] = [
            (.ids, narrow ? .u8 : .u16, slots * (narrow ? 1 : 2), 0),
            (.weights, .f32, slots * 4, 0),
            (.mask, .u8, cells, 0),
            (.domain, .u16, T * 2, 0),
            (.problemID, .i64, T * 8, 0),
            (.position, .i32, T * 4, 0),
            (.phase, .u8, T, 0),
            (.tokenID, .i32, T * 4, 0),
        ]
        if block.step != nil {
            columns.append((.step, .u32, T * 4, BinaryTraceFormat.optionalColumnFlag))
        }
        let f = BinaryTraceFormat.frameSize
        var offsets: [Int] = []
        var at = binaryPadded8(BinaryTraceFormat.blockPrefixSize + columns.count * BinaryTraceFormat.columnEntrySize)
        for c in columns {
            offsets.append(at)
            at = binaryPadded8(at + c.2)
        }
        let payloadSize = at
        let buf = scratchBuffer(f + payloadSize)
        let p = UnsafeMutableRawBufferPointer(rebasing: buf[f..<(f + payloadSize)])
        p.binaryStoreLE(UInt32(T), at: 0)
        p.binaryStoreLE(UInt16(columns.count), at: 4)
        p.binaryStoreLE(UInt16(0), at: 6)
        for (i, c) in columns.enumerated() {
            let e = BinaryTraceFormat.blockPrefixSize + i * BinaryTraceFormat.columnEntrySize
            p.binaryStoreLE(c.0.rawValue, at: e)
            p.binaryStoreLE(c.1.rawValue, at: e + 2)
            p.binaryStoreLE(c.3, at: e + 3)
            p.binaryStoreLE(UInt32(0), at: e + 4)
            p.binaryStoreLE(UInt64(offsets[i]), at: e + 8)
            p.binaryStoreLE(UInt64(c.2), at: e + 16)
        }
        // Zero the gaps (directory padding and each column's padding).
        var gapStart = BinaryTraceFormat.blockPrefixSize + columns.count * BinaryTraceFormat.columnEntrySize
        for (i, c) in columns.enumerated() {
            zero(p, gapStart..<offsets[i])
            gapStart = offsets[i] + c.2
        }
        zero(p, gapStart..<payloadSize)

        func dest(_ i: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: p[offsets[i]..<(offsets[i] + columns[i].2)])
        }
        switch block.ids {
        case .narrow(let a): binaryCopyBytes(a, to: dest(0))
        case .wide(let a):
            if narrow {
                let d = dest(0)
                for (j, v) in a.enumerated() { d[j] = UInt8(truncatingIfNeeded: v) }
            } else {
                binaryCopyLittleEndian(a, to: dest(0))
            }
        }
        binaryCopyFloats(block.weights, to: dest(1))
        binaryCopyBytes(block.present, to: dest(2))
        if let remap {
            let d = dest(3)
            for (t, v) in block.domain.enumerated() { d.binaryStoreLE(remap[Int(v)], at: 2 * t) }
        } else {
            binaryCopyLittleEndian(block.domain, to: dest(3))
        }
        binaryCopyLittleEndian(block.problemID, to: dest(4))
        binaryCopyLittleEndian(block.position, to: dest(5))
        let ph = dest(6)
        for (t, v) in block.phase.enumerated() { ph[t] = v.rawValue }
        binaryCopyLittleEndian(block.tokenID, to: dest(7))
        if let step = block.step { binaryCopyLittleEndian(step, to: dest(8)) }
        try emitChunk(kind: .block, flags: 0, payloadSize: payloadSize, buffer: buf)
    }

    // MARK: - Helpers

    private func scratchBuffer(_ size: Int) -> UnsafeMutableRawBufferPointer {
        if scratch.count < size {
            scratch.deallocate()
            scratch = .allocate(byteCount: max(size, scratch.count * 2), alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(rebasing: scratch[0..<size])
    }

    private func zero(_ p: UnsafeMutableRawBufferPointer, _ r: Range<Int>) {
        guard !r.isEmpty else { return }
        UnsafeMutableRawBufferPointer(rebasing: p[r]).initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Counts `true` values, eight at a time.
    static func countPresent(_ present: [Bool]) -> Int {
        present.withUnsafeBytes { raw in
            var n = 0
            var i = 0
            let c = raw.count
            while i + 8 <= c {
                n += raw.loadUnaligned(fromByteOffset: i, as: UInt64.self).nonzeroBitCount
                i += 8
            }
            while i < c {
                n += Int(raw[i])
                i += 1
            }
            return n
        }
    }
}

// MARK: - Column copies

/// Copies one-byte values verbatim.
private func binaryCopyBytes<T>(_ a: [T], to d: UnsafeMutableRawBufferPointer) {
    a.withUnsafeBytes { src in
        if src.count > 0 { d.copyMemory(from: src) }
    }
}

/// Copies integers as little-endian bytes (a bulk copy on little-endian hosts).
private func binaryCopyLittleEndian<T: FixedWidthInteger>(_ a: [T], to d: UnsafeMutableRawBufferPointer) {
    #if _endian(little)
    binaryCopyBytes(a, to: d)
    #else
    for (i, v) in a.enumerated() { d.binaryStoreLE(v, at: i * MemoryLayout<T>.size) }
    #endif
}

/// Copies floats as little-endian IEEE-754 binary32.
private func binaryCopyFloats(_ a: [Float], to d: UnsafeMutableRawBufferPointer) {
    #if _endian(little)
    binaryCopyBytes(a, to: d)
    #else
    for (i, v) in a.enumerated() { d.binaryStoreLE(v.bitPattern, at: i * 4) }
    #endif
}
