// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTestKit
import PythonRuntime
import Testing
import VLLMCapture

/// Where the Python side is required (CI, or MOE_ROUTING_REQUIRE_PYTHON=1): the capture package,
/// vLLM and transformers import in this process, or this test fails with Python's own error.
@Suite(.enabled(if: TestRequirements.pythonRequired, "the Python side is required only in CI or with MOE_ROUTING_REQUIRE_PYTHON=1"))
struct CapturePrerequisiteTests {
    @Test func vllmAndTransformersImportInProcess() throws {
        try CapturePythonPackage.prepare(environment: CaptureTestEnvironment.environment)
        try Python.withGIL { gil in
            for module in ["numpy", "torch", "transformers", "vllm", "speculative_moe"] { _ = try gil.import(module) }
        }
    }
}
