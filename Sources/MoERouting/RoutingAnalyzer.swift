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
///         tokens += try mergeable(other).tokens
///     }
///     func finish() throws -> AnalyzerReport {
///         AnalyzerReport(analyzer: name, title: "Tokens", json: ["tokens": .int(tokens)])
///     }
/// }
/// ```
///
/// ### Implementation requirements
/// - Must be a `class`: the dispatcher holds it by reference and never calls one instance from
///   two threads at once. A ``MultiplexAnalyzer`` in its default parallel mode may call it from a
///   different thread for each block and runs other analyzers at the same moment, so an analyzer
///   must not share mutable state with other instances; one that must (or that needs the calling
///   thread) runs under a multiplexer with ``MultiplexAnalyzer/Concurrency-swift.enum/serial``.
/// - Memory must be bounded by the model shape (and by per-problem summaries where a method needs
///   them), never by the trace length: no analyzer may keep the whole trace.
/// - `merge` must give exactly what one pass over both instances' blocks gives: sharded runs
///   rely on it. Order of merging must not change the report. `MergeCheck` in the test kit
///   checks both for any analyzer.
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
    /// Returns `other` as an instance of this analyzer's own type, so that `merge(_:)` can read
    /// its state; `merge` starts with it.
    ///
    /// ```swift
    /// func merge(_ other: any RoutingAnalyzer) throws {
    ///     let other = try mergeable(other)
    ///     tokens += other.tokens
    /// }
    /// ```
    ///
    /// - Parameter other: The instance handed to `merge(_:)`.
    /// - Returns: `other`, cast to `Self`.
    /// - Throws: ``RoutingError/incompatibleMerge(_:)`` when `other` is another type of analyzer
    ///   (the message names both) or this very instance.
    public func mergeable(_ other: any RoutingAnalyzer) throws -> Self {
        guard let peer = other as? Self else {
            throw RoutingError.incompatibleMerge(
                "'\(name)' (\(type(of: self))) cannot merge '\(other.name)' (\(type(of: other)))"
            )
        }
        guard peer !== self else {
            throw RoutingError.incompatibleMerge("'\(other.name)' cannot merge with itself")
        }
        return peer
    }
}
