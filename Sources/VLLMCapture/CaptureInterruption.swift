// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// Ctrl-C (SIGINT) or SIGTERM during a capture.
///
/// The first signal asks the run to stop: the engine finishes the step in flight, no further step
/// runs, the unfinished requests are aborted, and ``VLLMEngine/capture(_:options:observer:)``
/// returns what was captured, marked ``CaptureSummary/interrupted``; the caller closes its files
/// and exits with ``exitCode`` (130 after SIGINT, 143 after SIGTERM). A second signal ends the
/// process at once with the signal's default action. The same signal arriving twice within
/// ``duplicateWindowSeconds`` counts once: `timeout -s INT` signals its child and then the
/// child's whole process group, so one timeout delivers two signals.
///
/// ```swift
/// CaptureInterruption.install(hardQuitNote: "the trace so far is then in out/run/trace.moetrace")
/// defer { CaptureInterruption.uninstall() }
/// ```
public enum CaptureInterruption {
    /// Signals closer together than this are one request (a process-group signal seen twice).
    public static let duplicateWindowSeconds = Double(duplicateWindowNanoseconds) / 1e9

    /// Whether a stop was requested since ``install(hardQuitNote:)`` or ``reset()``.
    public static var isRequested: Bool { interruptRequests.load(ordering: .acquiring) > 0 }

    /// The signal that asked for the stop (`SIGINT`, `SIGTERM`), or `nil` when none did (no
    /// request, or ``request()``).
    public static var signal: Int32? {
        let s = firstSignal.load(ordering: .acquiring)
        return s > 0 ? s : nil
    }

    /// `SIGINT`, `SIGTERM`, or `signal N` for another number.
    public static func name(of signal: Int32) -> String {
        switch signal {
        case LibC.SIGINT: return "SIGINT"
        case LibC.SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    /// The exit code after a stop requested by ``signal``: 128 + the signal number (130 for
    /// SIGINT, 143 for SIGTERM), or `nil` when no signal asked for one.
    public static var exitCode: Int32? { signal.map { 128 + $0 } }

    /// Installs the handler for SIGINT and SIGTERM (the embedded Python installs none of its own)
    /// and unblocks both signals on the calling thread.
    ///
    /// - Parameter hardQuitNote: added to the line printed at the first signal, after "a second
    ///   signal quits at once"; say there where the data then is (the handler may only call
    ///   async-signal-safe functions, so the text is prepared here).
    public static func install(hardQuitNote: String? = nil) {
        reset()
        for s in [LibC.SIGINT, LibC.SIGTERM] {
            var text =
                "\nmoe-routing: \(name(of: s)): stopping after the engine step in flight; the trace is closed and "
            text += "what was captured is reported (a second signal quits at once"
            if let hardQuitNote, !hardQuitNote.isEmpty { text += "; \(hardQuitNote)" }
            text += ")\n"
            SignalMessages.set(text, for: s)
        }
        LibC.setSignalHandler(LibC.SIGINT, onSignal)
        LibC.setSignalHandler(LibC.SIGTERM, onSignal)
        // A parent may have started this process with the signals blocked (the mask survives
        // exec); threads started from here on inherit the unblocked mask.
        LibC.unblockInterruptSignals()
    }

    /// Restores the default SIGINT and SIGTERM behaviour.
    public static func uninstall() {
        LibC.setSignalHandler(LibC.SIGINT, nil)
        LibC.setSignalHandler(LibC.SIGTERM, nil)
    }

    /// Clears a pending request.
    public static func reset() {
        interruptRequests.store(0, ordering: .releasing)
        firstSignal.store(0, ordering: .releasing)
        firstSignalNanoseconds.store(0, ordering: .releasing)
    }

    /// Requests a stop, as the first signal does (for tests and embedding programs); ``signal``
    /// stays `nil`.
    public static func request() {
        interruptRequests.add(1, ordering: .acquiringAndReleasing)
    }
}

private let interruptRequests = Atomic<Int>(0)
private let firstSignal = Atomic<Int32>(0)
private let firstSignalNanoseconds = Atomic<Int64>(0)

/// The first-signal lines, prepared outside the handler (which may not allocate).
private enum SignalMessages {
    nonisolated(unsafe) static var interrupt = UnsafeMutableBufferPointer<UInt8>(start: nil, count: 0)
    nonisolated(unsafe) static var terminate = UnsafeMutableBufferPointer<UInt8>(start: nil, count: 0)

    static func set(_ text: String, for signal: Int32) {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        // The previous buffer is leaked on purpose: a handler running now may still read it.
        if signal == LibC.SIGINT { interrupt = buffer } else { terminate = buffer }
    }

    static func emit(for signal: Int32) {
        let b = signal == LibC.SIGINT ? interrupt : terminate
        guard let base = b.baseAddress, b.count > 0 else { return }
        LibC.writeStandardError(base, b.count)
    }
}

/// A fifth of a second (the handler uses the literal: it must not touch a lazily initialised global).
private let duplicateWindowNanoseconds: Int64 = 200_000_000

private func onSignal(_ signalNumber: Int32) {
    // Only async-signal-safe work here: atomics, clock_gettime(2), write(2), signal(2), raise(3).
    let now = LibC.monotonicNanoseconds()
    let previous = interruptRequests.add(1, ordering: .acquiringAndReleasing).oldValue
    if previous == 0 {
        firstSignal.store(signalNumber, ordering: .releasing)
        firstSignalNanoseconds.store(now, ordering: .releasing)
        SignalMessages.emit(for: signalNumber)
        return
    }
    let first = firstSignalNanoseconds.load(ordering: .acquiring)
    if first == 0 || now - first < 200_000_000 {
        return  // the first signal delivered again (to the process, then to its group)
    }
    LibC.setSignalHandler(signalNumber, nil)
    LibC.raiseSignal(signalNumber)
}
