// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// An analyzer that fans one stream out to several analyzers and isolates their failures: one
/// that throws is recorded in ``failures`` and dropped, and the others go on.
///
/// ```swift
/// let mux = MultiplexAnalyzer([transition, multihop])
/// try mux.begin(context)
/// for block in blocks { try mux.consume(block) }
/// let (reports, failures) = mux.finishAll()
/// ```
public final class MultiplexAnalyzer: RoutingAnalyzer {
    public let name = "multiplex"

    /// The analyzers still running, in the order given.
    public private(set) var analyzers: [any RoutingAnalyzer]
    /// Analyzers dropped so far, with their errors.
    public private(set) var failures: [AnalyzerFailure] = []

    /// Fans out to `analyzers`, in order.
    public init(_ analyzers: [any RoutingAnalyzer]) {
        self.analyzers = analyzers
    }

    private func each(_ stage: String, _ body: (any RoutingAnalyzer) throws -> Void) {
        var kept: [any RoutingAnalyzer] = []
        kept.reserveCapacity(analyzers.count)
        for a in analyzers {
            do {
                try body(a)
                kept.append(a)
            } catch {
                failures.append(AnalyzerFailure(analyzer: a.name, stage: stage, message: "\(error)"))
            }
        }
        analyzers = kept
    }

    public func begin(_ context: AnalysisContext) throws { each("begin") { try $0.begin(context) } }

    public func consume(_ block: RoutingBlock) throws { each("consume") { try $0.consume(block) } }

    /// Merges analyzer by analyzer, matched by name. An analyzer the other side dropped is
    /// dropped here too (its result would be partial).
    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        let theirs = Dictionary(o.analyzers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for f in o.failures where !failures.contains(f) { failures.append(f) }
        each("merge") { a in
            guard let b = theirs[a.name] else {
                throw RoutingError.incompatibleMerge("the other shard has no running '\(a.name)'")
            }
            try a.merge(b)
        }
    }

    /// Not used: call ``finishAll()`` to get every analyzer's report.
    public func finish() throws -> AnalyzerReport {
        let (reports, _) = finishAll()
        return AnalyzerReport(
            analyzer: name,
            title: "All analyzers",
            json: .object(reports.map { .init($0.analyzer, $0.json) })
        )
    }

    /// Finishes every running analyzer; a throwing `finish` becomes a failure.
    public func finishAll() -> (reports: [AnalyzerReport], failures: [AnalyzerFailure]) {
        var reports: [AnalyzerReport] = []
        each("finish") { reports.append(try $0.finish()) }
        return (reports, failures)
    }
}

/// An analyzer that was dropped from a run, and why.
public struct AnalyzerFailure: Sendable, Equatable, CustomStringConvertible {
    /// The analyzer's name.
    public var analyzer: String
    /// Where it failed: begin, consume, merge or finish.
    public var stage: String
    /// The error, as text.
    public var message: String

    public init(analyzer: String, stage: String, message: String) {
        self.analyzer = analyzer
        self.stage = stage
        self.message = message
    }

    public var description: String { "analyzer '\(analyzer)' failed in \(stage) and was dropped: \(message)" }
}
