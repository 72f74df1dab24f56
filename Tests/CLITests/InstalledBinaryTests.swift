// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The installed case: the built `moe-routing` copied (with or without its resource bundles) to a
// temporary directory outside the checkout, run from a temporary working directory with HOME and
// XDG_DATA_HOME pointing at temporary directories, and without MOE_ROUTING_VENV.

import Foundation
import Testing

/// An installed copy of the tool: its directory, a working directory and a home, all temporary
/// and outside the checkout; removed when the value goes away.
final class InstalledTool {
    let root: URL
    let directory: URL
    let workingDirectory: URL
    let home: URL
    var binary: URL { directory.appendingPathComponent("moe-routing") }
    var setupScript: String {
        directory.appendingPathComponent("speculative-moe_MoERoutingEnvironment.resources/setup/setup-python.sh").path
    }

    /// Copies the built binary, and with `bundles` every `*.resources` directory beside it.
    init(bundles: Bool) throws {
        root = try temporaryDirectory()
        directory = root.appendingPathComponent("bin")
        workingDirectory = root.appendingPathComponent("cwd")
        home = root.appendingPathComponent("home")
        let fileManager = FileManager.default
        for url in [directory, workingDirectory, home] {
            try fileManager.createDirectory(at: url, withIntermediateDirectories: true)
        }
        let built = URL(fileURLWithPath: toolPath)
        try fileManager.copyItem(at: built, to: directory.appendingPathComponent("moe-routing"))
        guard bundles else { return }
        let buildDirectory = built.deletingLastPathComponent()
        for name in try fileManager.contentsOfDirectory(atPath: buildDirectory.path) where name.hasSuffix(".resources")
        {
            try fileManager.copyItem(
                at: buildDirectory.appendingPathComponent(name),
                to: directory.appendingPathComponent(name)
            )
        }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Runs the copy with a clean environment: PATH, HOME, plus `environment`.
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolResult {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        var variables = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": home.path]
        variables.merge(environment) { $1 }
        process.environment = variables
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        return ToolResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }
}

struct InstalledBinaryTests {
    @Test func doctorReportsThePerUserDefaultAndHowToCreateIt() throws {
        let installed = try InstalledTool(bundles: true)
        let venv = installed.home.path + "/.local/share/speculative-moe/venv"
        let r = try installed.run(["doctor", "--skip-vllm"])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count >= 3)
        #expect(lines[0].hasPrefix("ok   libpython: "))
        #expect(lines[1].hasPrefix("FAIL venv: no Python venv at \(venv) (bin/python or pyvenv.cfg missing)"))
        #expect(lines[1].contains("run `moe-routing setup`"))
        #expect(!lines[1].contains("scripts/setup-python.sh"))
        #expect(lines[2] == "     fix: run `moe-routing setup`")
    }

    @Test func xdgDataHomeMovesThePerUserDefault() throws {
        let installed = try InstalledTool(bundles: true)
        let data = installed.home.path + "/data"
        let r = try installed.run(["setup", "--dry-run"], environment: ["XDG_DATA_HOME": data])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("venv: \(data)/speculative-moe/venv (the per-user default)\n"))
    }

    @Test func venvOptionWinsOverTheVariableWhichWinsOverTheDefault() throws {
        let installed = try InstalledTool(bundles: true)
        let fromVariable = installed.home.path + "/from-variable"
        let fromOption = installed.home.path + "/from-option"
        let variable = ["MOE_ROUTING_VENV": fromVariable]

        let byVariable = try installed.run(["doctor", "--skip-vllm"], environment: variable)
        #expect(byVariable.stdout.contains("FAIL venv: no Python venv at \(fromVariable) "), "\(byVariable.stdout)")
        let plannedByVariable = try installed.run(["setup", "--dry-run"], environment: variable)
        #expect(plannedByVariable.stdout.hasPrefix("venv: \(fromVariable) (MOE_ROUTING_VENV)\n"))

        let byOption = try installed.run(["doctor", "--skip-vllm", "--venv", fromOption], environment: variable)
        #expect(byOption.stdout.contains("FAIL venv: no Python venv at \(fromOption) "), "\(byOption.stdout)")
        let plannedByOption = try installed.run(["setup", "--dry-run", "--venv", fromOption], environment: variable)
        #expect(plannedByOption.stdout.hasPrefix("venv: \(fromOption) (--venv)\n"))
        #expect(plannedByOption.stdout.contains(" --venv \(fromOption)"))
    }

    @Test func setupFindsItsShippedScript() throws {
        let installed = try InstalledTool(bundles: true)
        let r = try installed.run(["setup", "--dry-run", "--gpu"])
        #expect(r.status == 0, "\(r.stderr)")
        let venv = installed.home.path + "/.local/share/speculative-moe/venv"
        #expect(
            r.stdout.split(separator: "\n").map(String.init) == [
                "venv: \(venv) (the per-user default)", "script: \(installed.setupScript)",
                "command: /bin/bash \(installed.setupScript) --venv \(venv) --gpu",
            ]
        )
        #expect(!FileManager.default.fileExists(atPath: venv), "--dry-run must not create the venv")
        let help = try installed.run(["setup", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--dry-run"))
        #expect(help.stdout.contains("speculative-moe/venv"))
    }

    @Test func theShippedScriptRunsFromTheInstalledCopy() throws {
        // Far enough to parse its arguments; nothing is created.
        let installed = try InstalledTool(bundles: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [installed.setupScript, "--help"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.contains("Usage: setup-python.sh"))
    }

    @Test func aCopyWithoutItsBundleSaysSoInsteadOfTrapping() throws {
        let installed = try InstalledTool(bundles: false)
        let r = try installed.run(["setup", "--dry-run"])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("the set-up files that ship with moe-routing are missing"))
        #expect(r.stderr.contains(installed.setupScript))
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
