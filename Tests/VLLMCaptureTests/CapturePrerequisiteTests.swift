// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTestKit
import PythonRuntime
import Testing
import VLLMCapture

/// Where the Python side is required (CI, or MOE_ROUTING_REQUIRE_PYTHON=1): the capture package
/// is prepared on the venv in this process, and torch, transformers and vLLM import in the venv's
/// own interpreter, or this test fails with Python's own error. (vLLM and transformers are
/// imported in a child process: importing them here in parallel with the engine tests' own import
/// of vLLM would race in Python's import machinery and break both.)
@Suite(
    .enabled(
        if: TestRequirements.pythonRequired,
        "the Python side is required only in CI or with MOE_ROUTING_REQUIRE_PYTHON=1"
    )
)
struct CapturePrerequisiteTests {
    @Test func thePackagePreparesAndVLLMImports() throws {
        let environment = CaptureTestEnvironment.environment
        try CapturePythonPackage.prepare(environment: environment)
        let (status, output) = try TestProcess.run(
            environment.path + "/bin/python",
            ["-c", "import numpy, torch, transformers, vllm; print(vllm.__version__)"]
        )
        #expect(status == 0, "the venv at \(environment.path) cannot import vLLM: \(output)")
    }
}
