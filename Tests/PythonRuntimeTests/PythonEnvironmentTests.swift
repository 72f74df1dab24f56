// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import Testing

struct PythonEnvironmentTests {
    @Test func explicitPathWinsOverVariableAndProjectDefault() throws {
        let environment = try PythonEnvironment.locate(
            explicitPath: "relative/venv", environment: ["MOE_ROUTING_VENV": "/from/variable"],
            currentDirectory: "/work/somewhere")
        #expect(environment.path == "/work/somewhere/relative/venv")
        #expect(environment.pythonExecutable == "/work/somewhere/relative/venv/bin/python")
        #expect(environment.configurationPath == "/work/somewhere/relative/venv/pyvenv.cfg")
    }

    @Test func variableWinsOverProjectDefault() throws {
        let environment = try PythonEnvironment.locate(
            explicitPath: nil, environment: ["MOE_ROUTING_VENV": "/from/variable/../venv"],
            currentDirectory: TestPython.projectRoot)
        #expect(environment.path == "/from/venv")
    }

    @Test func defaultIsDotVenvInTheProjectRootFoundFromASubdirectory() throws {
        let sub = TestPython.projectRoot + "/Sources/PythonRuntime"
        let environment = try PythonEnvironment.locate(
            explicitPath: nil, environment: [:], currentDirectory: sub, executablePath: nil)
        #expect(environment.path == TestPython.projectRoot + "/.venv")
        #expect(PythonEnvironment.findProjectRoot(from: sub) == TestPython.projectRoot)
    }

    @Test func projectRootFoundFromTheExecutableWhenOutsideTheProject() throws {
        let outside = try TestPython.temporaryDirectory("outside")
        let executable = TestPython.projectRoot + "/.build/debug/moe-routing"
        #expect(try PythonEnvironment.projectRoot(currentDirectory: outside, executablePath: executable) == TestPython.projectRoot)
    }

    @Test func noProjectRootIsAClearError() throws {
        let outside = try TestPython.temporaryDirectory("noroot")
        #expect(PythonEnvironment.findProjectRoot(from: outside) == nil)
        do {
            _ = try PythonEnvironment.locate(explicitPath: nil, environment: [:], currentDirectory: outside, executablePath: nil)
            Issue.record("expected projectRootNotFound")
        } catch let error as PythonRuntimeError {
            #expect(error == .projectRootNotFound(searchedFrom: outside))
            #expect(error.description.contains("--venv PATH"))
        }
    }

    @Test func missingVenvIsRefusedWithTheSetupHint() throws {
        let missing = PythonEnvironment(path: try TestPython.temporaryDirectory("missing") + "/nothing")
        #expect(throws: PythonRuntimeError.venvMissing(path: missing.path)) { try missing.validate(libraryVersion: "3.11.2") }
        #expect(PythonRuntimeError.venvMissing(path: missing.path).description.contains("scripts/setup-python.sh"))
    }

    @Test func readsTheVersionAndHomeOfPyvenvCfg() throws {
        let venv = try TestPython.fakeVenv(version: "3.11.2")
        let info = try venv.validate(libraryVersion: "3.11.2")
        #expect(info.version == "3.11.2")
        #expect(info.home == "/usr/bin")
    }

    @Test func otherPythonVersionIsRefused() throws {
        let venv = try TestPython.fakeVenv(version: "3.12.1")
        let expected = PythonRuntimeError.venvVersionMismatch(path: venv.path, venvVersion: "3.12.1", libraryVersion: "3.11.2")
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
}
