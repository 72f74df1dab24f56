// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERoutingEnvironment
import PythonRuntime
import PythonTestSupport
import Testing

struct PythonDoctorTests {
    @Test func missingVenvFailsWithAFixLineForEveryFailure() throws {
        let missing = try TestPython.temporaryDirectory("doctor") + "/absent"
        let checks = PythonDoctor.run(venvPath: missing, includeVLLM: true)
        #expect(checks.map(\.name) == ["libpython", "venv", "interpreter", "torch", "vllm", "in-process vllm"])
        #expect(checks[0].passed)
        #expect(checks[0].detail.hasPrefix(Python.libraryVersion + " at "))
        #expect(checks.dropFirst().allSatisfy { !$0.passed && $0.fix != nil })
        #expect(checks[1].detail.contains(missing))
        #expect(checks[1].fix == "run scripts/setup-python.sh (or `moe-routing setup`)")
        let lines = PythonDoctor.render(checks).split(separator: "\n").map(String.init)
        #expect(lines.count == 1 + 5 * 2)
        #expect(lines[1].hasPrefix("FAIL venv: no Python venv at \(missing)"))
        #expect(lines[2].hasPrefix("     fix: "))
    }

    @Test func mismatchedVenvFails() throws {
        let venv = try TestPython.fakeVenv(version: "3.4.0")
        let checks = PythonDoctor.run(venvPath: venv.path, includeVLLM: false)
        #expect(checks.map(\.name) == ["libpython", "venv", "interpreter", "torch"])
        #expect(checks[1].status == .fail)
        #expect(checks[1].detail.contains("made by Python 3.4.0"))
    }

    @Test func checkLinesAreOneLineEach() {
        let ok = DoctorCheck(name: "torch", status: .ok, detail: "2.13.0+cpu, device cpu")
        #expect(ok.lines == ["ok   torch: 2.13.0+cpu, device cpu"])
        let fail = DoctorCheck(
            name: "vllm",
            status: .fail,
            detail: "ModuleNotFoundError: No module named 'vllm'",
            fix: "run it"
        )
        #expect(fail.lines == ["FAIL vllm: ModuleNotFoundError: No module named 'vllm'", "     fix: run it"])
    }

    @Test(.enabled(if: TestPython.available && TestPython.hasVLLM, "needs vLLM in the project's venv"))
    func fullDoctorPassesOnTheManagedVenv() throws {
        let checks = PythonDoctor.run(venvPath: TestPython.environment.path)
        print(PythonDoctor.render(checks))
        #expect(checks.map(\.name) == ["libpython", "venv", "interpreter", "torch", "vllm", "in-process vllm"])
        #expect(checks.allSatisfy { $0.passed })
        #expect(checks[3].detail.contains("device"))
    }
}

struct PythonDoctorOutsideACheckoutTests {
    @Test func theFixLineSaysMoeRoutingSetupOutsideACheckout() throws {
        let outside = try TestPython.temporaryDirectory("doctor-outside")
        let checks = PythonDoctor.run(
            venvPath: nil,
            environment: ["HOME": outside],
            currentDirectory: outside,
            executablePath: nil,
            includeVLLM: false
        )
        let expected = outside + "/.local/share/speculative-moe/venv"
        #expect(checks[1].status == .fail)
        #expect(checks[1].detail.hasPrefix("no Python venv at \(expected)"))
        #expect(checks[1].detail.contains("run `moe-routing setup`"))
        #expect(checks[1].fix == "run `moe-routing setup`")
    }

    @Test func noHomeGivesTheVenvOptionAsFix() throws {
        let outside = try TestPython.temporaryDirectory("doctor-nohome")
        let checks = PythonDoctor.run(
            venvPath: nil,
            environment: [:],
            currentDirectory: outside,
            executablePath: nil,
            includeVLLM: false
        )
        #expect(checks[1].status == .fail)
        #expect(checks[1].detail == MoERoutingEnvironmentError.noUserDataDirectory.description)
        #expect(checks[1].fix == "pass --venv PATH or set MOE_ROUTING_VENV")
    }
}
