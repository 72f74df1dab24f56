// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import PythonTestSupport
import Testing

struct PythonEnvironmentTests {
    @Test func relativePathsAreTakenFromTheGivenDirectory() {
        let environment = PythonEnvironment(path: "relative/../venv", relativeTo: "/work/somewhere")
        #expect(environment.path == "/work/somewhere/venv")
        #expect(environment.pythonExecutable == "/work/somewhere/venv/bin/python")
        #expect(environment.configurationPath == "/work/somewhere/venv/pyvenv.cfg")
        #expect(PythonEnvironment(path: "/abs/venv", relativeTo: "/elsewhere").path == "/abs/venv")
    }

    @Test func missingVenvIsRefused() throws {
        let missing = PythonEnvironment(path: try TestPython.temporaryDirectory("missing") + "/nothing")
        #expect(throws: PythonRuntimeError.venvMissing(path: missing.path)) {
            try missing.validate(libraryVersion: "3.11.2")
        }
        #expect(PythonRuntimeError.venvMissing(path: missing.path).description.contains(missing.path))
    }

    @Test func readsTheVersionAndHomeOfPyvenvCfg() throws {
        let venv = try TestPython.fakeVenv(version: "3.11.2")
        let info = try venv.validate(libraryVersion: "3.11.2")
        #expect(info.version == "3.11.2")
        #expect(info.home == "/usr/bin")
    }

    @Test func otherPythonVersionIsRefused() throws {
        let venv = try TestPython.fakeVenv(version: "3.12.1")
        let expected = PythonRuntimeError.venvVersionMismatch(
            path: venv.path,
            venvVersion: "3.12.1",
            libraryVersion: "3.11.2"
        )
        #expect(throws: expected) { try venv.validate(libraryVersion: "3.11.2") }
        #expect(expected.description.contains("rm -rf"))
        #expect(expected.description.contains("3.12.1") && expected.description.contains("3.11.2"))
    }

    @Test func pyvenvCfgWithoutVersionIsInvalid() throws {
        let venv = try TestPython.fakeVenv(version: "")
        #expect(throws: PythonRuntimeError.self) { try venv.validate(libraryVersion: "3.11.2") }
        do {
            try venv.validate(libraryVersion: "3.11.2")
        } catch let error as PythonRuntimeError {
            guard case .venvInvalid(let path, let reason) = error else {
                Issue.record("expected venvInvalid, got \(error)")
                return
            }
            #expect(path == venv.path)
            #expect(reason.contains("version"))
        }
    }

    /// The runtime is generic: its messages name no project, script or variable of this one.
    @Test func runtimeErrorsNameNoProjectSetUp() {
        let errors: [PythonRuntimeError] = [
            .venvMissing(path: "/v"), .venvVersionMismatch(path: "/v", venvVersion: "3.12.1", libraryVersion: "3.11.2"),
            .venvInvalid(path: "/v", reason: "bad"),
        ]
        for error in errors {
            for word in ["setup-python", "moe-routing", "MOE_ROUTING", "vllm"] {
                #expect(!error.description.lowercased().contains(word.lowercased()), "\(error)")
            }
        }
    }
}
