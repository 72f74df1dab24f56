// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingEnvironment
import PythonRuntime
import PythonTestSupport
import Testing

struct PythonSetupTests {
    /// The shipped copy: `Sources/MoERoutingEnvironment/setup/` (the resource's source).
    static let shippedDirectory = TestPython.projectRoot + "/Sources/MoERoutingEnvironment/setup"

    @Test func commandLineCarriesTheOptions() {
        #expect(PythonSetup.arguments(script: "/r/s.sh", venvPath: nil, gpu: false, force: false) == ["/r/s.sh"])
        #expect(
            PythonSetup.arguments(script: "/r/s.sh", venvPath: "/v", gpu: true, force: true)
                == ["/r/s.sh", "--venv", "/v", "--gpu", "--force"]
        )
        #expect(PythonSetup.scriptPath(projectRoot: "/r") == "/r/scripts/setup-python.sh")
    }

    @Test func missingScriptIsAClearError() throws {
        let root = try TestPython.temporaryDirectory("setup")
        #expect(throws: MoERoutingEnvironmentError.setupScriptMissing(searched: [root + "/setup-python.sh"])) {
            try PythonSetup.plan(setupDirectories: [root])
        }
        let message = MoERoutingEnvironmentError.setupScriptMissing(searched: [root + "/setup-python.sh"]).description
        #expect(message.contains(root + "/setup-python.sh"))
        #expect(message.contains(SetupFiles.bundleName))
    }

    @Test func aDirectoryWithoutTheRequirementsIsNotTheShippedOne() throws {
        let root = try TestPython.temporaryDirectory("setup-partial")
        _ = FileManager.default.createFile(atPath: root + "/setup-python.sh", contents: Data())
        #expect(throws: MoERoutingEnvironmentError.self) { try SetupFiles.locate(in: [root]) }
        #expect(try SetupFiles.locate(in: [root, Self.shippedDirectory]) == Self.shippedDirectory)
    }

    @Test func theBuiltResourceBundleHoldsTheShippedFiles() throws {
        // The test binary sits beside the bundles SwiftPM built (.build/<triple>/debug/).
        let directory = try SetupFiles.locate()
        #expect(directory.hasSuffix(SetupFiles.bundleName + "/setup"))
        for file in SetupFiles.files {
            let built = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            let source = try Data(contentsOf: URL(fileURLWithPath: Self.shippedDirectory + "/" + file))
            #expect(built == source, "\(file) in the bundle differs from its source")
        }
    }

    @Test func planPassesTheLocatedVenvAndNamesItsRule() throws {
        let outside = try TestPython.temporaryDirectory("setup-plan")
        let plan = try PythonSetup.plan(
            gpu: true,
            environment: ["HOME": outside],
            currentDirectory: outside,
            executablePath: nil,
            setupDirectories: [Self.shippedDirectory]
        )
        let venv = outside + "/.local/share/speculative-moe/venv"
        #expect(plan.venv.environment.path == venv)
        #expect(plan.script == Self.shippedDirectory + "/setup-python.sh")
        #expect(plan.arguments == [plan.script, "--venv", venv, "--gpu"])
        #expect(
            plan.summary.split(separator: "\n").map(String.init) == [
                "venv: \(venv) (the per-user default)", "script: \(plan.script)",
                "command: /bin/bash \(plan.script) --venv \(venv) --gpu",
            ]
        )
    }

    @Test(arguments: ["checkout entry point", "shipped copy"])
    func scriptRejectsUnknownArgumentsWithoutTouchingAnything(which: String) throws {
        // Runs the real script far enough to parse its arguments: exit 1, nothing created.
        let script =
            which == "shipped copy"
            ? Self.shippedDirectory + "/setup-python.sh" : PythonSetup.scriptPath(projectRoot: TestPython.projectRoot)
        let result = try Self.bash([script, "--no-such-flag"])
        #expect(result.status == 1)
        #expect(result.errors.contains("unknown argument '--no-such-flag'"))
    }

    @Test func checkoutEntryPointShowsTheShippedScriptsHelp() throws {
        let result = try Self.bash([PythonSetup.scriptPath(projectRoot: TestPython.projectRoot), "--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("Usage: setup-python.sh [--venv PATH] [--gpu] [--force] [--skip-verify]"))
        #expect(result.output.contains("speculative-moe/venv"))
    }

    /// Section 5 of issue 12: the set-up script reuses ensure-system-deps.sh, and carries no
    /// apt-get logic of its own.
    @Test func setupReusesEnsureSystemDeps() throws {
        let script = try String(contentsOfFile: Self.shippedDirectory + "/setup-python.sh", encoding: .utf8)
        #expect(script.contains("bash \"$here/ensure-system-deps.sh\""))
        #expect(!script.contains("apt-get install"))
        let wrapper = try String(
            contentsOfFile: TestPython.projectRoot + "/scripts/ensure-system-deps.sh",
            encoding: .utf8
        )
        #expect(wrapper.contains("Sources/MoERoutingEnvironment/setup/ensure-system-deps.sh"))
    }

    static func bash(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = output
        try process.run()
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, out, err)
    }
}
