// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Which input each (problem, domain) came from, so that a problem read from two inputs (the same
// trace given twice, a JSONL trace and its converted copy) is refused instead of counted twice.

/// A (problem, domain) key found in two inputs of one stream: every count of that problem would
/// double, so the stream is refused.
///
/// ```swift
/// // "problem 0 (gsm8k) is in both a.jsonl and a.moetrace: ..."
/// print(error.description)
/// ```
public struct DuplicateProblemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problem id.
    public var problem: Int64
    /// The problem's domain.
    public var domain: String
    /// The input that held it first.
    public var firstInput: String
    /// The input that holds it again.
    public var secondInput: String

    /// Creates an error.
    public init(problem: Int64, domain: String, firstInput: String, secondInput: String) {
        self.problem = problem
        self.domain = domain
        self.firstInput = firstInput
        self.secondInput = secondInput
    }

    public var description: String {
        "problem \(problem) (\(domain)) is in both \(firstInput) and \(secondInput): each problem may come from one input only "
            + "(the same trace given twice, or a trace and its converted copy, would count it twice); give one of them"
    }
}

/// Remembers the input (an index into the stream's sources) of every (problem, domain) key seen,
/// and refuses a key that comes back from another input. The same key in several blocks of one
/// input is fine (a problem may span blocks).
struct ProblemOrigins {
    private struct Key: Hashable {
        var domain: String
        var problem: Int64
    }

    /// The inputs' names, for messages.
    let names: [String]
    private var origin: [Key: Int] = [:]

    init(names: [String]) {
        self.names = names
    }

    /// Records the keys of `block`, read from input `source`.
    ///
    /// - Throws: ``DuplicateProblemError`` for a key another input already gave.
    /// - Complexity: O(tokens) comparisons, one dictionary look-up per run of tokens of one problem.
    mutating func record(_ block: RoutingBlock, from source: Int) throws(DuplicateProblemError) {
        var t = 0
        let T = block.tokenCount
        while t < T {
            let d = block.domain[t]
            let p = block.problemID[t]
            var end = t + 1
            while end < T, block.domain[end] == d, block.problemID[end] == p { end += 1 }
            let key = Key(domain: block.domains[Int(d)], problem: p)
            if let first = origin[key] {
                if first != source {
                    throw DuplicateProblemError(
                        problem: p,
                        domain: key.domain,
                        firstInput: name(first),
                        secondInput: name(source)
                    )
                }
            } else {
                origin[key] = source
            }
            t = end
        }
    }

    private func name(_ i: Int) -> String { i < names.count ? names[i] : "input \(i + 1)" }
}
