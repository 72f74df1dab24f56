// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `.moetrace` binary trace format: constants shared by the writer and the reader, the public
// header and totals types, and little-endian encoding helpers. docs/trace-format.md describes the
// layout byte by byte; keep the two in step.

public import MoERouting

// MARK: - Public types

/// What a `.moetrace` file's header says: the format version, the model shape, the domain names
/// known when the capture began, and the capture settings.
///
/// ```swift
/// let reader = try BinaryTraceReader(path: "run.moetrace")
/// print(reader.header.shape, reader.header.settings["engine"] ?? "?")
/// ```
public struct BinaryTraceHeader: Sendable, Equatable {
    /// Major format version; a reader reads only its own major version.
    public var majorVersion: Int
    /// Minor format version; later minors only add optional chunks, columns and header fields.
    public var minorVersion: Int
    /// The shape of every block in the file.
    public var shape: ModelShape
    /// Domain names known when the file was opened; later names arrive in domain chunks.
    public var domains: [String]
    /// Capture settings (engine, model path, dtype, ...), free-form.
    public var settings: [String: String]

    /// Creates a header (the writer fills the version with ``BinaryTraceFormat/currentMajorVersion``
    /// and ``BinaryTraceFormat/currentMinorVersion``).
    public init(
        majorVersion: Int = BinaryTraceFormat.currentMajorVersion,
        minorVersion: Int = BinaryTraceFormat.currentMinorVersion,
        shape: ModelShape,
        domains: [String] = [],
        settings: [String: String] = [:]
    ) {
        self.majorVersion = majorVersion
        self.minorVersion = minorVersion
        self.shape = shape
        self.domains = domains
        self.settings = settings
    }

    /// The version as text, for example `"1.0"`.
    public var formatVersion: String { "\(majorVersion).\(minorVersion)" }
}

/// Counts over a binary trace: blocks, tokens and token-layer records (present cells).
public struct BinaryTraceTotals: Sendable, Equatable, CustomStringConvertible {
    /// Block chunks.
    public var blocks: Int
    /// Tokens.
    public var tokens: Int
    /// Present (token, layer) cells.
    public var records: Int

    /// Creates totals.
    public init(blocks: Int = 0, tokens: Int = 0, records: Int = 0) {
        self.blocks = blocks
        self.tokens = tokens
        self.records = records
    }

    public var description: String { "\(blocks) blocks, \(tokens) tokens, \(records) records" }
}

/// How a `.moetrace` file ended: closed cleanly, closed after an interrupted capture, or cut off
/// (no end chunk: the writer was killed, or the file is still being written).
///
/// ```swift
/// let reader = try BinaryTraceReader(path: "run.moetrace")
/// while try reader.nextBlock() != nil {}
/// if case .interrupted(let done, let total) = reader.closure { print("\(done) of \(total) problems") }
/// ```
public enum BinaryTraceClosure: Sendable, Equatable, CustomStringConvertible {
    /// The end chunk says the writer finished normally.
    case closed
    /// The end chunk says the capture was interrupted after `completed` of `total` problems
    /// (the unfinished problems' routing so far may be in the file too).
    case interrupted(completed: Int, total: Int)
    /// No end chunk: the file stops after its last complete chunk, or inside a chunk.
    case cutOff

    /// `closed`, `interrupted` or `cut_off`: the value of `inspect --format json`'s `closure`.
    public var name: String {
        switch self {
        case .closed: return "closed"
        case .interrupted: return "interrupted"
        case .cutOff: return "cut_off"
        }
    }

    public var description: String {
        switch self {
        case .closed: return "closed"
        case .interrupted(let completed, let total): return "interrupted after \(completed) of \(total) problems"
        case .cutOff: return "cut off (no end chunk: the writer was killed or is still writing)"
        }
    }
}

/// Constants of the `.moetrace` format (see docs/trace-format.md).
public enum BinaryTraceFormat {
    /// The file extension, without the dot.
    public static let fileExtension = "moetrace"
    /// The eight bytes every `.moetrace` file starts with: `\x89MOETRC\n`.
    public static let magic: [UInt8] = [0x89, 0x4D, 0x4F, 0x45, 0x54, 0x52, 0x43, 0x0A]
    /// The major version this library writes and reads.
    public static let currentMajorVersion = 1
    /// The minor version this library writes; it reads every minor of its major version.
    /// Minor 1 added the end chunk's closure status (interrupted, with problem counts).
    public static let currentMinorVersion = 1

    // MARK: Internal layout constants

    /// The four bytes that start every chunk: `MOEC`.
    static let chunkMagic: [UInt8] = [0x4D, 0x4F, 0x45, 0x43]
    static let chunkMagicWord: UInt32 = 0x4345_4F4D  // "MOEC" read little-endian
    /// Bytes before the header payload: magic, major, minor, payload length.
    static let headerPrefixSize = 16
    /// Bytes of a chunk frame before its payload.
    static let frameSize = 24
    /// Bytes of one column-directory entry.
    static let columnEntrySize = 24
    /// Bytes of a block payload before its column directory.
    static let blockPrefixSize = 8
    /// Bytes of an end payload as written by a clean close (format 1.0 and later).
    static let endPayloadSize = 32
    /// Bytes of an end payload with the problem counts of an interrupted capture (format 1.1).
    static let interruptedEndPayloadSize = 48
    /// End-chunk status (payload bytes 28..<32): the writer closed the file normally.
    static let endStatusClosed: UInt32 = 0
    /// End-chunk status: the capture was interrupted; problem counts follow at bytes 32..<48.
    static let endStatusInterrupted: UInt32 = 1
    /// Bytes of a layer-timings payload before its records: u32 record count, u32 layer count.
    static let timingPrefixSize = 8
    /// Bytes of one timing record before its per-layer values: i64 step, i32 rows, u32 reserved.
    static let timingRecordPrefixSize = 16
    /// Timing records the writer buffers before it writes a layer-timings chunk on its own.
    static let timingBatchSize = 64
    /// Frame flag: a reader that does not know the chunk kind may skip the chunk.
    static let optionalFlag: UInt16 = 1
    /// Column-directory flag: a reader that does not know the column tag may skip the column.
    static let optionalColumnFlag: UInt8 = 1
    /// Largest header payload a reader accepts (a bound on memory for corrupt input).
    static let maximumHeaderPayload = 1 << 28
    /// Largest chunk payload a writer produces or a reader accepts.
    static let maximumChunkPayload = 1 << 40
}

/// Chunk kinds (frame bytes 4..<6).
enum BinaryChunkKind: UInt16 {
    /// New domain names: u32 first index, u32 count, then the names.
    case domains = 1
    /// A routing block: token count, column directory, columns.
    case block = 2
    /// Written by `close()`: totals and a closure status, so readers tell a closed file from an
    /// interrupted or a cut one.
    case end = 3
    /// Per-layer-call timings (routing and MoE layer wall time per step and layer), always
    /// written with the optional flag so readers that do not know it skip it.
    case layerTimings = 16
}

/// Column tags in a block's column directory.
enum BinaryColumnTag: UInt16 {
    case ids = 1
    case weights = 2
    case mask = 3
    case domain = 4
    case problemID = 5
    case position = 6
    case phase = 7
    case tokenID = 8
    /// Optional (flag set): per token, the engine step (forward pass) that routed it, the index
    /// layer-timing records carry; `u32` written, `u32` or `u64` read, all ones = unknown.
    case step = 32

    var name: String {
        switch self {
        case .ids: return "ids"
        case .weights: return "weights"
        case .mask: return "mask"
        case .domain: return "domain"
        case .problemID: return "problem_id"
        case .position: return "position"
        case .phase: return "phase"
        case .tokenID: return "token_id"
        case .step: return "step"
        }
    }
}

/// Element types of columns.
enum BinaryColumnDType: UInt8 {
    case u8 = 1
    case u16 = 2
    case u32 = 3
    case u64 = 4
    case i8 = 5
    case i16 = 6
    case i32 = 7
    case i64 = 8
    case f16 = 9
    case f32 = 10
    case f64 = 11
    /// Reserved: bits packed least-significant first (not written by format 1.0).
    case bits = 12

    var name: String {
        switch self {
        case .u8: return "u8"
        case .u16: return "u16"
        case .u32: return "u32"
        case .u64: return "u64"
        case .i8: return "i8"
        case .i16: return "i16"
        case .i32: return "i32"
        case .i64: return "i64"
        case .f16: return "f16"
        case .f32: return "f32"
        case .f64: return "f64"
        case .bits: return "bits"
        }
    }
}

// MARK: - Little-endian encoding

/// Appends little-endian values to a byte array (header and small chunks).
struct BinaryByteEncoder {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// A string: u32 byte length, then UTF-8.
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    /// Zero bytes until the count is `remainder` modulo `multiple`.
    mutating func pad(toMultipleOf multiple: Int, remainder: Int = 0) {
        while bytes.count % multiple != remainder { bytes.append(0) }
    }
}

/// Reads little-endian values from a byte buffer, never past its end.
struct BinaryByteDecoder {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    struct Overrun: Error {}

    var remaining: Int { bytes.count - position }

    mutating func u8() throws(Overrun) -> UInt8 {
        guard remaining >= 1 else { throw Overrun() }
        defer { position += 1 }
        return bytes[position]
    }
    mutating func u16() throws(Overrun) -> UInt16 {
        guard remaining >= 2 else { throw Overrun() }
        defer { position += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }
    mutating func u32() throws(Overrun) -> UInt32 {
        guard remaining >= 4 else { throw Overrun() }
        defer { position += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }
    mutating func u64() throws(Overrun) -> UInt64 {
        guard remaining >= 8 else { throw Overrun() }
        defer { position += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }
    /// A u32-length-prefixed UTF-8 string; invalid UTF-8 is repaired with U+FFFD.
    mutating func string() throws(Overrun) -> String {
        let n = Int(try u32())
        guard remaining >= n else { throw Overrun() }
        defer { position += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)]), as: UTF8.self)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores a little-endian integer at a byte offset (no alignment needed).
    @inline(__always)
    func binaryStoreLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

extension UnsafeRawBufferPointer {
    /// Loads a little-endian integer at a byte offset (no alignment needed).
    @inline(__always)
    func binaryLoadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// `n` rounded up to a multiple of 8.
@inline(__always) func binaryPadded8(_ n: Int) -> Int { (n + 7) & ~7 }

// MARK: - Header encoding

extension BinaryTraceHeader {
    /// The complete header bytes: prefix, payload (padded so the header ends on an 8-byte
    /// boundary) and CRC-32.
    func encoded() -> [UInt8] {
        var p = BinaryByteEncoder()
        p.u32(UInt32(shape.layers))
        p.u32(UInt32(shape.experts))
        p.u32(UInt32(shape.topK))
        if let name = shape.name {
            p.u8(1)
            p.string(name)
        } else {
            p.u8(0)
        }
        p.u32(UInt32(domains.count))
        for d in domains { p.string(d) }
        p.u32(UInt32(settings.count))
        for key in settings.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            p.string(key)
            p.string(settings[key] ?? "")
        }
        // prefix (16) + payload + crc (4) must be a multiple of 8.
        p.pad(toMultipleOf: 8, remainder: 4)
        var out = BinaryByteEncoder()
        out.bytes = BinaryTraceFormat.magic
        out.u16(UInt16(majorVersion))
        out.u16(UInt16(minorVersion))
        out.u32(UInt32(p.bytes.count))
        out.bytes.append(contentsOf: p.bytes)
        out.u32(CRC32.checksum(out.bytes))
        return out.bytes
    }

    /// Parses a header payload (format major version 1). Unknown trailing bytes are ignored.
    ///
    /// - Throws: ``BinaryFormatProblem`` naming the bad field.
    static func decodePayload(
        _ payload: UnsafeRawBufferPointer,
        major: Int,
        minor: Int
    ) throws(BinaryFormatProblem)
        -> BinaryTraceHeader
    {
        var d = BinaryByteDecoder(payload)
        do {
            let layers = Int(try d.u32())
            let experts = Int(try d.u32())
            let topK = Int(try d.u32())
            let hasName = try d.u8()
            let name: String? = hasName != 0 ? try d.string() : nil
            let shape: ModelShape
            do {
                shape = try ModelShape(layers: layers, experts: experts, topK: topK, name: name)
            } catch {
                throw BinaryFormatProblem(.malformed, "the header's model shape is invalid: \(error)")
            }
            let domainCount = Int(try d.u32())
            guard domainCount <= 65_536, domainCount <= d.remaining / 4 else {
                throw BinaryFormatProblem(.malformed, "the header lists \(domainCount) domains, more than it can hold")
            }
            var domains: [String] = []
            domains.reserveCapacity(domainCount)
            for _ in 0..<domainCount { domains.append(try d.string()) }
            let settingCount = Int(try d.u32())
            guard settingCount <= d.remaining / 8 else {
                throw BinaryFormatProblem(
                    .malformed,
                    "the header lists \(settingCount) settings, more than it can hold"
                )
            }
            var settings: [String: String] = [:]
            for _ in 0..<settingCount {
                let k = try d.string()
                settings[k] = try d.string()
            }
            return BinaryTraceHeader(
                majorVersion: major,
                minorVersion: minor,
                shape: shape,
                domains: domains,
                settings: settings
            )
        } catch let e as BinaryFormatProblem {
            throw e
        } catch {
            throw BinaryFormatProblem(.malformed, "the header payload ends in the middle of a field")
        }
    }
}

/// A problem with the contents of a header or chunk, before it is located in a file.
struct BinaryFormatProblem: Error {
    var kind: RecordIssue.Kind
    var message: String
    init(_ kind: RecordIssue.Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}
