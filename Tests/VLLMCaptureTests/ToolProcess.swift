// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The built `moe-routing` tool, run as a child process from the capture tests: to the end
/// (``run(_:environment:timeout:)``), or started and watched while it runs (``start(_:)``), so a
/// test can send it signals.
final class ToolProcess {
    /// The built `moe-routing` binary, beside the test bundle.
    static let path: String = {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundleDir, bundleDir.deletingLastPathComponent()].map {
            $0.appendingPathComponent("moe-routing").path
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    /// Whether the tool was built (`swift build --build-tests` builds it).
    static var isBuilt: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Under `CI=true` a capture test that cannot run fails instead of being skipped.
    static let requiredByCI = ["1", "true", "yes"].contains(
        ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
    )

    /// Bytes read from a pipe so far, appended from a reading thread.
    private final class Buffer: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ d: Data) { lock.withLock { data.append(d) } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    }

    private let process: Process
    private let stdoutData = Buffer()
    private let stderrData = Buffer()
    private let drained = DispatchGroup()

    private init(_ arguments: [String], environment: [String: String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.path)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: CaptureTestEnvironment.projectRoot)
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        env["MOE_ROUTING_VENV"] = env["MOE_ROUTING_VENV"] ?? CaptureTestEnvironment.environment.path
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        process = p
        try p.run()
        for (pipe, sink) in [(out, stdoutData), (err, stderrData)] {
            drained.enter()
            let handle = pipe.fileHandleForReading
            DispatchQueue.global().async { [drained] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    sink.append(chunk)
                }
                drained.leave()
            }
        }
    }

    /// Starts the tool with `arguments` (in the package root, with the test's venv).
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolProcess {
        try ToolProcess(arguments, environment: environment)
    }

    /// Runs the tool to the end (killed after `timeout` seconds) and returns its exit status and output.
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        timeout: Double = 120
    ) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let p = try ToolProcess(arguments, environment: environment)
        guard p.waitForExit(timeout: timeout) else {
            p.send(SIGKILL)
            _ = p.waitForExit(timeout: 10)
            return (-1, p.stdout, p.stderr + "\n(killed after \(timeout) s)")
        }
        return (p.status, p.stdout, p.stderr)
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { stdoutData.text }
    var stderr: String { stderrData.text }
    var isRunning: Bool { process.isRunning }
    /// The exit status, or the signal that ended it (see ``diedBySignal``).
    var status: Int32 { process.terminationStatus }
    /// Whether a signal ended the process.
    var diedBySignal: Bool { process.terminationReason == .uncaughtSignal }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) { _ = kill(pid, signal) }

    /// Waits until `condition` holds (polled every 0.1 s) or the process ends or `timeout` passes;
    /// returns whether it held.
    func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    /// Waits for the process to end (and its output to be read); returns whether it ended in time.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        guard !process.isRunning else { return false }
        process.waitUntilExit()
        return drained.wait(timeout: .now() + 10) == .success
    }
}
