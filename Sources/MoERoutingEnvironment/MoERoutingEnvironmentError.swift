// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import PythonRuntime

/// Errors of finding, checking and setting up `moe-routing`'s Python venv.
///
/// Every case's ``description`` is one line that names what was wrong and how to fix it.
public enum MoERoutingEnvironmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The venv is missing, invalid or made by another Python (the runtime's error), with how to
    /// set it up: from a checkout `scripts/setup-python.sh` or `moe-routing setup`, elsewhere
    /// `moe-routing setup`.
    case venv(PythonRuntimeError, inCheckout: Bool)
    /// No checkout (a directory with `Package.swift` and `scripts/setup-python.sh`) above the
    /// starting directory or the executable.
    case projectRootNotFound(searchedFrom: String)
    /// The per-user default venv is needed, but neither `XDG_DATA_HOME` nor `HOME` is set.
    case noUserDataDirectory
    /// The set-up files that ship with `moe-routing` (its resource bundle) are not where they
    /// should be.
    case setupScriptMissing(searched: [String])

    /// How to create the venv, from a checkout or from anywhere.
    static func setupAdvice(inCheckout: Bool) -> String {
        inCheckout ? "run scripts/setup-python.sh or `moe-routing setup`" : "run `moe-routing setup`"
    }

    public var description: String {
        switch self {
        case .venv(let error, let inCheckout):
            let setup = Self.setupAdvice(inCheckout: inCheckout)
            switch error {
            case .venvMissing(let path):
                return "no Python venv at \(path) (bin/python or pyvenv.cfg missing): \(setup)"
                    + " (or point --venv / MOE_ROUTING_VENV at an existing one)"
            case .venvVersionMismatch(let path, let venvVersion, let libraryVersion):
                return "the venv at \(path) was made by Python \(venvVersion) but this program embeds libpython "
                    + "\(libraryVersion): remove it (rm -rf '\(path)') and \(setup), which uses /usr/bin/python3"
            case .venvInvalid(let path, let reason):
                return "the venv at \(path) is unusable: \(reason); remove it and \(setup)"
            default:
                return error.description
            }
        case .projectRootNotFound(let start):
            return "cannot find the project root (a directory with Package.swift and scripts/setup-python.sh) "
                + "above \(start): run from inside the project, or pass --venv PATH / set MOE_ROUTING_VENV"
        case .noUserDataDirectory:
            return "cannot place the per-user venv: neither XDG_DATA_HOME nor HOME is set; "
                + "pass --venv PATH or set MOE_ROUTING_VENV"
        case .setupScriptMissing(let searched):
            return "the set-up files that ship with moe-routing are missing (looked for "
                + searched.joined(separator: ", ")
                + "): reinstall moe-routing with its resource bundle \(SetupFiles.bundleName) beside the binary, "
                + "or run scripts/setup-python.sh from a checkout"
        }
    }
}
