// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The only file of VLLMCapture that imports the platform's C library: the signal calls of
// CaptureInterruption (all async-signal-safe) and the terminal check of the progress lines.

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Thin wrappers over the C library calls of this module, with C semantics. Those marked
/// async-signal-safe are called from the signal handler: they must not allocate or lock.
enum LibC {
    // Computed, not stored: the signal handler reads them, and a stored static is initialised
    // lazily (swift_once), which is not async-signal-safe.
    static var SIGINT: Int32 { systemSIGINT }
    static var SIGTERM: Int32 { systemSIGTERM }

    /// `signal(number, handler)`; `nil` restores the default action (`SIG_DFL`). Async-signal-safe.
    static func setSignalHandler(_ number: Int32, _ handler: (@convention(c) (Int32) -> Void)?) {
        _ = signal(number, handler ?? SIG_DFL)
    }

    /// Unblocks SIGINT and SIGTERM on the calling thread (`pthread_sigmask(SIG_UNBLOCK)`).
    static func unblockInterruptSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, systemSIGINT)
        sigaddset(&set, systemSIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// `raise(3)`. Async-signal-safe.
    static func raiseSignal(_ number: Int32) { _ = raise(number) }

    /// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds. Async-signal-safe.
    static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        _ = clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// `write(2, bytes, count)` to standard error, unbuffered. Async-signal-safe.
    static func writeStandardError(_ bytes: UnsafePointer<UInt8>, _ count: Int) { _ = write(2, bytes, count) }

    /// `isatty(2)`: whether standard error is a terminal.
    static func standardErrorIsTerminal() -> Bool { isatty(2) != 0 }
}

// File-scope names for the C constants (shadowed inside `LibC`); computed, so never lazily initialised.
private var systemSIGINT: Int32 { SIGINT }
private var systemSIGTERM: Int32 { SIGTERM }
