// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A JSONL trace file that could not be opened, read or written (as opposed to a bad record in
/// it, which is a ``TraceError``).
///
/// The description is one line naming the file, what was attempted and the system's reason:
/// `runs/a.jsonl: cannot open for reading: No such file or directory`.
public struct JSONLFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// What failed and why.
    public var message: String

    /// Creates an error.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
