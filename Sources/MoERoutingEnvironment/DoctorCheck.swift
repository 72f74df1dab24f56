// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// One line of `moe-routing doctor`: a named check, whether it passed, what was found, and for
/// a failure how to fix it.
public struct DoctorCheck: Sendable, Hashable {
    /// A check's outcome.
    public enum Status: String, Sendable, Hashable {
        case ok
        case fail = "FAIL"
    }

    /// What was checked (`libpython`, `venv`, `torch`...).
    public var name: String
    /// Passed or failed.
    public var status: Status
    /// What was found (versions, paths) or why it failed; one line.
    public var detail: String
    /// For a failure: one line on how to fix it.
    public var fix: String?

    /// Creates a check result.
    public init(name: String, status: Status, detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
    }

    /// Whether the check passed.
    public var passed: Bool { status == .ok }

    /// The printed lines: `ok   name: detail`, plus `     fix: ...` for a failure.
    public var lines: [String] {
        let head = "\(status.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0)) \(name): \(detail)"
        guard status == .fail, let fix else { return [head] }
        return [head, "     fix: \(fix)"]
    }
}
