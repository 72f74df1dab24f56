// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Thin POSIX file wrappers for the .npz writer's temporary column files and the binary reader:
// unbuffered writes, positioned reads, and errors that name the file and the system's reason.
// (Output files themselves go through AtomicOutputFile.)

/// A trace file (any format) that could not be opened, read, written or closed, or a writer asked
/// to do something it cannot (a block of another shape, an archive member over a format limit) —
/// as opposed to a bad record in it, which is a ``TraceError``.
///
/// The description is one line naming the file, the problem and, where there is one, the fix:
/// `runs/a.jsonl: cannot open for reading: No such file or directory`.
public struct TraceFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// The text of the current `errno`.
func binarySystemErrorText() -> String {
    LibC.errorText(LibC.errno)
}

// MARK: - Output

/// A file opened for writing, with unbuffered (syscall-per-call) writes.
final class BinaryOutputFile {
    let path: String
    private var fd: Int32
    /// Bytes written so far by ``write(_:)`` (the current end of file).
    private(set) var offset: Int = 0

    /// Creates or truncates `path`.
    init(creating path: String) throws {
        self.path = path
        let fd = LibC.open(path, LibC.writeOnly | LibC.create | LibC.truncate | LibC.closeOnExec, 0o644)
        guard fd >= 0 else {
            throw TraceFileError(path: path, message: "cannot create the file: \(binarySystemErrorText())")
        }
        self.fd = fd
    }

    deinit { if fd >= 0 { _ = LibC.close(fd) } }

    var isOpen: Bool { fd >= 0 }

    /// Appends all bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw TraceFileError(path: path, message: "write after close") }
        let result = writeAllBytes(fd, bytes)
        offset += result.written
        if let failure = result.failure { throw TraceFileError(path: path, message: "write failed: \(failure)") }
    }

    /// Appends an array's bytes.
    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Overwrites bytes at an absolute offset without moving the end.
    func overwrite(_ bytes: [UInt8], at position: Int) throws {
        let result = bytes.withUnsafeBytes { writeAllBytes(fd, $0, at: position) }
        if let failure = result.failure { throw TraceFileError(path: path, message: "write failed: \(failure)") }
    }

    /// Closes the descriptor, reporting a failed close (which can mean lost data on some file systems).
    func close() throws {
        guard fd >= 0 else { return }
        let r = LibC.close(fd)
        fd = -1
        if r != 0 { throw TraceFileError(path: path, message: "close failed: \(binarySystemErrorText())") }
    }
}

// MARK: - Input

/// A file opened for positioned reads.
final class BinaryInputFile {
    let path: String
    private var fd: Int32
    /// The file's size when it was opened.
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = LibC.open(path, LibC.readOnly | LibC.closeOnExec)
        guard fd >= 0 else {
            throw TraceFileError(path: path, message: "cannot open the file: \(binarySystemErrorText())")
        }
        guard let st = LibC.status(descriptor: fd) else {
            let m = binarySystemErrorText()
            _ = LibC.close(fd)
            throw TraceFileError(path: path, message: "cannot stat the file: \(m)")
        }
        guard st.kind == .regular else {
            _ = LibC.close(fd)
            throw TraceFileError(path: path, message: "not a regular file")
        }
        self.fd = fd
        self.size = st.size
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = LibC.close(fd) }
        fd = -1
    }

    /// Reads up to `buffer.count` bytes at `position`; fewer only at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: Int) throws -> Int {
        guard fd >= 0 else { throw TraceFileError(path: path, message: "read after close") }
        guard let base = buffer.baseAddress else { return 0 }
        var got = 0
        while got < buffer.count {
            let r = LibC.pread(fd, base + got, buffer.count - got, position + got)
            if r < 0 {
                if LibC.errno == LibC.EINTR { continue }
                throw TraceFileError(
                    path: path,
                    message: "read failed at byte \(position + got): \(binarySystemErrorText())"
                )
            }
            if r == 0 { break }
            got += r
        }
        return got
    }

    /// Reads up to `count` bytes at `position` into a new array (shorter only at the end of the file).
    func read(count: Int, at position: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let got = try out.withUnsafeMutableBytes { try read(into: $0, at: position) }
        if got < count { out.removeLast(count - got) }
        return out
    }
}

// MARK: - Small helpers

/// Writes every byte of `bytes` to `fd`, retrying after `EINTR`: appended with `write(2)`, or at
/// the absolute `position` with `pwrite(2)` (which leaves the end of the file where it is). Shared
/// by ``BinaryOutputFile`` and ``AtomicOutputFile``.
///
/// - Returns: the bytes written, and the system's reason (`strerror`) when a write failed.
func writeAllBytes(
    _ fd: Int32,
    _ bytes: UnsafeRawBufferPointer,
    at position: Int? = nil
) -> (written: Int, failure: String?) {
    guard var p = bytes.baseAddress else { return (0, nil) }
    var n = bytes.count
    var written = 0
    while n > 0 {
        let w = position.map { LibC.pwrite(fd, p, n, $0 + written) } ?? LibC.write(fd, p, n)
        if w < 0 {
            if LibC.errno == LibC.EINTR { continue }
            return (written, binarySystemErrorText())
        }
        p += w
        n -= w
        written += w
    }
    return (written, nil)
}

/// Removes a file, ignoring errors (cleanup of temporary files).
func binaryRemoveFile(_ path: String) {
    _ = LibC.unlink(path)
}

/// The process id, for unique temporary names.
func binaryProcessID() -> Int { LibC.processID() }
