// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation

/// Runs helper programs from tests (compilers, scripts, Python) and collects what they print.
public enum TestProcess {
    /// Runs `executable` with `arguments` to the end and returns its exit status and its standard
    /// output and standard error together (read while it runs, so a chatty program cannot block).
    public static func run(
        _ executable: String,
        _ arguments: [String],
        in directory: URL? = nil
    ) throws
        -> (status: Int32, output: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
