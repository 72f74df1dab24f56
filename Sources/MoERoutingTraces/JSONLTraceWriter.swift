// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Writes routing blocks as a JSONL trace that ``JSONLTraceReader`` (and the seed's tools, which
/// ignore the extra keys) can read back.
///
/// One line per present (token, layer) cell, in the shared-data spelling plus `phase`, `token`
/// when the vocabulary id is known, and `step` (the engine step) when the block has steps and the
/// token's is known:
/// `{"dataset":"gsm8k","problem_id":0,"layer":0,"token_idx":5,"experts":[6,5],"gating_probs":[0.696,0.304],"phase":"decode","token":17}`.
/// Tokens are written in block order, each token's layers ascending (token-major); the reader
/// accepts that as well as the layer-major order of the shared data, as long as each problem's
/// tokens are contiguous in the stream. Weights use `Float`'s shortest round-trip spelling, so
/// reading back gives the same values. Output is buffered; ``close()`` flushes.
///
/// The file is written under a temporary name beside `path` (``temporaryPath``, see
/// ``AtomicOutputFile``) and renamed onto `path` by ``close()``: a failure or an interrupt never
/// leaves a half-written trace under the final name nor destroys the file that was there.
/// ``discard()`` abandons the output.
///
/// ```swift
/// let writer = try JSONLTraceWriter(path: "out/trace.jsonl")
/// try writer.write(block)
/// try writer.close()
/// ```
public final class JSONLTraceWriter: RoutingBlockSink {
    /// The file written (at ``close()``; until then the lines go to ``temporaryPath``).
    public let path: String
    /// Where the lines go until ``close()`` renames the file onto ``path``.
    public var temporaryPath: String { file.temporaryPath }
    /// Records (cells) written so far.
    public private(set) var recordsWritten = 0

    /// Bytes gathered before a write to the file.
    static let flushBytes = 1 << 20

    private let file: AtomicOutputFile
    private var buffer: [UInt8] = []
    private var closed = false

    /// Creates the temporary file beside `path`; any file at `path` is untouched until ``close()``.
    ///
    /// - Throws: ``OutputFileError`` naming the file when it cannot be created.
    public init(path: String) throws {
        self.file = try AtomicOutputFile(path: path)
        self.path = path
        buffer.reserveCapacity(Self.flushBytes + 4096)
    }

    deinit {
        // Never closed: the lines so far stay at the temporary name, as after a kill.
        if !closed { try? flush() }
    }

    /// Appends one block's present cells.
    ///
    /// - Throws: ``TraceFileError`` when writing fails or the writer is closed.
    public func write(_ block: RoutingBlock) throws {
        guard !closed else { throw TraceFileError(path: path, message: "cannot write: the writer is closed") }
        let L = block.shape.layers
        let k = block.shape.topK
        let domains = block.domains.map(Self.escaped)
        let steps = block.step
        for t in 0..<block.tokenCount {
            let domain = domains[Int(block.domain[t])]
            for l in 0..<L where block.isPresent(token: t, layer: l) {
                append("{\"dataset\":\"")
                buffer.append(contentsOf: domain)
                append("\",\"problem_id\":")
                append(Int64(block.problemID[t]))
                append(",\"layer\":")
                append(Int64(l))
                append(",\"token_idx\":")
                append(Int64(block.position[t]))
                append(",\"experts\":[")
                for j in 0..<k {
                    if j > 0 { buffer.append(UInt8(ascii: ",")) }
                    append(Int64(block.expert(token: t, layer: l, slot: j)))
                }
                append("],\"gating_probs\":[")
                for j in 0..<k {
                    if j > 0 { buffer.append(UInt8(ascii: ",")) }
                    buffer.append(contentsOf: block.weight(token: t, layer: l, slot: j).description.utf8)
                }
                append(block.phase[t] == .prefill ? "],\"phase\":\"prefill\"" : "],\"phase\":\"decode\"")
                if block.tokenID[t] >= 0 {
                    append(",\"token\":")
                    append(Int64(block.tokenID[t]))
                }
                if let steps, steps[t] != .max {
                    append(",\"step\":")
                    append(Int64(steps[t]))
                }
                append("}\n")
                recordsWritten += 1
            }
            if buffer.count >= Self.flushBytes { try flush() }
        }
    }

    /// Flushes, closes and renames the file onto ``path`` (``AtomicOutputFile/commit()``). Later
    /// calls do nothing.
    ///
    /// - Throws: ``OutputFileError`` when the last write, the flush or the rename fails; the
    ///   temporary file is then removed.
    public func close() throws {
        guard !closed else { return }
        closed = true
        do {
            try flush()
        } catch {
            file.discard()
            throw error
        }
        try file.commit()
    }

    /// Abandons the output: removes the temporary file, leaving any file at ``path`` as it was.
    /// Later writes are refused; ``close()`` does nothing. Does nothing after ``close()``.
    public func discard() {
        guard !closed else { return }
        closed = true
        buffer.removeAll()
        file.discard()
    }

    // MARK: - Output

    private func flush() throws(OutputFileError) {
        try file.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func append(_ s: StaticString) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    private func append(_ v: Int64) {
        if v < 0 { buffer.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        let start = buffer.count
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(m % 10))
            m /= 10
        } while m > 0
        buffer[start..<buffer.count].reverse()
    }

    /// A domain name as the inside of a JSON string.
    static func escaped(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        return out
    }
}
