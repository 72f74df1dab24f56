// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Errors of the embedded runtime itself: a missing or mismatched venv, an interpreter that
/// could not start, an API used without the GIL.
///
/// Python exceptions are ``PythonError`` instead. Every case's ``description`` is one line that
/// names what was wrong and how to fix it.
public enum PythonRuntimeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No venv at the path (no `bin/python` or no `pyvenv.cfg`).
    case venvMissing(path: String)
    /// The venv was made by another Python version than the embedded libpython.
    case venvVersionMismatch(path: String, venvVersion: String, libraryVersion: String)
    /// The venv exists but cannot be used (unreadable or malformed `pyvenv.cfg`).
    case venvInvalid(path: String, reason: String)
    /// No directory containing the project's `Package.swift` above the starting directory.
    case projectRootNotFound(searchedFrom: String)
    /// The interpreter already runs on another venv; one process embeds one interpreter.
    case alreadyInitialized(running: String, requested: String)
    /// `Py_InitializeFromConfig` (or the pre-initialisation) failed; the process cannot retry.
    case initializationFailed(String)
    /// A Python API was used before ``Python/initialize(environment:)``.
    case notInitialized
    /// A ``PythonObject`` operation ran on a thread that does not hold the GIL.
    case gilNotHeld(operation: String)
    /// `scripts/setup-python.sh` is not where the project root says it is.
    case setupScriptMissing(path: String)
    /// The setup script ran and exited with a non-zero status.
    case setupFailed(status: Int32)

    public var description: String {
        let setupHint = "run scripts/setup-python.sh or `moe-routing setup`"
        switch self {
        case .venvMissing(let path):
            return "no Python venv at \(path) (bin/python or pyvenv.cfg missing): \(setupHint)"
                + " (or point --venv / MOE_ROUTING_VENV at an existing one)"
        case .venvVersionMismatch(let path, let venvVersion, let libraryVersion):
            return "the venv at \(path) was made by Python \(venvVersion) but this program embeds libpython "
                + "\(libraryVersion): remove it (rm -rf '\(path)') and \(setupHint), which uses /usr/bin/python3"
        case .venvInvalid(let path, let reason):
            return "the venv at \(path) is unusable: \(reason); remove it and \(setupHint)"
        case .projectRootNotFound(let start):
            return "cannot find the project root (a directory with Package.swift and scripts/setup-python.sh) "
                + "above \(start): run from inside the project, or pass --venv PATH / set MOE_ROUTING_VENV"
        case .alreadyInitialized(let running, let requested):
            return "the embedded Python already runs on the venv \(running) and cannot switch to \(requested) "
                + "in the same process: use one venv per process"
        case .initializationFailed(let message):
            return "the embedded Python failed to start: \(message)"
        case .notInitialized:
            return "the embedded Python is not started: call Python.initialize(environment:) first"
        case .gilNotHeld(let operation):
            return "\(operation) needs the GIL: call it inside Python.withGIL { ... }"
        case .setupScriptMissing(let path):
            return "the setup script is missing at \(path): run from a checkout of the project"
        case .setupFailed(let status):
            return "scripts/setup-python.sh failed with exit status \(status) (see its output above)"
        }
    }
}
