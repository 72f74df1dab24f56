// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A Python venv directory, and what its `pyvenv.cfg` says about it.
///
/// The runtime is handed a venv; it never searches for one (the project's search order lives in
/// `MoERoutingEnvironment`). Creating and reading the value touches no Python: it is safe before
/// start-up.
///
/// ```swift
/// let environment = PythonEnvironment(path: "/data/moe-venv")
/// let info = try environment.validate(libraryVersion: Python.libraryVersion)
/// print(info.version)  // 3.11.2
/// ```
public struct PythonEnvironment: Sendable, Hashable, CustomStringConvertible {
    /// The venv directory, absolute and standardised (symbolic links are not resolved).
    public let path: String

    /// Wraps a venv directory; a relative path is taken from the current directory.
    public init(path: String) {
        self.init(path: path, relativeTo: FileManager.default.currentDirectoryPath)
    }

    /// Wraps a venv directory; a relative path is taken from `base`, a leading `~` is expanded.
    public init(path: String, relativeTo base: String) {
        self.path = Self.absolute(path, relativeTo: base)
    }

    /// The venv's interpreter, `<venv>/bin/python`, not resolved through its symbolic link:
    /// the embedded interpreter uses it as `sys.executable`.
    public var pythonExecutable: String { path + "/bin/python" }

    /// `<venv>/pyvenv.cfg`.
    public var configurationPath: String { path + "/pyvenv.cfg" }

    public var description: String { path }

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
                path: path,
                reason: "\(configurationPath) has no `version` line"
            )
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
                path: path,
                venvVersion: info.version,
                libraryVersion: libraryVersion
            )
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
