// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Reads several sources one after another as one stream, with one domain table.
///
/// Each source numbers its domains its own way; blocks are re-indexed into a table shared by
/// the whole stream (names keep their first-seen order), so analyzers see stable indices.
///
/// Given the sources' names, the stream also refuses a (problem, domain) key that two sources
/// hold (``DuplicateProblemError``): the same trace given twice, or a JSONL trace and its converted
/// `.moetrace`, would otherwise count every token of that problem twice. A problem may span
/// several blocks of one source.
///
/// ```swift
/// let all = try ConcatenatedSource([humaneval, gsm8k])   // shapes must match
/// let files = try ConcatenatedSource([a, b], names: ["a.jsonl", "b.moetrace"])
/// ```
public final class ConcatenatedSource: RoutingBlockSource {
    public let shape: ModelShape
    private let sources: [any RoutingBlockSource]
    private var current = 0
    /// The stream's domain names so far.
    public private(set) var domains: [String] = []
    private var index: [String: UInt16] = [:]
    /// Each problem's source, when the sources are named.
    private var origins: ProblemOrigins?

    /// Chains `sources`.
    ///
    /// - Parameters:
    ///   - sources: The sources, read in this order.
    ///   - names: The sources' names (file names) in the same order; with them, a (problem,
    ///     domain) key found in two sources throws ``DuplicateProblemError`` from ``nextBlock()``.
    /// - Throws: ``RoutingError/invalidShape(_:)`` when the sources' shapes differ in L, E or k.
    public init(_ sources: [any RoutingBlockSource], names: [String]? = nil) throws {
        guard let first = sources.first else { throw RoutingError.invalidShape("no input sources") }
        for s in sources.dropFirst() {
            let a = first.shape
            let b = s.shape
            guard a.layers == b.layers, a.experts == b.experts, a.topK == b.topK else {
                throw RoutingError.invalidShape(
                    "inputs disagree on the model shape: \(a) and \(b); analyze them separately"
                )
            }
        }
        self.shape = first.shape
        self.sources = sources
        self.origins = names.map(ProblemOrigins.init(names:))
    }

    /// The next block of the current source, re-indexed into the stream's domain table.
    ///
    /// - Throws: the sources' errors, and ``DuplicateProblemError`` (named sources only).
    public func nextBlock() throws -> RoutingBlock? {
        while current < sources.count {
            if let block = try sources[current].nextBlock() {
                try origins?.record(block, from: current)
                return try remap(block)
            }
            current += 1
        }
        return nil
    }

    private func remap(_ block: RoutingBlock) throws -> RoutingBlock {
        var map: [UInt16] = []
        map.reserveCapacity(block.domains.count)
        for name in block.domains {
            if let i = index[name] {
                map.append(i)
            } else {
                guard domains.count <= Int(UInt16.max) else {
                    throw RoutingError.invalidRecord(RecordIssue(.malformed, "more than 65536 distinct domains"))
                }
                let i = UInt16(domains.count)
                domains.append(name)
                index[name] = i
                map.append(i)
            }
        }
        let identity =
            map.enumerated().allSatisfy { Int($0.element) == $0.offset } && domains.count == block.domains.count
        if identity && shape == block.shape { return block }
        return RoutingBlock(
            unchecked: shape,
            tokenCount: block.tokenCount,
            ids: block.ids,
            weights: block.weights,
            present: block.present,
            domain: identity ? block.domain : block.domain.map { map[Int($0)] },
            domains: domains,
            problemID: block.problemID,
            position: block.position,
            phase: block.phase,
            tokenID: block.tokenID,
            step: block.step
        )
    }
}
