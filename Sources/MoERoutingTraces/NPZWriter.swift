// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The NumPy .npz exporter: streams each column of every block to its own temporary file (so memory
// does not grow with the number of tokens), then at close assembles a stored zip of .npy arrays
// under a temporary name and renames it into place.

public import MoERouting

/// Writes routing blocks as a NumPy `.npz` archive, for analysis in Python:
///
/// | array | dtype | shape |
/// |---|---|---|
/// | `ids` | `uint8` (E <= 256) or `uint16` | [T, L, k] |
/// | `weights` | `float32` | [T, L, k] |
/// | `mask` | `bool` (true where the cell is present) | [T, L] |
/// | `problem_id` | `int64` | [T] |
/// | `position` | `int32` | [T] |
/// | `phase` | `uint8` (0 prefill, 1 decode) | [T] |
/// | `token_id` | `int32` (-1 unknown) | [T] |
/// | `domain` | `uint16`, an index into `domains` | [T] |
/// | `step` | `uint32`, engine step that routed the token, `0xFFFFFFFF` unknown; only when a block had steps | [T] |
/// | `domains` | `<U{n}` unicode | [D] |
/// | `shape` | `int64`: L, E, k | [3] |
/// | `settings` | `<U{n}` unicode, (key, value) rows sorted by key | [S, 2] |
/// | `model_name` | `<U{n}` unicode, empty when unnamed | [] (0-d) |
/// | `timing_step` | `int64`, the step of each layer-timing record; only with timings | [N] |
/// | `timing_rows` | `int32`, rows the step processed | [N] |
/// | `timing_routing_ns` | `int64`, nanoseconds in routing per layer | [N, L] |
/// | `timing_moe_ns` | `int64`, nanoseconds in the whole MoE layer per layer | [N, L] |
///
/// Missing cells hold zeros in `ids` and `weights`. Each column streams to a temporary file next
/// to the output (`<path>.part-<pid>.<column>`) while blocks arrive; ``close()`` writes the archive
/// under a temporary name (an ``AtomicOutputFile``, `<path>.partial-<pid>`), then renames it onto
/// `path`, so a reader never sees a half-written `.npz` and an earlier file at `path` stays whole
/// until the new one is complete. ``discard()`` abandons the output. Members and the archive
/// use zip64 extensions beyond 4 GiB.
///
/// ```swift
/// let npz = try NPZWriter(path: "run.npz", shape: .mixtral8x7B)
/// try npz.write(block)
/// try npz.close()      // python: d = numpy.load("run.npz"); d["ids"].shape == (T, 32, 2)
/// ```
public final class NPZWriter: RoutingBlockSink {
    /// The archive written at ``close()``.
    public let path: String
    /// The shape every block must have.
    public let shape: ModelShape
    /// Settings stored in the `settings` array.
    public let settings: [String: String]
    /// The domain table so far.
    public var domains: [String] { mapper.names }
    /// Tokens written so far.
    public private(set) var tokenCount = 0
    /// Use zip64 records even for small archives (for tests of the zip64 path).
    package var forceZip64 = false

    private var mapper: BinaryDomainMapper
    private var columns: [NPZColumnFile]
    /// The `step` column, created by the first block that has steps (tokens before it are unknown).
    private var stepColumn: NPZColumnFile?
    /// The four `timing_*` columns, created by the first ``writeTimings(_:)`` with records.
    private var timingColumns: [NPZColumnFile] = []
    /// Layer-timing records written so far.
    public private(set) var timingRecordsWritten = 0
    private static let timingNames = ["timing_step", "timing_rows", "timing_routing_ns", "timing_moe_ns"]
    private var closed = false
    private let tempPrefix: String

    private enum Column: Int, CaseIterable {
        case ids, weights, mask, problemID, position, phase, tokenID, domain
        var name: String {
            switch self {
            case .ids: return "ids"
            case .weights: return "weights"
            case .mask: return "mask"
            case .problemID: return "problem_id"
            case .position: return "position"
            case .phase: return "phase"
            case .tokenID: return "token_id"
            case .domain: return "domain"
            }
        }
    }

    /// Creates the temporary column files next to `path`. Nothing is written at `path` before
    /// ``close()``.
    ///
    /// - Parameters:
    ///   - path: The archive to write, conventionally ending in `.npz`.
    ///   - shape: The shape of every block.
    ///   - domains: Domain names to register up front.
    ///   - settings: Settings to store in the `settings` array.
    /// - Throws: ``TraceFileError`` when a temporary file cannot be created.
    public init(path: String, shape: ModelShape, domains: [String] = [], settings: [String: String] = [:]) throws {
        self.path = path
        self.shape = shape
        self.settings = settings
        self.mapper = BinaryDomainMapper(domains)
        self.tempPrefix = "\(path).part-\(binaryProcessID())"
        var files: [NPZColumnFile] = []
        do {
            for c in Column.allCases {
                files.append(try NPZColumnFile(path: "\(tempPrefix).\(c.name)"))
            }
        } catch {
            for f in files { f.discard() }
            throw error
        }
        self.columns = files
    }

    deinit {
        if !closed {
            for c in columns { c.discard() }
            stepColumn?.discard()
            for c in timingColumns { c.discard() }
        }
    }

    /// Appends layer-timing records (one per engine step), stored as the `timing_step`,
    /// `timing_rows`, `timing_routing_ns` and `timing_moe_ns` arrays.
    ///
    /// - Throws: ``TraceFileError`` for a record without one routing and one MoE time per layer,
    ///   a negative row count or time, a write after ``close()``, or a failed write.
    public func writeTimings(_ records: [LayerTimingRecord]) throws {
        guard !closed else { throw TraceFileError(path: path, message: "write after close") }
        guard !records.isEmpty else { return }
        let L = shape.layers
        for r in records {
            guard r.routingNanoseconds.count == L, r.moeNanoseconds.count == L else {
                throw TraceFileError(
                    path: path,
                    message:
                        "timing record of step \(r.step) has \(r.routingNanoseconds.count) routing and \(r.moeNanoseconds.count) MoE times, expected \(L) each (one per layer)"
                )
            }
            guard r.rows >= 0, r.routingNanoseconds.allSatisfy({ $0 >= 0 }), r.moeNanoseconds.allSatisfy({ $0 >= 0 })
            else {
                throw TraceFileError(
                    path: path,
                    message: "timing record of step \(r.step) holds a negative row count or time"
                )
            }
        }
        if timingColumns.isEmpty {
            for name in Self.timingNames { timingColumns.append(try NPZColumnFile(path: "\(tempPrefix).\(name)")) }
        }
        try timingColumns[0].appendLittleEndian(records.map(\.step))
        try timingColumns[1].appendLittleEndian(records.map(\.rows))
        try timingColumns[2].appendLittleEndian(records.flatMap(\.routingNanoseconds))
        try timingColumns[3].appendLittleEndian(records.flatMap(\.moeNanoseconds))
        timingRecordsWritten += records.count
    }

    // MARK: - RoutingBlockSink

    /// Appends one block's columns to the temporary files.
    ///
    /// - Throws: ``TraceFileError`` for a block of another shape, a write after ``close()`` or a
    ///   failed write.
    public func write(_ block: RoutingBlock) throws {
        guard !closed else { throw TraceFileError(path: path, message: "write after close") }
        let s = block.shape
        guard s.layers == shape.layers, s.experts == shape.experts, s.topK == shape.topK else {
            throw TraceFileError(
                path: path,
                message:
                    "block shape \(s) differs from the export's \(shape); write this model's blocks to another file"
            )
        }
        let T = block.tokenCount
        let remap = try mapper.absorbChecked(block, path: path)
        guard T > 0 else { return }
        switch block.ids {
        case .narrow(let a): try column(.ids).append(a)
        case .wide(let a):
            if shape.usesNarrowIDs {
                try column(.ids).append(a.map { UInt8(truncatingIfNeeded: $0) })
            } else {
                try column(.ids).appendLittleEndian(a)
            }
        }
        #if _endian(little)
        try column(.weights).append(block.weights)
        #else
        try column(.weights).appendLittleEndian(block.weights.map(\.bitPattern))
        #endif
        try column(.mask).append(block.present)
        try column(.problemID).appendLittleEndian(block.problemID)
        try column(.position).appendLittleEndian(block.position)
        try column(.phase).append(block.phase.map(\.rawValue))
        try column(.tokenID).appendLittleEndian(block.tokenID)
        if let remap {
            try column(.domain).appendLittleEndian(block.domain.map { remap[Int($0)] })
        } else {
            try column(.domain).appendLittleEndian(block.domain)
        }
        if let step = block.step {
            if stepColumn == nil {
                let f = try NPZColumnFile(path: "\(tempPrefix).step")
                stepColumn = f
                try f.appendUnknownSteps(tokenCount)
            }
            try stepColumn?.appendLittleEndian(step)
        } else {
            try stepColumn?.appendUnknownSteps(T)
        }
        tokenCount += T
    }

    /// Assembles the archive under a temporary name, renames it onto ``path`` and removes the
    /// temporary column files. A second call does nothing.
    ///
    /// - Throws: ``TraceFileError`` or ``OutputFileError`` when a write fails; the temporary
    ///   files are removed and ``path`` keeps what it had.
    public func close() throws {
        guard !closed else { return }
        closed = true
        var archive: AtomicOutputFile?
        defer {
            for c in columns { c.discard() }
            stepColumn?.discard()
            for c in timingColumns { c.discard() }
        }
        do {
            for c in columns { try c.finish() }
            try stepColumn?.finish()
            for c in timingColumns { try c.finish() }
            let out = try AtomicOutputFile(path: path)
            archive = out
            let zip = NPZZipWriter(out: out, forceZip64: forceZip64)
            let T = tokenCount
            let L = shape.layers
            let k = shape.topK
            let narrow = shape.usesNarrowIDs
            let arrays: [(Column, String, [Int])] = [
                (.ids, narrow ? "|u1" : "<u2", [T, L, k]),
                (.weights, "<f4", [T, L, k]),
                (.mask, "|b1", [T, L]),
                (.problemID, "<i8", [T]),
                (.position, "<i4", [T]),
                (.phase, "|u1", [T]),
                (.tokenID, "<i4", [T]),
                (.domain, "<u2", [T]),
            ]
            for (c, descr, dims) in arrays {
                let f = column(c)
                try zip.addMember(
                    name: "\(c.name).npy",
                    header: NPYHeader.encode(descr: descr, shape: dims),
                    source: .file(path: f.path, size: f.size)
                )
            }
            if let f = stepColumn {
                try zip.addMember(
                    name: "step.npy",
                    header: NPYHeader.encode(descr: "<u4", shape: [T]),
                    source: .file(path: f.path, size: f.size)
                )
            }
            let names = NPYHeader.unicodeArray(mapper.names)
            try zip.addMember(
                name: "domains.npy",
                header: NPYHeader.encode(descr: "<U\(names.width)", shape: [mapper.names.count]),
                source: .bytes(names.data)
            )
            var dims = BinaryByteEncoder()
            for v in [L, shape.experts, k] { dims.u64(UInt64(v)) }
            try zip.addMember(
                name: "shape.npy",
                header: NPYHeader.encode(descr: "<i8", shape: [3]),
                source: .bytes(dims.bytes)
            )
            let keys = settings.keys.sorted()
            let pairs = NPYHeader.unicodeArray(keys.flatMap { [$0, settings[$0] ?? ""] })
            try zip.addMember(
                name: "settings.npy",
                header: NPYHeader.encode(descr: "<U\(pairs.width)", shape: [keys.count, 2]),
                source: .bytes(pairs.data)
            )
            let model = NPYHeader.unicodeArray([shape.name ?? ""])
            try zip.addMember(
                name: "model_name.npy",
                header: NPYHeader.encode(descr: "<U\(model.width)", shape: []),
                source: .bytes(model.data)
            )
            let N = timingRecordsWritten
            for (i, f) in timingColumns.enumerated() {
                try zip.addMember(
                    name: "\(Self.timingNames[i]).npy",
                    header: NPYHeader.encode(descr: i == 1 ? "<i4" : "<i8", shape: i < 2 ? [N] : [N, L]),
                    source: .file(path: f.path, size: f.size)
                )
            }
            try zip.finish()
            try out.commit()
        } catch {
            archive?.discard()
            throw error
        }
    }

    /// Abandons the output: removes the temporary column files; nothing is written at ``path``
    /// (an earlier file there stays as it was). Does nothing after ``close()``.
    public func discard() {
        guard !closed else { return }
        closed = true
        for c in columns { c.discard() }
        stepColumn?.discard()
    }

    private func column(_ c: Column) -> NPZColumnFile { columns[c.rawValue] }
}

// MARK: - Temporary column files

/// One column's temporary file, written through a fixed-size buffer.
final class NPZColumnFile {
    let path: String
    private let file: BinaryOutputFile
    private var buffer: [UInt8] = []
    private static let capacity = 1 << 18
    /// Bytes appended so far.
    private(set) var size = 0

    init(path: String) throws {
        self.path = path
        self.file = try BinaryOutputFile(creating: path)
        buffer.reserveCapacity(Self.capacity)
    }

    /// Appends the bytes of an array of trivial values verbatim.
    func append<T>(_ values: [T]) throws {
        try values.withUnsafeBytes { raw in
            size += raw.count
            if buffer.count + raw.count > Self.capacity { try flush() }
            if raw.count >= Self.capacity {
                try file.write(raw)
            } else {
                buffer.append(contentsOf: raw)
            }
        }
    }

    /// Appends integers as little-endian bytes.
    func appendLittleEndian<T: FixedWidthInteger>(_ values: [T]) throws {
        #if _endian(little)
        try append(values)
        #else
        try append(values.map(\.littleEndian))
        #endif
    }

    /// Appends `count` unknown steps (`UInt32.max`), a bounded chunk at a time.
    func appendUnknownSteps(_ count: Int) throws {
        let chunk = [UInt32](repeating: .max, count: min(count, 1 << 16))
        var left = count
        while left > 0 {
            let n = min(left, chunk.count)
            try append(n == chunk.count ? chunk : Array(chunk[0..<n]))
            left -= n
        }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try file.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes the file (it stays on disk until ``discard()``).
    func finish() throws {
        try flush()
        try file.close()
    }

    /// Closes and removes the file.
    func discard() {
        try? file.close()
        binaryRemoveFile(path)
    }
}
