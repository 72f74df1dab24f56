// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Problem-level cross-validation folds, assigned by a fixed rule from the problem alone, so that
/// a streaming analyzer knows a token's fold when it sees it and can keep per-fold counts
/// (memory bounded by the shape, not by the number of problems).
///
/// The rule: `fold = (problemID mod F + offset(domain)) mod F`, where `offset(domain)` is the
/// 64-bit FNV-1a hash of the domain name's UTF-8 bytes, mod F. Consecutive problem ids of one
/// domain therefore go round-robin through the folds (any 2..F consecutive problems land in
/// distinct folds), and different domains start at different folds.
/// Tokens are never split from their problem.
///
/// ```swift
/// let folds = ProblemFolds()                          // 5 folds
/// let f = folds.fold(domain: "gsm8k", problemID: 12)  // 0..<5
/// let perToken = folds.folds(for: block)              // one fold per token of a block
/// ```
public struct ProblemFolds: Sendable, Equatable {
    /// The default number of folds.
    public static let defaultCount = 5
    /// Number of folds (F >= 1).
    public let count: Int

    /// `count` folds (at least 1).
    public init(count: Int = ProblemFolds.defaultCount) {
        self.count = max(1, count)
    }

    /// The 64-bit FNV-1a hash of a string's UTF-8 bytes.
    public static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }

    /// The fold offset of a domain: `fnv1a(domain) mod F`.
    public func offset(domain: String) -> Int { Int(Self.fnv1a(domain) % UInt64(count)) }

    /// The fold of a problem.
    public func fold(domain: String, problemID: Int64) -> Int {
        fold(offset: offset(domain: domain), problemID: problemID)
    }

    /// The fold of a problem key.
    public func fold(of key: ProblemKey) -> Int { fold(domain: key.domain, problemID: key.problemID) }

    /// The fold of a problem given its domain's ``offset(domain:)``.
    @inlinable public func fold(offset: Int, problemID: Int64) -> Int {
        let f = Int64(count)
        let m = Int(((problemID % f) + f) % f)
        return (m + offset) % count
    }

    /// The fold of every token of a block, written into `buffer` (resized to the token count).
    public func folds(for block: RoutingBlock, into buffer: inout [Int]) {
        let offsets = block.domains.map { offset(domain: $0) }
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(block.tokenCount)
        for t in 0..<block.tokenCount {
            let d = Int(block.domain[t])
            let off = d < offsets.count ? offsets[d] : 0
            buffer.append(fold(offset: off, problemID: block.problemID[t]))
        }
    }

    /// The fold of every token of a block.
    public func folds(for block: RoutingBlock) -> [Int] {
        var out: [Int] = []
        folds(for: block, into: &out)
        return out
    }
}
