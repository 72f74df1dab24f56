// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The trace file formats, how to tell them apart (by name for writing, by content for reading),
// and the factories the command-line tool uses to open writers and binary readers.

public import MoERouting

/// A trace file format.
///
/// - `jsonl`: one JSON routing record per line (`.jsonl`, `.json`): the seed's format, slow but
///   readable anywhere.
/// - `binary`: the native `.moetrace` format: checksummed append-only chunks, fast to read,
///   survives a killed writer (see docs/trace-format.md).
/// - `npz`: a NumPy `.npz` archive of whole-run arrays, for Python analysis (read back by
///   ``NPZTraceReader``).
///
/// ```swift
/// TraceFormat(path: "run.moetrace")                 // .binary
/// let format = try TraceFormat.detect(readingPath: "run.bin")   // by magic bytes
/// let sink = try openTraceSink(path: "out.npz", shape: .mixtral8x7B)
/// ```
public enum TraceFormat: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// JSON Lines text.
    case jsonl
    /// The native `.moetrace` binary trace.
    case binary
    /// A NumPy `.npz` archive.
    case npz

    /// The format a file name's extension names (case-insensitive): `.jsonl`/`.json` -> jsonl,
    /// `.moetrace` -> binary, `.npz` -> npz; `nil` for anything else.
    public init?(path: String) {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
        switch path[path.index(after: dot)...].lowercased() {
        case "jsonl", "json": self = .jsonl
        case BinaryTraceFormat.fileExtension: self = .binary
        case "npz": self = .npz
        default: return nil
        }
    }

    /// The format that a file's first bytes show: the `.moetrace` magic, a zip signature (npz),
    /// or JSON text (`{` or `[` after optional whitespace and byte-order mark); `nil` otherwise.
    public init?(contentPrefix bytes: [UInt8]) {
        let magic = BinaryTraceFormat.magic
        if bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic {
            self = .binary
            return
        }
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B,
            (bytes[2] == 3 && bytes[3] == 4) || (bytes[2] == 5 && bytes[3] == 6)
        {
            self = .npz
            return
        }
        var i = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        if i < bytes.count, bytes[i] == UInt8(ascii: "{") || bytes[i] == UInt8(ascii: "[") {
            self = .jsonl
            return
        }
        return nil
    }

    /// The format of an existing file, for reading: its content first, then its extension (an
    /// empty `.jsonl` file is an empty trace).
    ///
    /// - Throws: ``TraceFileError`` when the file cannot be read or neither content nor name tells.
    public static func detect(readingPath path: String) throws -> TraceFormat {
        let file = try BinaryInputFile(path: path)
        defer { file.close() }
        let prefix = try file.read(count: 64, at: 0)
        let byContent = TraceFormat(contentPrefix: prefix)
        switch TraceFormat(path: path) {
        case .binary? where byContent != .binary:
            throw TraceFileError(path: path, message: notBinaryTraceMessage(prefix))
        case .npz? where byContent != .npz:
            throw TraceFileError(
                path: path,
                message:
                    "not a .npz archive: expected a zip archive (it starts with the bytes 50 4B 03 04), but the file \(describeFound(prefix))"
            )
        default: break
        }
        if let f = byContent { return f }
        if let f = TraceFormat(path: path) { return f }
        throw TraceFileError(
            path: path,
            message:
                "cannot tell the trace format: the file \(describeContent(prefix)) and its name does not end in .jsonl, .json, .moetrace or .npz"
        )
    }

    /// The conventional file extension, without the dot.
    public var fileExtension: String {
        switch self {
        case .jsonl: return "jsonl"
        case .binary: return BinaryTraceFormat.fileExtension
        case .npz: return "npz"
        }
    }

    public var description: String { rawValue }

    /// The message for a file named or opened as `.moetrace` that does not start with the magic:
    /// `not a .moetrace trace: expected the 8-byte magic 89 4D 4F 45 54 52 43 0A, but the file holds only 4 bytes (89 4D 4F 45)`.
    static func notBinaryTraceMessage(_ prefix: [UInt8]) -> String {
        "not a .moetrace trace: expected the 8-byte magic 89 4D 4F 45 54 52 43 0A (\"\\x89MOETRC\\n\"), but the file \(describeFound(prefix))"
    }

    /// What a file's first bytes are, for "expected ..., but the file ..." messages: "is empty",
    /// "holds only 4 bytes (89 4D 4F 45)", "looks like JSON text starting '{"problem_id' (a
    /// .jsonl trace? name it .jsonl)", "is a zip archive (a .npz export? name it .npz)", or
    /// "starts with the bytes ...".
    static func describeFound(_ prefix: [UInt8]) -> String {
        func hex(_ bytes: ArraySlice<UInt8>) -> String {
            bytes.map { b -> String in
                let s = String(b, radix: 16, uppercase: true)
                return s.count == 1 ? "0" + s : s
            }.joined(separator: " ")
        }
        switch TraceFormat(contentPrefix: prefix) {
        case .jsonl?:
            var start = prefix.startIndex
            while start < prefix.endIndex, [0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains(prefix[start]) {
                start += 1
            }
            let shown = prefix[start...].prefix(12).prefix { $0 >= 0x20 && $0 < 0x7F && $0 != 0x27 }
            return
                "looks like JSON text starting '\(String(decoding: shown, as: UTF8.self))' (a .jsonl trace? name it .jsonl)"
        case .npz?:
            return "is a zip archive (a .npz export? name it .npz)"
        default:
            if prefix.isEmpty { return "is empty" }
            if prefix.count < BinaryTraceFormat.magic.count {
                return "holds only \(prefix.count) byte\(prefix.count == 1 ? "" : "s") (\(hex(prefix[...])))"
            }
            return "starts with the bytes \(hex(prefix.prefix(8)))"
        }
    }

    /// A short description of what a file's first bytes look like, for error messages:
    /// "is empty", "looks like JSON text", "starts with the bytes 12 34 ...".
    static func describeContent(_ prefix: [UInt8]) -> String {
        guard !prefix.isEmpty else { return "is empty" }
        switch TraceFormat(contentPrefix: prefix) {
        case .jsonl?: return "looks like JSON text (a .jsonl trace?)"
        case .npz?: return "is a zip archive (a .npz export?)"
        case .binary?: return "is a .moetrace binary trace"
        case nil:
            let shown = prefix.prefix(8).map { b -> String in
                let s = String(b, radix: 16, uppercase: true)
                return s.count == 1 ? "0" + s : s
            }
            return "starts with the bytes \(shown.joined(separator: " "))"
        }
    }
}

// MARK: - Factories

/// Opens a writer for a trace format: a ``JSONLTraceWriter``, ``BinaryTraceWriter`` or ``NPZWriter``.
///
/// ```swift
/// let sink = try openTraceSink(path: "run.moetrace", shape: .mixtral8x7B,
///                              settings: ["engine": "vllm"])
/// ```
///
/// - Parameters:
///   - path: The output file.
///   - format: The format; `nil` takes it from the extension of `path`.
///   - shape: The shape of every block that will be written.
///   - domains: Domain names to register up front.
///   - settings: Capture settings, recorded in the file's header (binary) or `settings` array
///     (npz); JSONL has no place for them (nor for `shape` and `domains`).
/// - Throws: ``TraceFileError`` when the format cannot be told from the name, or the error of
///   the writer that could not create the file.
public func openTraceSink(
    path: String,
    format: TraceFormat? = nil,
    shape: ModelShape,
    domains: [String] = [],
    settings: [String: String] = [:]
) throws -> any RoutingBlockSink {
    guard let format = format ?? TraceFormat(path: path) else {
        throw TraceFileError(
            path: path,
            message:
                "cannot tell which trace format to write: name the file .jsonl, .moetrace or .npz, or state the format"
        )
    }
    switch format {
    case .binary:
        return try BinaryTraceWriter(path: path, shape: shape, domains: domains, settings: settings)
    case .npz:
        return try NPZWriter(path: path, shape: shape, domains: domains, settings: settings)
    case .jsonl:
        // JSONL records carry their own domain names; the shape and settings have no place there.
        return try JSONLTraceWriter(path: path)
    }
}

/// Opens a `.moetrace` binary trace for reading (see ``BinaryTraceReader``).
///
/// ```swift
/// let reader = try openBinaryTrace(path: "run.moetrace", options: TraceReadOptions(lenient: true))
/// ```
///
/// - Throws: ``TraceFileError`` or ``TraceError`` as ``BinaryTraceReader/init(path:options:)`` does.
public func openBinaryTrace(path: String, options: TraceReadOptions = TraceReadOptions()) throws -> BinaryTraceReader {
    try BinaryTraceReader(path: path, options: options)
}
