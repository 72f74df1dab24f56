// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Reads a text file line by line in large chunks, without ever holding the whole file.
///
/// Lines are handed out as pointers into an internal buffer, valid until the next call. Each line
/// excludes its `\n` and is followed by a NUL sentinel byte, so a parser may read one byte past
/// the line's end. A line longer than ``maximumLineBytes`` is skipped and reported as
/// ``Line/tooLong`` instead of growing the buffer without bound.
final class JSONLLineSource {
    /// One line of the file.
    enum Line {
        /// The line's bytes (without the terminator), NUL-terminated in the buffer.
        case text(UnsafePointer<UInt8>, count: Int)
        /// A line longer than ``maximumLineBytes``; its bytes were skipped.
        case tooLong
    }

    /// Bytes read per `read` call when the buffer is empty.
    static let chunkBytes = 4 << 20
    /// The longest line handed out; longer lines are skipped as ``Line/tooLong``.
    static let maximumLineBytes = 64 << 20

    /// The file.
    let path: String
    /// 1-based number of the line last returned.
    private(set) var lineNumber = 0
    /// Bytes read from the file so far.
    private(set) var bytesRead = 0

    private let fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var atEOF = false

    /// Opens a file for reading.
    ///
    /// - Throws: ``TraceFileError`` naming the file and the system's reason.
    init(path: String) throws(TraceFileError) {
        self.path = path
        let fd = LibC.open(path, LibC.readOnly)
        guard fd >= 0 else { throw TraceFileError(path: path, message: "cannot open for reading: \(Self.lastError())") }
        if LibC.status(descriptor: fd)?.kind == .directory {
            _ = LibC.close(fd)
            throw TraceFileError(path: path, message: "cannot read: it is a directory, not a trace file")
        }
        self.fd = fd
        self.capacity = Self.chunkBytes
        self.buffer = .allocate(capacity: Self.chunkBytes + 1)
    }

    deinit {
        _ = LibC.close(fd)
        buffer.deallocate()
    }

    /// The next line, or `nil` at the end of the file.
    ///
    /// - Throws: ``TraceFileError`` when reading fails.
    func nextLine() throws(TraceFileError) -> Line? {
        while true {
            if start < end, let hit = LibC.memchr(buffer + start, 0x0A, end - start) {
                let nl = hit.assumingMemoryBound(to: UInt8.self) - buffer
                let line = Line.text(UnsafePointer(buffer + start), count: nl - start)
                buffer[nl] = 0
                start = nl + 1
                lineNumber += 1
                return line
            }
            if atEOF {
                guard start < end else { return nil }
                let line = Line.text(UnsafePointer(buffer + start), count: end - start)
                buffer[end] = 0
                start = end
                lineNumber += 1
                return line
            }
            try fill()
            if end == capacity, start == 0, LibC.memchr(buffer, 0x0A, end) == nil {
                if capacity >= Self.maximumLineBytes {
                    try skipRestOfLine()
                    lineNumber += 1
                    return .tooLong
                }
                grow()
            }
        }
    }

    // MARK: - Buffer management

    /// Moves the unread tail to the front and reads more bytes after it.
    private func fill() throws(TraceFileError) {
        if start > 0 {
            let tail = end - start
            if tail > 0 { LibC.memmove(buffer, buffer + start, tail) }
            start = 0
            end = tail
        }
        guard end < capacity else { return }
        let n = try readSome(into: buffer + end, count: capacity - end)
        if n == 0 { atEOF = true }
        end += n
    }

    /// Doubles the buffer, for a line longer than it.
    private func grow() {
        let bigger = min(capacity * 2, Self.maximumLineBytes)
        let fresh = UnsafeMutablePointer<UInt8>.allocate(capacity: bigger + 1)
        fresh.update(from: buffer, count: end)
        buffer.deallocate()
        buffer = fresh
        capacity = bigger
    }

    /// Discards the buffer and the file's bytes up to and including the next newline.
    private func skipRestOfLine() throws(TraceFileError) {
        start = 0
        end = 0
        while true {
            let n = try readSome(into: buffer, count: capacity)
            if n == 0 {
                atEOF = true
                return
            }
            if let hit = LibC.memchr(buffer, 0x0A, n) {
                let nl = hit.assumingMemoryBound(to: UInt8.self) - buffer
                start = nl + 1
                end = n
                return
            }
        }
    }

    private func readSome(into p: UnsafeMutablePointer<UInt8>, count: Int) throws(TraceFileError) -> Int {
        while true {
            let n = LibC.read(fd, p, count)
            if n >= 0 {
                bytesRead += n
                return n
            }
            if LibC.errno == LibC.EINTR { continue }
            throw TraceFileError(path: path, message: "cannot read: \(Self.lastError())")
        }
    }

    static func lastError() -> String { LibC.errorText(LibC.errno) }
}
