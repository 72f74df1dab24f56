// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import Testing

struct PythonSetupTests {
    @Test func commandLineCarriesTheOptions() {
        #expect(PythonSetup.arguments(script: "/r/s.sh", venvPath: nil, gpu: false, force: false) == ["/r/s.sh"])
        #expect(
            PythonSetup.arguments(script: "/r/s.sh", venvPath: "/v", gpu: true, force: true)
                == ["/r/s.sh", "--venv", "/v", "--gpu", "--force"])
        #expect(PythonSetup.scriptPath(projectRoot: "/r") == "/r/scripts/setup-python.sh")
    }

    @Test func missingScriptIsAClearError() throws {
        let root = try TestPython.temporaryDirectory("setup")
        #expect(throws: PythonRuntimeError.setupScriptMissing(path: root + "/scripts/setup-python.sh")) {
            try PythonSetup.run(projectRoot: root)
        }
    }

    @Test func scriptRejectsUnknownArgumentsWithoutTouchingAnything() throws {
        // Runs the real script far enough to parse its arguments: exit 1, nothing created.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [PythonSetup.scriptPath(projectRoot: TestPython.projectRoot), "--no-such-flag"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(message.contains("unknown argument '--no-such-flag'"))
    }
}
