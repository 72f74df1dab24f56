// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// What the routing benchmarks measure besides wall time: the process's CPU time and the
// process's resident memory. The only file of the benchmarks that imports the C library: its few
// file helpers (process id, file size, removal, an environment variable) live here too.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time of the whole process in seconds, every thread included (a parallel
/// `MultiplexAnalyzer`'s workers too). Wall-clock figures suffer when the machine is shared;
/// CPU time much less.
func processCPUSeconds() -> Double {
    #if canImport(Glibc) || canImport(Musl)
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    #else
    return Double(clock()) / Double(CLOCKS_PER_SEC)
    #endif
}

/// A duration in seconds.
func durationSeconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// A `/proc/self/status` field in kB (`VmHWM:` peak resident memory, `VmRSS:` current), or nil
/// where the file or the field is missing.
func processStatusKB(_ field: String) -> Int? {
    let fd = open("/proc/self/status", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { _ = close(fd) }
    var bytes = [UInt8](repeating: 0, count: 16384)
    let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return nil }
    let text = String(decoding: bytes[0..<n], as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix(field) {
        return line.split(separator: " ").compactMap { Int($0) }.first
    }
    return nil
}

// MARK: - File helpers

/// `getpid(2)`, for unique temporary names.
func processID() -> Int { Int(getpid()) }

/// The size of the file at `path` (`stat(2)`), or `nil` when it cannot be read.
func fileSize(_ path: String) -> Int? {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : nil
}

/// Removes a file, ignoring errors.
func removeFile(_ path: String) { _ = unlink(path) }

/// `getenv(name)`.
func environmentValue(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// `fflush(NULL)` (every output stream): before a child process writes to the same output.
func flushStandardOutput() { fflush(nil) }
