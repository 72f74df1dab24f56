// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// The distinct problems a stream contained, for reports ("P problems in F folds"). Memory:
/// one entry per problem.
///
/// ```swift
/// var problems = ProblemSet()
/// problems.insert(from: block)
/// problems.merge(other)
/// problems.count(inFold: 2, of: ProblemFolds())
/// ```
public struct ProblemSet: Sendable, Equatable {
    /// The problems seen.
    public private(set) var keys: Set<ProblemKey> = []

    /// An empty set.
    public init() {}

    /// Number of distinct problems.
    public var count: Int { keys.count }

    /// The problems sorted by domain, then id.
    public var sorted: [ProblemKey] { keys.sorted() }

    /// Adds the problems of every token of a block.
    public mutating func insert(from block: RoutingBlock) {
        var seen: Set<PackedProblem> = []
        var lastDomain: UInt16 = .max
        var lastProblem: Int64 = .min
        for t in 0..<block.tokenCount {
            let d = block.domain[t]
            let p = block.problemID[t]
            if d == lastDomain, p == lastProblem { continue }
            lastDomain = d
            lastProblem = p
            if seen.insert(PackedProblem(domain: d, problem: p)).inserted {
                let name = Int(d) < block.domains.count ? block.domains[Int(d)] : ""
                keys.insert(ProblemKey(domain: name, problemID: p))
            }
        }
    }

    /// Adds one problem.
    public mutating func insert(_ key: ProblemKey) { keys.insert(key) }

    /// Adds another set's problems.
    public mutating func merge(_ other: ProblemSet) { keys.formUnion(other.keys) }

    /// How many problems fall in one fold.
    public func count(inFold fold: Int, of folds: ProblemFolds) -> Int {
        keys.reduce(0) { $0 + (folds.fold(of: $1) == fold ? 1 : 0) }
    }

    /// How many folds hold at least one problem.
    public func nonEmptyFolds(of folds: ProblemFolds) -> Int {
        Set(keys.map { folds.fold(of: $0) }).count
    }

    private struct PackedProblem: Hashable {
        var domain: UInt16
        var problem: Int64
    }
}
