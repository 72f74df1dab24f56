// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import PythonRuntime

/// Errors of a capture run. Each ``description`` is one line naming the cause and, where it can,
/// the fix; a Python failure keeps its traceback in ``traceback``.
public enum CaptureError: Error, Sendable, CustomStringConvertible {
    /// A bad option or dataset specification.
    case invalidOption(String)
    /// The Python package that drives vLLM could not be found next to the program.
    case packageMissing(searched: [String])
    /// Python raised (vLLM, a dataset, the hook); the error carries the traceback.
    case python(PythonError, during: String)
    /// The engine's batches could not be attributed (an invariant of the hook broke).
    case inconsistentCapture(String)
    /// The user interrupted the run (SIGINT or SIGTERM) where no summary could be made; what
    /// was captured so far was flushed. ``VLLMEngine/capture(_:options:observer:)`` does not
    /// throw it: a stopped capture returns its summary marked ``CaptureSummary/interrupted``.
    case interrupted
    /// The routing could not be written or analyzed (a sink failed).
    case sinkFailed(String)

    public var description: String {
        switch self {
        case .invalidOption(let message): return message
        case .packageMissing(let searched):
            return "cannot find the speculative_moe Python package (searched \(searched.joined(separator: ", "))); "
                + "keep the program next to its speculative-moe_VLLMCapture.resources directory, or set MOE_ROUTING_PYTHON_PATH"
        case .python(let error, let during):
            return "\(during) failed: \(error.description)"
        case .inconsistentCapture(let message): return "routing capture failed: \(message)"
        case .interrupted: return "interrupted: the trace so far was flushed and is readable"
        case .sinkFailed(let message): return "writing routing failed: \(message)"
        }
    }

    /// The Python traceback, when Python raised; empty otherwise.
    public var traceback: String {
        if case .python(let error, _) = self { return error.traceback }
        return ""
    }
}
