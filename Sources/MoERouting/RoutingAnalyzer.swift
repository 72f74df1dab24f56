// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// What an analyzer is told before the first block: the model shape and the run's settings.
public struct AnalysisContext: Sendable, Equatable {
    /// The shape every block follows.
    public var shape: ModelShape
    /// Capture or run settings (engine options, dataset, ...), as strings, for reports.
    public var settings: [String: String]
    /// Seed for any randomness (shuffled nulls, permutation tests, bootstraps). Same seed, same
    /// input: same report, byte for byte.
    public var seed: UInt64

    /// Creates a context.
    public init(shape: ModelShape, settings: [String: String] = [:], seed: UInt64 = 0x5EED) {
        self.shape = shape
        self.settings = settings
        self.seed = seed
    }
}

/// An analyzer of routing decisions: it sees a stream of columnar ``RoutingBlock``s and, at the
/// end, hands back an ``AnalyzerReport``.
///
/// The lifecycle is `begin` once, `consume` for each block, optionally `merge` with instances
/// that consumed other shards, then `finish` once.
///
/// ```swift
/// final class TokenCounter: RoutingAnalyzer {
///     let name = "token-counter"
///     private var tokens = 0
///     func begin(_ context: AnalysisContext) throws {}
///     func consume(_ block: RoutingBlock) throws { tokens += block.tokenCount }
///     func merge(_ other: any RoutingAnalyzer) throws {
///         tokens += try other.mergeCast(as: TokenCounter.self, into: self).tokens
///     }
///     func finish() throws -> AnalyzerReport {
///         AnalyzerReport(analyzer: name, title: "Tokens", json: ["tokens": .int(tokens)])
///     }
/// }
/// ```
///
/// ### Implementation requirements
/// - Must be a `class`: the dispatcher holds it by reference and calls it from one thread at a
///   time; it never calls one instance from two threads at once.
/// - Memory must be bounded by the model shape (and by per-problem summaries where a method needs
///   them), never by the trace length: no analyzer may keep the whole trace.
/// - `merge` must give exactly what one pass over both instances' blocks gives: sharded runs
///   rely on it. Order of merging must not change the report.
/// - `finish` must be deterministic: the same blocks and seed give the same report, byte for byte.
/// - Throwing from any method drops this analyzer from the run (the others go on) and reports
///   the error.
public protocol RoutingAnalyzer: AnyObject {
    /// The analyzer's registry name, also its key in combined JSON output.
    var name: String { get }
    /// Called once before any block.
    func begin(_ context: AnalysisContext) throws
    /// Called for every block, in stream order.
    func consume(_ block: RoutingBlock) throws
    /// Adds the state of `other`, an instance of the same type that consumed other blocks.
    func merge(_ other: any RoutingAnalyzer) throws
    /// Called once at the end.
    func finish() throws -> AnalyzerReport
}

extension RoutingAnalyzer {
    /// Casts `other` to the concrete analyzer type for a merge, or throws
    /// ``RoutingError/incompatibleMerge(_:)``.
    public func mergeCast<A: RoutingAnalyzer>(as type: A.Type, into receiver: some RoutingAnalyzer) throws -> A {
        guard let a = self as? A else {
            throw RoutingError.incompatibleMerge("'\(receiver.name)' (\(Swift.type(of: receiver))) cannot merge '\(name)' (\(Swift.type(of: self)))")
        }
        guard a !== receiver as AnyObject else {
            throw RoutingError.incompatibleMerge("'\(name)' cannot merge with itself")
        }
        return a
    }
}

/// An analyzer that does nothing and reports nothing; the default where one is required.
public final class NoOpAnalyzer: RoutingAnalyzer {
    public let name = "noop"
    public init() {}
    public func begin(_ context: AnalysisContext) throws {}
    public func consume(_ block: RoutingBlock) throws {}
    public func merge(_ other: any RoutingAnalyzer) throws {}
    public func finish() throws -> AnalyzerReport {
        AnalyzerReport(analyzer: name, title: "No-op", json: .object([]))
    }
}
