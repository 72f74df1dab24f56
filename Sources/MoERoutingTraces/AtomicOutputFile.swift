// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Every output file of the tool is written under a temporary name beside its final name and
// renamed into place only when it is complete, so a failure or an interrupt never leaves a
// half-written file under the final name nor destroys the file that was there.

/// An output file written under a temporary name in the target's directory and renamed onto its
/// final name by ``commit()``: until then, any file already at the final name is untouched, and
/// no reader ever sees a half-written file there.
///
/// The temporary file is `<final>.partial-<pid>` (see ``temporaryPath(for:)``): in the same
/// directory, so the rename is atomic (`rename(2)` within one file system), and unique per
/// process. Writes are unbuffered: each ``write(_:)-(UnsafeRawBufferPointer)`` reaches the kernel
/// before it returns, so after a hard kill (no chance to commit) the temporary file holds
/// everything written so far; a `.moetrace` there is readable up to its last complete chunk
/// (`moe-routing inspect trace.moetrace.partial-1234`). ``commit()`` flushes to stable storage
/// (`fsync(2)`), closes and renames; ``discard()`` removes the temporary file. A file that is
/// neither committed nor discarded when it is deallocated stays at ``temporaryPath``, as after a
/// kill: nothing written is ever silently thrown away.
///
/// When the final name is a symbolic link, the file it points to is replaced (the link stays).
/// An existing final file's permission bits are kept. A device, pipe or socket at the final name
/// (`/dev/null`, `/dev/stdout`) is written in place: there ``temporaryPath`` is the final name,
/// and nothing is renamed or removed.
///
/// Errors are ``OutputFileError``s, one line with the system's reason:
/// `cannot write out/run.moetrace: No space left on device`.
///
/// ```swift
/// let file = try AtomicOutputFile(path: "out/report.json")
/// do {
///     try file.write(Array("{}\n".utf8))
///     try file.commit()          // out/report.json appears, complete
/// } catch {
///     file.discard()             // out/report.json is as it was
///     throw error
/// }
/// ```
public final class AtomicOutputFile {
    /// The final name, as given.
    public let path: String
    /// Where the bytes go until ``commit()``: `<final>.partial-<pid>`, beside the final file
    /// (beside the file a symbolic link points to, when the final name is one).
    public let temporaryPath: String
    /// Bytes written so far (the temporary file's current end).
    public private(set) var offset = 0
    /// Whether ``commit()`` has renamed the file into place.
    public private(set) var isCommitted = false

    /// The name the rename replaces: `path`, or the file a symbolic link at `path` points to.
    private let target: String
    /// A device, pipe or socket at the final name: written in place, nothing renamed or removed.
    private let isDirect: Bool
    private var fd: Int32

    /// The temporary name used for a final name: `<final>.partial-<pid>`.
    ///
    /// ```swift
    /// AtomicOutputFile.temporaryPath(for: "out/t.moetrace")   // "out/t.moetrace.partial-4242"
    /// ```
    public static func temporaryPath(for path: String) -> String {
        "\(path).partial-\(LibC.processID())"
    }

    /// Creates the temporary file (truncating a stale one of this process's name).
    ///
    /// - Parameter path: The final name.
    /// - Throws: ``OutputFileError`` when the temporary file cannot be created, with the
    ///   system's reason (`No such file or directory` for a missing directory, `Permission
    ///   denied`, `Read-only file system`, ...).
    public init(path: String) throws(OutputFileError) {
        self.path = path
        var target = path
        var direct = false
        let st = LibC.status(path)
        if let st {
            switch st.kind {
            case .directory:
                throw OutputFileError(path: path, reason: "it is a directory")
            case .regular:
                if LibC.linkStatus(path)?.kind == .symbolicLink, let resolved = outputRealPath(path) {
                    target = resolved
                }
            default:
                // A device, pipe or socket (/dev/null, /dev/stdout): written in place, never renamed over.
                direct = true
            }
        }
        self.target = target
        self.isDirect = direct
        self.temporaryPath = direct ? target : Self.temporaryPath(for: target)
        let flags =
            direct ? LibC.writeOnly | LibC.closeOnExec : LibC.writeOnly | LibC.create | LibC.truncate | LibC.closeOnExec
        let fd = LibC.open(temporaryPath, flags, 0o644)
        guard fd >= 0 else { throw OutputFileError(path: path, reason: binarySystemErrorText()) }
        self.fd = fd
        // Keep an existing file's permission bits (the rename would otherwise reset them).
        if !direct, let st, st.kind == .regular {
            _ = LibC.fchmod(fd, st.permissions)
        }
    }

    deinit {
        // Neither committed nor discarded: keep the bytes at the temporary name, as a kill would.
        if fd >= 0 { _ = LibC.close(fd) }
    }

    /// Whether the file is still open for writing (not yet committed or discarded).
    public var isOpen: Bool { fd >= 0 }

    /// Appends all bytes, handed to the kernel before this returns.
    ///
    /// - Throws: ``OutputFileError`` when the write fails or the file is no longer open.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputFileError) {
        guard fd >= 0 else { throw OutputFileError(path: path, reason: "the file was already committed or discarded") }
        let result = writeAllBytes(fd, bytes)
        offset += result.written
        if let failure = result.failure { throw OutputFileError(path: path, reason: failure) }
    }

    /// Appends an array's bytes.
    ///
    /// - Throws: ``OutputFileError`` as ``write(_:)-(UnsafeRawBufferPointer)`` does.
    public func write(_ bytes: [UInt8]) throws(OutputFileError) {
        var failure: OutputFileError?
        bytes.withUnsafeBytes { raw in
            do throws(OutputFileError) { try write(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Overwrites bytes at an absolute offset without moving the end (zip local headers).
    ///
    /// - Throws: ``OutputFileError`` when the write fails or the file is no longer open.
    public func overwrite(_ bytes: [UInt8], at position: Int) throws(OutputFileError) {
        guard fd >= 0 else { throw OutputFileError(path: path, reason: "the file was already committed or discarded") }
        let result = bytes.withUnsafeBytes { writeAllBytes(fd, $0, at: position) }
        if let failure = result.failure { throw OutputFileError(path: path, reason: failure) }
    }

    /// Flushes the file to stable storage, closes it and renames it onto the final name. A second
    /// call does nothing.
    ///
    /// - Throws: ``OutputFileError`` when the flush, close or rename fails; the temporary file is
    ///   then removed and the final name keeps what it had.
    public func commit() throws(OutputFileError) {
        if isCommitted { return }
        guard fd >= 0 else { throw OutputFileError(path: path, reason: "the file was already discarded") }
        let descriptor = fd
        fd = -1
        var failure: String?
        if !isDirect, LibC.fsync(descriptor) != 0, LibC.errno != LibC.EINVAL, LibC.errno != LibC.EROFS {
            failure = binarySystemErrorText()
        }
        if LibC.close(descriptor) != 0, failure == nil { failure = binarySystemErrorText() }
        if !isDirect, failure == nil, LibC.rename(temporaryPath, target) != 0 { failure = binarySystemErrorText() }
        if let failure {
            if !isDirect { _ = LibC.unlink(temporaryPath) }
            throw OutputFileError(path: path, reason: failure)
        }
        isCommitted = true
        if !isDirect { syncDirectory(of: target) }
    }

    /// Closes and removes the temporary file; the final name keeps what it had. Does nothing after
    /// ``commit()`` or a first discard.
    public func discard() {
        guard fd >= 0 else { return }
        _ = LibC.close(fd)
        fd = -1
        if !isDirect { _ = LibC.unlink(temporaryPath) }
    }

    /// Writes a whole small file atomically: the bytes under the temporary name, then
    /// ``commit()``; on failure nothing is left behind and the final name keeps what it had.
    ///
    /// ```swift
    /// try AtomicOutputFile.write(Array(json.utf8), to: "out/run.json")
    /// ```
    ///
    /// - Throws: ``OutputFileError``.
    public static func write(_ bytes: [UInt8], to path: String) throws(OutputFileError) {
        let file = try AtomicOutputFile(path: path)
        do {
            try file.write(bytes)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }

    /// Makes the rename durable (best effort: some file systems refuse to sync a directory).
    private func syncDirectory(of file: String) {
        let dir = outputDirectoryName(file)
        let d = LibC.open(dir, LibC.readOnly | LibC.closeOnExec)
        guard d >= 0 else { return }
        _ = LibC.fsync(d)
        _ = LibC.close(d)
    }
}

/// An output that cannot be written: one line naming the file and the reason, as the system
/// gives it (`strerror`) or as the tool found it.
///
/// ```swift
/// OutputFileError(path: "/proc/x/report.json", reason: "No such file or directory").description
/// // "cannot write /proc/x/report.json: No such file or directory"
/// ```
public struct OutputFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The output, as the user named it.
    public var path: String
    /// Why it cannot be written.
    public var reason: String

    /// Creates an error.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot write \(path): \(reason)" }
}

// MARK: - System helpers

/// The directory part of a path: `.` for a bare name, `/` for a file in the root.
func outputDirectoryName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let dir = path[..<slash]
    return dir.isEmpty ? "/" : String(dir)
}

/// `realpath(3)`: the absolute path with every symbolic link resolved, or `nil` when a component
/// does not exist.
func outputRealPath(_ path: String) -> String? {
    LibC.realPath(path)
}
