// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Which tokens a phase filter keeps (`--phase prefill|decode|all`).
///
/// Every token of a ``RoutingBlock`` has a phase; a trace format without a phase field (the
/// seed's JSONL) reads its tokens as decode tokens, so `prefill` keeps none of them.
public enum PhaseSelection: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Prompt tokens only.
    case prefill
    /// Generated tokens only.
    case decode
    /// Every token (no filtering).
    case all

    /// Whether a token of `phase` is kept.
    @inlinable public func keeps(_ phase: RoutingPhase) -> Bool {
        switch self {
        case .all: return true
        case .prefill: return phase == .prefill
        case .decode: return phase == .decode
        }
    }

    public var description: String { rawValue }
}

/// A source that passes on only the tokens of one phase from another source.
///
/// Blocks keep their order and their tokens' order; a block left with no token is not passed
/// on. ``PhaseSelection/all`` passes every block through unchanged.
///
/// ```swift
/// let decode = PhaseFilteredSource(reader, keeping: .decode)
/// try AnalysisDispatcher(analyzers: mux).run(source: decode, context: AnalysisContext(shape: decode.shape))
/// print(decode.droppedTokens)     // prefill tokens left out
/// ```
public final class PhaseFilteredSource: RoutingBlockSource {
    /// The source filtered.
    public let base: any RoutingBlockSource
    /// The phase kept.
    public let selection: PhaseSelection
    /// Tokens left out so far.
    public private(set) var droppedTokens = 0
    public var shape: ModelShape { base.shape }

    /// Filters `base`, keeping the tokens `selection` keeps.
    public init(_ base: any RoutingBlockSource, keeping selection: PhaseSelection) {
        self.base = base
        self.selection = selection
    }

    public func nextBlock() throws -> RoutingBlock? {
        while let block = try base.nextBlock() {
            if selection == .all { return block }
            let kept = block.phase.indices.filter { selection.keeps(block.phase[$0]) }
            droppedTokens += block.tokenCount - kept.count
            if kept.count == block.tokenCount { return block }
            if kept.isEmpty { continue }
            return block.selecting(tokens: kept)
        }
        return nil
    }
}

extension RoutingBlock {
    /// A block of some of this block's tokens, in the order given, with every column (the step
    /// column too) and the same domain table.
    ///
    /// - Precondition: every index is in `0..<tokenCount`.
    public func selecting(tokens: [Int]) -> RoutingBlock {
        let L = shape.layers
        let k = shape.topK
        var present: [Bool] = []
        present.reserveCapacity(tokens.count * L)
        var weights: [Float] = []
        weights.reserveCapacity(tokens.count * L * k)
        for t in tokens {
            present.append(contentsOf: self.present[(t * L)..<((t + 1) * L)])
            weights.append(contentsOf: self.weights[(t * L * k)..<((t + 1) * L * k)])
        }
        let ids: ExpertIDs
        switch self.ids {
        case .narrow(let a): ids = .narrow(tokens.flatMap { a[($0 * L * k)..<(($0 + 1) * L * k)] })
        case .wide(let a): ids = .wide(tokens.flatMap { a[($0 * L * k)..<(($0 + 1) * L * k)] })
        }
        return RoutingBlock(
            unchecked: shape,
            tokenCount: tokens.count,
            ids: ids,
            weights: weights,
            present: present,
            domain: tokens.map { domain[$0] },
            domains: domains,
            problemID: tokens.map { problemID[$0] },
            position: tokens.map { position[$0] },
            phase: tokens.map { phase[$0] },
            tokenID: tokens.map { tokenID[$0] },
            step: step.map { s in tokens.map { s[$0] } }
        )
    }
}
