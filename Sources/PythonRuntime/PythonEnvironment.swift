// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation

/// Where the project's managed Python venv lives, and what it says about itself.
///
/// The venv is found, in this order: an explicit path (the `--venv` option), the environment
/// variable `MOE_ROUTING_VENV`, then `.venv` in the project root (the directory holding
/// `Package.swift` and `scripts/setup-python.sh`, searched upwards from the current directory,
/// then from the running executable). Locating touches no Python: it is safe before start-up.
///
/// ```swift
/// let environment = try PythonEnvironment.locate(explicitPath: options.venv)
/// let info = try environment.validate(libraryVersion: Python.libraryVersion)
/// print(info.version)  // 3.11.2
/// ```
public struct PythonEnvironment: Sendable, Hashable, CustomStringConvertible {
    /// The environment variable that overrides the default venv location.
    public static let environmentVariable = "MOE_ROUTING_VENV"
    /// The venv directory's name inside the project root.
    public static let defaultDirectoryName = ".venv"

    /// The venv directory, absolute and standardised (symbolic links are not resolved).
    public let path: String

    /// Wraps a venv directory; a relative path is taken from the current directory.
    public init(path: String) {
        self.path = Self.absolute(path, relativeTo: FileManager.default.currentDirectoryPath)
    }

    /// The venv's interpreter, `<venv>/bin/python`, not resolved through its symbolic link:
    /// the embedded interpreter uses it as `sys.executable`.
    public var pythonExecutable: String { path + "/bin/python" }

    /// `<venv>/pyvenv.cfg`.
    public var configurationPath: String { path + "/pyvenv.cfg" }

    public var description: String { path }

    // MARK: - Locating

    /// Finds the venv to use.
    ///
    /// - Parameters:
    ///   - explicitPath: a path given on the command line; wins over everything else.
    ///   - environment: the process environment (for `MOE_ROUTING_VENV`).
    ///   - currentDirectory: where the search for the project root starts.
    ///   - executablePath: the running program; its directories are searched when the current
    ///     directory is outside the project (the CLI lives in `<root>/.build/...`).
    /// - Throws: ``PythonRuntimeError/projectRootNotFound(searchedFrom:)`` when neither a path nor
    ///   the variable is given and no project root is found. The venv itself is not checked
    ///   here: see ``validate(libraryVersion:)``.
    public static func locate(
        explicitPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> PythonEnvironment {
        if let explicitPath, !explicitPath.isEmpty {
            return PythonEnvironment(path: absolute(explicitPath, relativeTo: currentDirectory))
        }
        if let fromVariable = environment[environmentVariable], !fromVariable.isEmpty {
            return PythonEnvironment(path: absolute(fromVariable, relativeTo: currentDirectory))
        }
        let root = try projectRoot(currentDirectory: currentDirectory, executablePath: executablePath)
        return PythonEnvironment(path: root + "/" + defaultDirectoryName)
    }

    /// The project root: the nearest directory at or above `start` that holds both
    /// `Package.swift` and `scripts/setup-python.sh`, or `nil`.
    ///
    /// - Complexity: O(depth of `start`) file-system checks.
    public static func findProjectRoot(from start: String) -> String? {
        var directory = URL(fileURLWithPath: absolute(start, relativeTo: FileManager.default.currentDirectoryPath))
        let fileManager = FileManager.default
        while true {
            let candidate = directory.path
            if fileManager.fileExists(atPath: candidate + "/Package.swift"),
                fileManager.fileExists(atPath: candidate + "/scripts/setup-python.sh")
            {
                return candidate
            }
            let parent = directory.deletingLastPathComponent()
            if parent.path == candidate || candidate == "/" { return nil }
            directory = parent
        }
    }

    /// The project root found from the current directory, else from the executable's directory.
    ///
    /// - Throws: ``PythonRuntimeError/projectRootNotFound(searchedFrom:)``.
    public static func projectRoot(
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> String {
        if let root = findProjectRoot(from: currentDirectory) { return root }
        if let executablePath, executablePath.contains("/") {
            let directory = URL(fileURLWithPath: absolute(executablePath, relativeTo: currentDirectory))
                .deletingLastPathComponent().path
            if let root = findProjectRoot(from: directory) { return root }
        }
        throw PythonRuntimeError.projectRootNotFound(searchedFrom: currentDirectory)
    }

    // MARK: - Validating

    /// What `pyvenv.cfg` says about a venv.
    public struct Info: Sendable, Hashable {
        /// The `version` line: the Python version that made the venv (`3.11.2`).
        public var version: String
        /// The `home` line: the directory of the base interpreter (`/usr/bin`), if present.
        public var home: String?
    }

    /// Reads `pyvenv.cfg`.
    ///
    /// - Throws: ``PythonRuntimeError/venvMissing(path:)`` when the directory, `bin/python` or
    ///   `pyvenv.cfg` is missing; ``PythonRuntimeError/venvInvalid(path:reason:)`` when
    ///   `pyvenv.cfg` has no version line.
    public func info() throws -> Info {
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: pythonExecutable), fileManager.fileExists(atPath: configurationPath)
        else { throw PythonRuntimeError.venvMissing(path: path) }
        guard let data = fileManager.contents(atPath: configurationPath),
            let text = String(data: data, encoding: .utf8)
        else { throw PythonRuntimeError.venvInvalid(path: path, reason: "cannot read \(configurationPath)") }
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            values[key] = value
        }
        // Python 3.11's venv writes `version`; 3.12+ also writes `version_info`.
        guard let version = values["version"] ?? values["version_info"], !version.isEmpty else {
            throw PythonRuntimeError.venvInvalid(
                path: path, reason: "\(configurationPath) has no `version` line")
        }
        return Info(version: version, home: values["home"])
    }

    /// Checks that the venv exists and was made by the same Python version as the embedded
    /// libpython.
    ///
    /// - Parameter libraryVersion: the embedded libpython's version (`Python.libraryVersion`).
    /// - Throws: ``PythonRuntimeError/venvMissing(path:)``,
    ///   ``PythonRuntimeError/venvInvalid(path:reason:)`` or
    ///   ``PythonRuntimeError/venvVersionMismatch(path:venvVersion:libraryVersion:)``.
    @discardableResult
    public func validate(libraryVersion: String) throws -> Info {
        let info = try info()
        guard info.version == libraryVersion else {
            throw PythonRuntimeError.venvVersionMismatch(
                path: path, venvVersion: info.version, libraryVersion: libraryVersion)
        }
        return info
    }

    // MARK: - Paths

    static func absolute(_ path: String, relativeTo base: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        let joined = expanded.hasPrefix("/") ? expanded : base + "/" + expanded
        return URL(fileURLWithPath: joined).standardized.path
    }
}
