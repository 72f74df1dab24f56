// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// An analyzer that records what it was given, for tests of dispatch and plugins.
///
/// It can be told to throw at a stage, to test failure isolation.
public final class RecordingAnalyzer: RoutingAnalyzer {
    public let name: String
    /// The context given to `begin`, if any.
    public private(set) var context: AnalysisContext?
    /// Blocks consumed, in order.
    public private(set) var blocks: [RoutingBlock] = []
    /// Number of merges received.
    public private(set) var merges = 0
    /// Stage at which to throw: "begin", "consume", "merge" or "finish".
    public var failAt: String?

    /// A recorder named `name`.
    public init(name: String = "recording", failAt: String? = nil) {
        self.name = name
        self.failAt = failAt
    }

    private func maybeFail(_ stage: String) throws {
        if failAt == stage { throw RoutingError.analyzerFailed(name: name, message: "told to fail in \(stage)") }
    }

    public func begin(_ context: AnalysisContext) throws {
        try maybeFail("begin")
        self.context = context
    }

    public func consume(_ block: RoutingBlock) throws {
        try maybeFail("consume")
        blocks.append(block)
    }

    public func merge(_ other: any RoutingAnalyzer) throws {
        try maybeFail("merge")
        let o = try mergeable(other)
        blocks += o.blocks
        merges += 1
    }

    public func finish() throws -> AnalyzerReport {
        try maybeFail("finish")
        let tokens = blocks.reduce(0) { $0 + $1.tokenCount }
        return AnalyzerReport(
            analyzer: name,
            title: "Recording",
            json: ["blocks": .int(blocks.count), "tokens": .int(tokens), "merges": .int(merges)],
            tables: [
                ReportTable(
                    title: "Recorded",
                    columns: ["blocks", "tokens"],
                    rows: [["\(blocks.count)", "\(tokens)"]]
                )
            ]
        )
    }
}
