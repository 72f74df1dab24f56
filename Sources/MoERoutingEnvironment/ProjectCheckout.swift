// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation
import PythonRuntime

/// A checkout of the speculative-moe sources: the nearest directory that holds both
/// `Package.swift` and `scripts/setup-python.sh`.
///
/// `moe-routing` run from inside a checkout (or built into its `.build/`) uses the checkout's
/// `.venv` and `models/`; an installed copy elsewhere finds none and uses its per-user defaults.
///
/// ```swift
/// if let root = ProjectCheckout.find(from: FileManager.default.currentDirectoryPath) {
///     print(root)  // /work/main
/// }
/// ```
public enum ProjectCheckout {
    /// The files that mark a checkout's root, relative to it.
    public static let markers = ["Package.swift", "scripts/setup-python.sh"]

    /// The checkout root at or above `start`, or `nil`.
    ///
    /// - Complexity: O(depth of `start`) file-system checks.
    public static func find(from start: String) -> String? {
        let fileManager = FileManager.default
        var directory = URL(
            fileURLWithPath: PythonEnvironmentPath.absolute(start, relativeTo: fileManager.currentDirectoryPath)
        )
        while true {
            let candidate = directory.path
            if markers.allSatisfy({ fileManager.fileExists(atPath: candidate + "/" + $0) }) { return candidate }
            let parent = directory.deletingLastPathComponent()
            if parent.path == candidate || candidate == "/" { return nil }
            directory = parent
        }
    }

    /// The checkout found from the current directory, else from the running executable's
    /// directory (`.build/debug/moe-routing` lives inside its checkout), or `nil`.
    public static func find(currentDirectory: String, executablePath: String?) -> String? {
        if let root = find(from: currentDirectory) { return root }
        guard let executablePath, executablePath.contains("/") else { return nil }
        let directory = URL(
            fileURLWithPath: PythonEnvironmentPath.absolute(executablePath, relativeTo: currentDirectory)
        )
        .deletingLastPathComponent().path
        return find(from: directory)
    }

    /// ``find(currentDirectory:executablePath:)``, or an error saying where it looked.
    ///
    /// - Throws: ``MoERoutingEnvironmentError/projectRootNotFound(searchedFrom:)``.
    public static func root(
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) throws -> String {
        if let root = find(currentDirectory: currentDirectory, executablePath: executablePath) { return root }
        throw MoERoutingEnvironmentError.projectRootNotFound(searchedFrom: currentDirectory)
    }
}

/// Path arithmetic shared by the venv search and the set-up command.
enum PythonEnvironmentPath {
    /// `path` made absolute against `base` and standardised; a leading `~` is expanded.
    static func absolute(_ path: String, relativeTo base: String) -> String {
        PythonEnvironment(path: path, relativeTo: base).path
    }
}
