// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Where the pipeline's one-line messages go: progress ("starting vLLM on ..."), warnings
/// (skipped records, analyzer failures) and the files written. The default,
/// ``standardError``, prints each line to standard error as `moe-routing: LINE`, as the
/// command-line tool does; pass ``silent`` or your own closure to collect or drop them.
///
/// ```swift
/// var job = CaptureJob()
/// job.log = PipelineLog { line in myLogger.info("\(line)") }
/// ```
public struct PipelineLog: Sendable {
    /// Receives one message, without a trailing newline.
    public var write: @Sendable (String) -> Void

    /// A log that hands every message to `write`.
    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    /// Sends one message.
    public func callAsFunction(_ line: String) { write(line) }

    /// Standard error, one `moe-routing: LINE` per message.
    public static let standardError = PipelineLog { line in
        FileHandle.standardError.write(Data(("moe-routing: " + line + "\n").utf8))
    }

    /// Drops every message.
    public static let silent = PipelineLog { _ in }
}

/// An error for the user: one line naming the file or value and the fix, printed without
/// decoration.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    /// The message.
    public let description: String

    /// An error with `message` as its one line.
    public init(_ message: String) { description = message }
}
