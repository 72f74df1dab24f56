// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation
public import PythonRuntime

/// Where `moe-routing`'s Python venv is: the search order every command uses.
///
/// In order, the first that applies wins:
/// 1. an explicit path (the `--venv PATH` option);
/// 2. the environment variable `MOE_ROUTING_VENV`;
/// 3. `.venv` in the checkout, when run from inside one (``ProjectCheckout``: searched from the
///    current directory, then from the executable's directory);
/// 4. the per-user default, `$XDG_DATA_HOME/speculative-moe/venv`, with `XDG_DATA_HOME`
///    defaulting to `~/.local/share` (an installed binary outside a checkout uses this one;
///    `moe-routing setup` creates it there).
///
/// Locating touches no Python and does not check that the venv exists: see
/// ``PythonRuntime/PythonEnvironment/validate(libraryVersion:)``.
///
/// ```swift
/// let location = try MoERoutingVenv.locate(explicitPath: options.venv)
/// print(location.environment.path, location.source)  // ~/.local/share/speculative-moe/venv per-user default
/// ```
public enum MoERoutingVenv {
    /// The environment variable that names the venv (rule 2).
    public static let environmentVariable = "MOE_ROUTING_VENV"
    /// The venv directory's name inside a checkout (rule 3).
    public static let checkoutDirectoryName = ".venv"
    /// The per-user default below the XDG data directory (rule 4).
    public static let userDirectory = "speculative-moe/venv"

    /// Which rule picked the venv.
    public enum Source: String, Sendable, Hashable, CustomStringConvertible {
        /// The `--venv` option.
        case option = "--venv"
        /// `MOE_ROUTING_VENV`.
        case environmentVariable = "MOE_ROUTING_VENV"
        /// `.venv` in the checkout.
        case checkout = "the checkout's .venv"
        /// The per-user default.
        case userDefault = "the per-user default"

        public var description: String { rawValue }
    }

    /// A located venv, the rule that picked it, and the checkout the command runs in (if any).
    public struct Location: Sendable, Hashable {
        /// The venv.
        public var environment: PythonEnvironment
        /// Which rule picked it.
        public var source: Source
        /// The checkout found from the current directory or the executable, whatever the rule.
        public var checkoutRoot: String?
    }

    /// Finds the venv to use (see the type's documentation for the order).
    ///
    /// - Parameters:
    ///   - explicitPath: the `--venv` option; an empty string counts as absent.
    ///   - environment: the process environment (`MOE_ROUTING_VENV`, `XDG_DATA_HOME`, `HOME`).
    ///   - currentDirectory: relative paths are taken from here, and the checkout is searched
    ///     from here.
    ///   - executablePath: the running program; its directories are searched for a checkout
    ///     when the current directory is outside one.
    /// - Throws: ``MoERoutingEnvironmentError/noUserDataDirectory`` when the per-user default is
    ///   needed but neither `XDG_DATA_HOME` (absolute) nor `HOME` is set.
    public static func locate(
        explicitPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> Location {
        let checkout = ProjectCheckout.find(currentDirectory: currentDirectory, executablePath: executablePath)
        func location(_ path: String, _ source: Source) -> Location {
            Location(
                environment: PythonEnvironment(path: path, relativeTo: currentDirectory),
                source: source,
                checkoutRoot: checkout
            )
        }
        if let explicitPath, !explicitPath.isEmpty { return location(explicitPath, .option) }
        if let fromVariable = environment[environmentVariable], !fromVariable.isEmpty {
            return location(fromVariable, .environmentVariable)
        }
        if let checkout { return location(checkout + "/" + checkoutDirectoryName, .checkout) }
        return location(try userDefaultPath(environment: environment), .userDefault)
    }

    /// The per-user default venv: `$XDG_DATA_HOME/speculative-moe/venv` when `XDG_DATA_HOME` is
    /// an absolute path (the XDG rule: relative values are ignored), else
    /// `$HOME/.local/share/speculative-moe/venv`.
    ///
    /// - Throws: ``MoERoutingEnvironmentError/noUserDataDirectory`` when neither is set.
    public static func userDefaultPath(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws
        -> String
    {
        if let data = environment["XDG_DATA_HOME"], data.hasPrefix("/") {
            return PythonEnvironmentPath.absolute(data + "/" + userDirectory, relativeTo: "/")
        }
        if let home = environment["HOME"], !home.isEmpty {
            return PythonEnvironmentPath.absolute(home + "/.local/share/" + userDirectory, relativeTo: "/")
        }
        throw MoERoutingEnvironmentError.noUserDataDirectory
    }

    /// Starts the embedded interpreter on `environment`; a missing, invalid or mismatched venv
    /// becomes ``MoERoutingEnvironmentError/venv(_:inCheckout:)``, whose message says how to set
    /// it up from here.
    ///
    /// - Throws: ``MoERoutingEnvironmentError`` for the venv, ``PythonRuntime/PythonRuntimeError``
    ///   otherwise.
    @discardableResult
    public static func startPython(
        on environment: PythonEnvironment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> Python.RuntimeInfo {
        do {
            return try Python.initialize(environment: environment)
        } catch let error as PythonRuntimeError {
            throw explained(error, currentDirectory: currentDirectory, executablePath: executablePath)
        }
    }

    /// `error` with this project's set-up advice when it is about the venv (missing, invalid,
    /// another Python version); other errors unchanged.
    public static func explained(
        _ error: any Error,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) -> any Error {
        guard let runtimeError = error as? PythonRuntimeError else { return error }
        switch runtimeError {
        case .venvMissing, .venvInvalid, .venvVersionMismatch:
            let inCheckout =
                ProjectCheckout.find(currentDirectory: currentDirectory, executablePath: executablePath) != nil
            return MoERoutingEnvironmentError.venv(runtimeError, inCheckout: inCheckout)
        default:
            return error
        }
    }
}
