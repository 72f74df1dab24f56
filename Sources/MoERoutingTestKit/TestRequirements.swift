// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Whether a missing prerequisite (the project's Python venv, its interpreter, vLLM) skips the
/// tests that need it or fails them.
///
/// Outside CI a developer without the venv gets skips with a clear message. In CI (`CI=true`), or
/// wherever `MOE_ROUTING_REQUIRE_PYTHON=1` is set (scripts/test.sh sets it in CI), nothing is
/// skipped for a missing or broken Python side: the suites run and fail with the reason, so a
/// regression in the interpreter start-up or the vLLM import cannot turn tests into skips.
///
/// ```swift
/// static let available: Bool = {
///     do { try Python.initialize(environment: environment); return true }
///     catch { return TestRequirements.unavailable("the Python tests need the venv", error) }
/// }()
/// ```
public enum TestRequirements {
    /// The variable that makes a missing Python side a failure outside CI too.
    public static let requirePythonVariable = "MOE_ROUTING_REQUIRE_PYTHON"

    /// Whether missing prerequisites fail instead of skipping: `CI=true` or
    /// `MOE_ROUTING_REQUIRE_PYTHON=1`.
    public static var pythonRequired: Bool { isRequired(ProcessInfo.processInfo.environment) }

    /// ``pythonRequired`` for a given environment.
    public static func isRequired(_ environment: [String: String]) -> Bool {
        environment["CI"]?.lowercased() == "true" || environment[requirePythonVariable] == "1"
    }

    /// What an availability check returns when its prerequisite is missing: `false` (skip) with a
    /// message outside CI; `true` under ``pythonRequired``, so the tests run and fail with their
    /// own error, after a line saying why.
    public static func unavailable(_ what: String, _ reason: any Error) -> Bool {
        unavailable(what, because: "\(reason)")
    }

    /// ``unavailable(_:_:)`` with the reason as text.
    public static func unavailable(_ what: String, because reason: String) -> Bool {
        if pythonRequired {
            print("FAIL (prerequisite missing, \(requirePythonVariable)=1 or CI=true): \(what): \(reason)")
            return true
        }
        print("skipped: \(what): \(reason); run scripts/setup-python.sh")
        return false
    }
}
