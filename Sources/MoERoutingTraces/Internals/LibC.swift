// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The only file of MoERoutingTraces that imports the platform's C library. Every system call and
// C memory function the module uses goes through a thin wrapper here, so the platform conditions
// live in one place and the rest of the module reads as Swift (after swift-system's
// Internals/Syscalls.swift).

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Thin wrappers over the C library calls of this module, with the C names and semantics
/// (return values and `errno` as in C).
enum LibC {
    // MARK: - Errors

    /// The calling thread's `errno`.
    static var errno: Int32 {
        #if canImport(Darwin)
        Darwin.errno
        #elseif canImport(Musl)
        Musl.errno
        #else
        Glibc.errno
        #endif
    }

    static let EINTR: Int32 = systemEINTR
    static let EEXIST: Int32 = systemEEXIST
    static let EINVAL: Int32 = systemEINVAL
    static let EROFS: Int32 = systemEROFS

    /// `strerror(code)` as a Swift string.
    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    // MARK: - Files

    /// Flags for ``open(_:_:_:)``.
    static let readOnly = O_RDONLY
    static let writeOnly = O_WRONLY
    static let create = O_CREAT
    static let truncate = O_TRUNC
    static let exclusive = O_EXCL
    static let closeOnExec = O_CLOEXEC

    /// `open(2)`.
    static func open(_ path: String, _ flags: Int32, _ mode: UInt32 = 0o644) -> Int32 {
        systemOpen(path, flags, mode_t(mode))
    }

    /// `close(2)`.
    static func close(_ fd: Int32) -> Int32 { systemClose(fd) }

    /// `write(2)`.
    static func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { systemWrite(fd, p, n) }

    /// `pwrite(2)`.
    static func pwrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ offset: Int) -> Int {
        systemPwrite(fd, p, n, off_t(offset))
    }

    /// `read(2)`.
    static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { systemRead(fd, p, n) }

    /// `pread(2)`.
    static func pread(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ offset: Int) -> Int {
        systemPread(fd, p, n, off_t(offset))
    }

    /// `fsync(2)`.
    static func fsync(_ fd: Int32) -> Int32 { systemFsync(fd) }

    /// `fchmod(2)`.
    static func fchmod(_ fd: Int32, _ mode: UInt32) -> Int32 { systemFchmod(fd, mode_t(mode)) }

    /// `rename(2)`.
    static func rename(_ from: String, _ to: String) -> Int32 { systemRename(from, to) }

    /// `unlink(2)`.
    static func unlink(_ path: String) -> Int32 { systemUnlink(path) }

    /// `mkdir(2)`.
    static func mkdir(_ path: String, _ mode: UInt32) -> Int32 { systemMkdir(path, mode_t(mode)) }

    /// `access(path, W_OK) == 0`.
    static func isWritable(_ path: String) -> Bool { systemAccess(path, W_OK) == 0 }

    /// `realpath(3)`: the absolute path with every symbolic link resolved, or `nil`.
    static func realPath(_ path: String) -> String? {
        guard let p = systemRealpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// `getpid(2)`.
    static func processID() -> Int { Int(getpid()) }

    // MARK: - File status

    /// What `stat(2)` says of a file, in the fields this module reads.
    struct FileStatus {
        /// The kind of file.
        enum Kind { case regular, directory, symbolicLink, other }

        var kind: Kind
        /// The permission bits (`st_mode & 0o7777`).
        var permissions: UInt32
        var size: Int
        var device: UInt64
        var inode: UInt64

        fileprivate init(_ st: stat) {
            switch st.st_mode & S_IFMT {
            case S_IFREG: kind = .regular
            case S_IFDIR: kind = .directory
            case S_IFLNK: kind = .symbolicLink
            default: kind = .other
            }
            permissions = UInt32(st.st_mode & 0o7777)
            size = Int(st.st_size)
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
        }
    }

    /// `stat(2)` (symbolic links followed), or `nil` with `errno` set.
    static func status(_ path: String) -> FileStatus? {
        var st = stat()
        return systemStat(path, &st) == 0 ? FileStatus(st) : nil
    }

    /// `lstat(2)` (a symbolic link itself), or `nil` with `errno` set.
    static func linkStatus(_ path: String) -> FileStatus? {
        var st = stat()
        return systemLstat(path, &st) == 0 ? FileStatus(st) : nil
    }

    /// `fstat(2)`, or `nil` with `errno` set.
    static func status(descriptor fd: Int32) -> FileStatus? {
        var st = stat()
        return systemFstat(fd, &st) == 0 ? FileStatus(st) : nil
    }

    // MARK: - Memory

    /// `memchr(3)`.
    @inline(__always)
    static func memchr(_ p: UnsafeRawPointer, _ byte: Int32, _ n: Int) -> UnsafeMutableRawPointer? {
        systemMemchr(p, byte, n)
    }

    /// `memcmp(3)`.
    @inline(__always)
    static func memcmp(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Int32 { systemMemcmp(a, b, n) }

    /// `memmove(3)`.
    @inline(__always)
    static func memmove(_ to: UnsafeMutableRawPointer, _ from: UnsafeRawPointer, _ n: Int) {
        _ = systemMemmove(to, from, n)
    }
}

// File-scope names for the C functions: inside `LibC` its own methods shadow them.
private let systemEINTR = EINTR
private let systemEEXIST = EEXIST
private let systemEINVAL = EINVAL
private let systemEROFS = EROFS
private func systemOpen(_ p: String, _ f: Int32, _ m: mode_t) -> Int32 { open(p, f, m) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
private func systemPwrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ o: off_t) -> Int { pwrite(fd, p, n, o) }
private func systemRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }
private func systemPread(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ o: off_t) -> Int {
    pread(fd, p, n, o)
}
private func systemFsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func systemFchmod(_ fd: Int32, _ m: mode_t) -> Int32 { fchmod(fd, m) }
private func systemRename(_ a: String, _ b: String) -> Int32 { rename(a, b) }
private func systemUnlink(_ p: String) -> Int32 { unlink(p) }
private func systemMkdir(_ p: String, _ m: mode_t) -> Int32 { mkdir(p, m) }
private func systemAccess(_ p: String, _ m: Int32) -> Int32 { access(p, m) }
private func systemRealpath(_ p: String, _ r: UnsafeMutablePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    realpath(p, r)
}
private func systemStat(_ p: String, _ st: inout stat) -> Int32 { stat(p, &st) }
private func systemLstat(_ p: String, _ st: inout stat) -> Int32 { lstat(p, &st) }
private func systemFstat(_ fd: Int32, _ st: inout stat) -> Int32 { fstat(fd, &st) }
@inline(__always)
private func systemMemchr(_ p: UnsafeRawPointer, _ c: Int32, _ n: Int) -> UnsafeMutableRawPointer? {
    memchr(p, c, n)
}
@inline(__always)
private func systemMemcmp(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Int32 { memcmp(a, b, n) }
@inline(__always)
private func systemMemmove(_ a: UnsafeMutableRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> UnsafeMutableRawPointer? {
    memmove(a, b, n)
}
