// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ctrl-C during a capture: the first SIGINT asks the run to stop at the next engine step (the
/// trace so far is flushed, the run reports it was interrupted); a second one ends the process
/// at once, as Ctrl-C normally does.
///
/// ```swift
/// CaptureInterruption.install()
/// defer { CaptureInterruption.uninstall() }
/// ```
public enum CaptureInterruption {
    /// Whether a stop was requested since ``install()`` or ``reset()``.
    public static var isRequested: Bool { interruptRequests.load(ordering: .relaxed) > 0 }

    /// Installs the SIGINT handler (the embedded Python installs none of its own).
    public static func install() {
        reset()
        _ = signal(SIGINT, onInterrupt)
    }

    /// Restores the default SIGINT behaviour.
    public static func uninstall() {
        _ = signal(SIGINT, SIG_DFL)
    }

    /// Clears a pending request.
    public static func reset() {
        interruptRequests.store(0, ordering: .relaxed)
    }

    /// Requests a stop, as the first Ctrl-C does (for tests and embedding programs).
    public static func request() {
        interruptRequests.add(1, ordering: .relaxed)
    }
}

private let interruptRequests = Atomic<Int>(0)

private func onInterrupt(_ signalNumber: Int32) {
    // Only async-signal-safe work here: an atomic add, write(2), signal(2), raise(3).
    let previous = interruptRequests.add(1, ordering: .relaxed).oldValue
    if previous == 0 {
        let message: StaticString = "\nmoe-routing: interrupted; stopping after this engine step (Ctrl-C again to quit at once)\n"
        message.withUTF8Buffer { p in
            _ = write(2, p.baseAddress, p.count)
        }
    } else {
        _ = signal(SIGINT, SIG_DFL)
        _ = raise(SIGINT)
    }
}
