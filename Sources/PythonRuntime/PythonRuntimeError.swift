// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Errors of the embedded runtime itself: a missing or mismatched venv, an interpreter that
/// could not start, an API used without the GIL.
///
/// Python exceptions are ``PythonError`` instead. Every case's ``description`` is one line that
/// names what was wrong and how to fix it; how to create a venv is the caller's business (the
/// CLI's `MoERoutingEnvironmentError` adds its set-up command to the venv cases).
public enum PythonRuntimeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No venv at the path (no `bin/python` or no `pyvenv.cfg`).
    case venvMissing(path: String)
    /// The venv was made by another Python version than the embedded libpython.
    case venvVersionMismatch(path: String, venvVersion: String, libraryVersion: String)
    /// The venv exists but cannot be used (unreadable or malformed `pyvenv.cfg`).
    case venvInvalid(path: String, reason: String)
    /// The interpreter already runs on another venv; one process embeds one interpreter.
    case alreadyInitialized(running: String, requested: String)
    /// `Py_InitializeFromConfig` (or the pre-initialisation) failed; the process cannot retry.
    case initializationFailed(String)
    /// A Python API was used before ``Python/initialize(environment:)``.
    case notInitialized
    /// A ``PythonObject`` operation ran on a thread that does not hold the GIL.
    case gilNotHeld(operation: String)

    public var description: String {
        switch self {
        case .venvMissing(let path):
            return "no Python venv at \(path) (bin/python or pyvenv.cfg missing)"
        case .venvVersionMismatch(let path, let venvVersion, let libraryVersion):
            return "the venv at \(path) was made by Python \(venvVersion) but this program embeds libpython "
                + "\(libraryVersion): remove it (rm -rf '\(path)') and recreate it with Python \(libraryVersion)"
        case .venvInvalid(let path, let reason):
            return "the venv at \(path) is unusable: \(reason); remove it and recreate it"
        case .alreadyInitialized(let running, let requested):
            return "the embedded Python already runs on the venv \(running) and cannot switch to \(requested) "
                + "in the same process: use one venv per process"
        case .initializationFailed(let message):
            return "the embedded Python failed to start: \(message)"
        case .notInitialized:
            return "the embedded Python is not started: call Python.initialize(environment:) first"
        case .gilNotHeld(let operation):
            return "\(operation) needs the GIL: call it inside Python.withGIL { ... }"
        }
    }
}
