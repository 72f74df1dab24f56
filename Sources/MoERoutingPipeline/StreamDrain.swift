// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// What the commands that write traces or reports share so that no data is lost or misread:
// draining a stream into file sinks that are discarded on failure, and refusing a stream that
// holds no routing records.

public import MoERouting

extension AnalysisDispatcher {
    /// Drains `source` through this dispatcher; `eachBlock` runs before every block is
    /// dispatched and once more after the last (convert carries the layer timings read on the
    /// way there), and `check` runs once the source is drained and before the sinks are closed
    /// (put in place). When reading, writing or `check` fails, the sinks are discarded (a file
    /// sink removes its temporary file; an earlier file at its path stays as it was) and the
    /// error is rethrown.
    ///
    /// ```swift
    /// try dispatcher.drain(inputs.source, context: context) {
    ///     try EmptyTraceCheck.require(records: dispatcher.statistics.records, in: paths, skipped: 0, allowEmpty: false)
    /// }
    /// ```
    public func drain(
        _ source: any RoutingBlockSource,
        context: AnalysisContext,
        eachBlock: () throws -> Void = {},
        beforeClosing check: () throws -> Void
    ) throws {
        do {
            try begin(context)
            while let block = try source.nextBlock() {
                try eachBlock()
                try dispatch(block)
            }
            try eachBlock()
            try check()
            for s in sinks { try s.close() }
        } catch {
            discardSinks()
            throw error
        }
    }
}

/// Refuses a stream with no routing records (an empty file, or one whose every record was
/// skipped as bad): converting or analyzing it would print empty tables or write an empty trace
/// and exit 0, hiding that there was nothing there. `--allow-empty` accepts it knowingly.
public enum EmptyTraceCheck {
    /// Throws "no routing records in FILE" unless `records > 0` or `allowEmpty`.
    ///
    /// - Parameters:
    ///   - records: The present (token, layer) cells read.
    ///   - paths: The inputs, for the message.
    ///   - skipped: Bad records skipped (lenient reading), for the message.
    ///   - allowEmpty: `--allow-empty`.
    public static func require(records: Int, in paths: [String], skipped: Int, allowEmpty: Bool) throws {
        guard records == 0, !allowEmpty else { return }
        let files = paths.joined(separator: ", ")
        let why = skipped > 0 ? ": all \(skipped) records were skipped as bad (see above)" : ""
        throw PipelineError("no routing records in \(files)\(why); give --allow-empty to accept an empty trace")
    }
}
