// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A problem (request) as analyzers identify it: its domain name and problem id. Tokens of one
/// problem are strongly dependent, so folds, permutations and bootstraps work on whole problems.
///
/// Ordered by domain name, then problem id.
///
/// ```swift
/// let key = ProblemKey(domain: "gsm8k", problemID: 3)
/// ```
public struct ProblemKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Domain (dataset) name.
    public var domain: String
    /// Problem id within the domain.
    public var problemID: Int64

    /// Creates a key.
    public init(domain: String, problemID: Int64) {
        self.domain = domain
        self.problemID = problemID
    }

    /// Orders by domain name, then problem id.
    public static func < (a: ProblemKey, b: ProblemKey) -> Bool {
        a.domain != b.domain ? a.domain < b.domain : a.problemID < b.problemID
    }

    /// `domain/problemID`, e.g. `gsm8k/3`.
    public var description: String { "\(domain)/\(problemID)" }
}
