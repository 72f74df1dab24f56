// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTestKit
import PythonRuntime
import PythonTestSupport
import Testing

/// Where the Python side is required (CI, or MOE_ROUTING_REQUIRE_PYTHON=1), one test that says
/// plainly what is missing, before the other suites fail on it one by one.
@Suite(
    .enabled(
        if: TestRequirements.pythonRequired,
        "the Python side is required only in CI or with MOE_ROUTING_REQUIRE_PYTHON=1"
    )
)
struct PythonPrerequisiteTests {
    @Test func theVenvStartsAndImportsNumpy() throws {
        let venv = TestPython.environment.path
        #expect(
            FileManager.default.fileExists(atPath: venv + "/bin/python"),
            "no venv at \(venv): run scripts/setup-python.sh"
        )
        try Python.initialize(environment: TestPython.environment)
        try Python.withGIL { gil in _ = try gil.import("numpy") }
    }
}

struct TestRequirementsTests {
    @Test func strictModeFollowsTheEnvironment() {
        #expect(TestRequirements.isRequired(["CI": "true"]))
        #expect(TestRequirements.isRequired(["MOE_ROUTING_REQUIRE_PYTHON": "1"]))
        #expect(!TestRequirements.isRequired(["CI": "false"]))
        #expect(!TestRequirements.isRequired(["MOE_ROUTING_REQUIRE_PYTHON": "0"]))
        #expect(!TestRequirements.isRequired([:]))
    }
}
