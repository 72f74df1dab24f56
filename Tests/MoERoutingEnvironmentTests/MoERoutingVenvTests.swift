// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingEnvironment
import PythonRuntime
import PythonTestSupport
import Testing

struct MoERoutingVenvTests {
    @Test func explicitPathWinsOverVariableAndProjectDefault() throws {
        let location = try MoERoutingVenv.locate(
            explicitPath: "relative/venv",
            environment: ["MOE_ROUTING_VENV": "/from/variable"],
            currentDirectory: "/work/somewhere"
        )
        let environment = location.environment
        #expect(environment.path == "/work/somewhere/relative/venv")
        #expect(environment.pythonExecutable == "/work/somewhere/relative/venv/bin/python")
        #expect(environment.configurationPath == "/work/somewhere/relative/venv/pyvenv.cfg")
        #expect(location.source == .option)
    }

    @Test func variableWinsOverProjectDefault() throws {
        let location = try MoERoutingVenv.locate(
            explicitPath: nil,
            environment: ["MOE_ROUTING_VENV": "/from/variable/../venv"],
            currentDirectory: TestPython.projectRoot
        )
        #expect(location.environment.path == "/from/venv")
        #expect(location.source == .environmentVariable)
        #expect(location.checkoutRoot == TestPython.projectRoot)
    }

    @Test func defaultIsDotVenvInTheProjectRootFoundFromASubdirectory() throws {
        let sub = TestPython.projectRoot + "/Sources/PythonRuntime"
        let location = try MoERoutingVenv.locate(
            explicitPath: nil,
            environment: ["HOME": "/home/someone"],
            currentDirectory: sub,
            executablePath: nil
        )
        #expect(location.environment.path == TestPython.projectRoot + "/.venv")
        #expect(location.source == .checkout)
        #expect(ProjectCheckout.find(from: sub) == TestPython.projectRoot)
    }

    @Test func projectRootFoundFromTheExecutableWhenOutsideTheProject() throws {
        let outside = try TestPython.temporaryDirectory("outside")
        let executable = TestPython.projectRoot + "/.build/debug/moe-routing"
        #expect(
            try ProjectCheckout.root(currentDirectory: outside, executablePath: executable) == TestPython.projectRoot
        )
        let location = try MoERoutingVenv.locate(
            environment: ["HOME": outside],
            currentDirectory: outside,
            executablePath: executable
        )
        #expect(location.environment.path == TestPython.projectRoot + "/.venv")
    }

    @Test func noProjectRootIsAClearError() throws {
        let outside = try TestPython.temporaryDirectory("noroot")
        #expect(ProjectCheckout.find(from: outside) == nil)
        do {
            _ = try ProjectCheckout.root(currentDirectory: outside, executablePath: nil)
            Issue.record("expected projectRootNotFound")
        } catch let error as MoERoutingEnvironmentError {
            #expect(error == .projectRootNotFound(searchedFrom: outside))
            #expect(error.description.contains("--venv PATH"))
        }
    }

    @Test func outsideACheckoutThePerUserDefaultIsUsed() throws {
        let outside = try TestPython.temporaryDirectory("userdefault")
        let fromHome = try MoERoutingVenv.locate(
            environment: ["HOME": outside + "/home"],
            currentDirectory: outside,
            executablePath: nil
        )
        #expect(fromHome.environment.path == outside + "/home/.local/share/speculative-moe/venv")
        #expect(fromHome.source == .userDefault)
        #expect(fromHome.checkoutRoot == nil)
        let fromXDG = try MoERoutingVenv.locate(
            environment: ["HOME": outside + "/home", "XDG_DATA_HOME": outside + "/data"],
            currentDirectory: outside,
            executablePath: nil
        )
        #expect(fromXDG.environment.path == outside + "/data/speculative-moe/venv")
        // A relative XDG_DATA_HOME is ignored, as the XDG rules say.
        #expect(
            try MoERoutingVenv.userDefaultPath(environment: ["HOME": "/h", "XDG_DATA_HOME": "rel"])
                == "/h/.local/share/speculative-moe/venv"
        )
    }

    @Test func noHomeAndNoXDGIsAClearError() throws {
        let outside = try TestPython.temporaryDirectory("nohome")
        #expect(throws: MoERoutingEnvironmentError.noUserDataDirectory) {
            try MoERoutingVenv.locate(environment: [:], currentDirectory: outside, executablePath: nil)
        }
        #expect(MoERoutingEnvironmentError.noUserDataDirectory.description.contains("--venv PATH"))
        // Not needed when a venv is named.
        #expect(
            try MoERoutingVenv.locate(explicitPath: "/v", environment: [:], currentDirectory: outside).source == .option
        )
    }

    @Test func missingVenvIsRefusedWithTheSetupHint() throws {
        let missing = PythonEnvironment(path: try TestPython.temporaryDirectory("missing") + "/nothing")
        #expect(throws: PythonRuntimeError.venvMissing(path: missing.path)) {
            try missing.validate(libraryVersion: "3.11.2")
        }
        let inCheckout = MoERoutingVenv.explained(
            PythonRuntimeError.venvMissing(path: missing.path),
            currentDirectory: TestPython.projectRoot
        )
        #expect(inCheckout as? MoERoutingEnvironmentError == .venv(.venvMissing(path: missing.path), inCheckout: true))
        #expect("\(inCheckout)".contains("scripts/setup-python.sh"))
        #expect("\(inCheckout)".hasPrefix("no Python venv at \(missing.path)"))
        let outside = MoERoutingVenv.explained(
            PythonRuntimeError.venvMissing(path: missing.path),
            currentDirectory: try TestPython.temporaryDirectory("o"),
            executablePath: nil
        )
        #expect(!"\(outside)".contains("scripts/setup-python.sh"))
        #expect("\(outside)".contains("run `moe-routing setup`"))
    }

    @Test func otherPythonVersionIsRefusedWithTheRemoveLine() throws {
        let venv = try TestPython.fakeVenv(version: "3.12.1")
        let runtime = PythonRuntimeError.venvVersionMismatch(
            path: venv.path,
            venvVersion: "3.12.1",
            libraryVersion: "3.11.2"
        )
        let explained = "\(MoERoutingVenv.explained(runtime, currentDirectory: TestPython.projectRoot))"
        #expect(explained.contains("rm -rf '\(venv.path)'"))
        #expect(explained.contains("3.12.1") && explained.contains("3.11.2"))
        #expect(explained.contains("scripts/setup-python.sh or `moe-routing setup`, which uses /usr/bin/python3"))
    }

    @Test func otherErrorsAreNotRewritten() {
        let error = MoERoutingVenv.explained(PythonRuntimeError.notInitialized)
        #expect(error as? PythonRuntimeError == .notInitialized)
    }
}
