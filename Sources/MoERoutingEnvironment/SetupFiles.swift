// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The set-up files that ship with `moe-routing`: `setup-python.sh`, the
/// `ensure-system-deps.sh` it runs, and the pinned `requirements-cpu.txt` /
/// `requirements-gpu.txt`, in this module's resource bundle (`setup/`).
///
/// They are found on disk, never through `Bundle.module` (which stops the program when the
/// bundle is missing): an installed binary copied without its bundle gets
/// ``MoERoutingEnvironmentError/setupScriptMissing(searched:)`` instead.
///
/// ```swift
/// let directory = try SetupFiles.locate()
/// print(directory + "/" + SetupFiles.scriptName)
/// ```
public enum SetupFiles {
    /// The resource bundle's directory name next to the executable.
    public static let bundleName = "speculative-moe_MoERoutingEnvironment.resources"
    /// The set-up script's file name.
    public static let scriptName = "setup-python.sh"
    /// Every file the script needs beside it.
    public static let files = [scriptName, "ensure-system-deps.sh", "requirements-cpu.txt", "requirements-gpu.txt"]

    /// The directories searched, in order: the bundle beside the main executable, beside the
    /// executable as invoked (`argv[0]`), and beside the file it links to when that is a
    /// symbolic link (an installed `/usr/local/bin/moe-routing` pointing into its own directory).
    public static func candidates(executablePath: String? = CommandLine.arguments.first) -> [String] {
        var directories = [Bundle.main.bundleURL]
        if let executablePath, executablePath.contains("/") {
            let executable = URL(fileURLWithPath: executablePath)
            directories.append(executable.deletingLastPathComponent())
            directories.append(executable.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        var out: [String] = []
        for directory in directories {
            let path = directory.appendingPathComponent(bundleName).appendingPathComponent("setup").standardized.path
            if !out.contains(path) { out.append(path) }
        }
        return out
    }

    /// The first of `directories` that holds every one of ``files``.
    ///
    /// - Throws: ``MoERoutingEnvironmentError/setupScriptMissing(searched:)`` naming the script
    ///   path looked for in each directory.
    public static func locate(in directories: [String] = candidates()) throws -> String {
        let fileManager = FileManager.default
        for directory in directories where files.allSatisfy({ fileManager.fileExists(atPath: directory + "/" + $0) }) {
            return directory
        }
        throw MoERoutingEnvironmentError.setupScriptMissing(searched: directories.map { $0 + "/" + scriptName })
    }
}
