// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Whether a token was routed while its prompt was processed or while it was generated.
public enum RoutingPhase: UInt8, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The token belongs to the prompt (processed in a prefill step or chunk).
    case prefill = 0
    /// The token was generated and fed back (a decode step).
    case decode = 1

    public var description: String { self == .prefill ? "prefill" : "decode" }
}

/// Expert ids of a block, one byte each while the model has at most 256 experts, two beyond.
///
/// The layout is token-major: the ids of token `t`, layer `l`, slot `j` sit at
/// `(t * L + l) * k + j`.
public enum ExpertIDs: Sendable, Equatable {
    /// One byte per id (E <= 256).
    case narrow([UInt8])
    /// Two bytes per id (256 < E <= 65536).
    case wide([UInt16])

    /// The number of ids stored.
    @inlinable public var count: Int {
        switch self {
        case .narrow(let a): return a.count
        case .wide(let a): return a.count
        }
    }

    /// The id at a flat index.
    ///
    /// - Complexity: O(1).
    @inlinable public subscript(index: Int) -> Int {
        switch self {
        case .narrow(let a): return Int(a[index])
        case .wide(let a): return Int(a[index])
        }
    }
}

/// A columnar block of token journeys: for `tokenCount` tokens, the top-k experts and gating
/// weights at every MoE layer, which (token, layer) cells are present, and per-token metadata.
///
/// Blocks are what analyzers consume. Within a present cell, ids are ordered by weight, highest
/// first; a missing cell holds zeros and must be skipped (``isPresent(token:layer:)``).
///
/// ```swift
/// for t in 0..<block.tokenCount where block.isPresent(token: t, layer: 0) {
///     let first = block.expert(token: t, layer: 0, slot: 0)
/// }
/// ```
public struct RoutingBlock: Sendable, Equatable {
    /// The model shape every cell follows.
    public let shape: ModelShape
    /// Number of tokens (T).
    public let tokenCount: Int
    /// Expert ids [T][L][k], ordered by weight within a cell.
    public let ids: ExpertIDs
    /// Gating weights [T][L][k], aligned with ``ids``.
    public let weights: [Float]
    /// Presence mask [T][L]: `true` where the (token, layer) cell was routed.
    public let present: [Bool]
    /// Domain (dataset) of each token, an index into ``domains``.
    public let domain: [UInt16]
    /// Domain names of the stream this block belongs to. Indices are stable across a stream's
    /// blocks: later blocks may only append names.
    public let domains: [String]
    /// Problem (request) id of each token.
    public let problemID: [Int64]
    /// Position of each token in its sequence.
    public let position: [Int32]
    /// Phase of each token.
    public let phase: [RoutingPhase]
    /// Vocabulary token id of each token, -1 when unknown.
    public let tokenID: [Int32]
    /// The engine step (forward pass) that routed each token, numbered 0, 1, 2, ... through the
    /// run: the index the trace's layer-timing records carry, so tokens that share a value were
    /// batched together. `UInt32.max` where a token's step is unknown; `nil` when the source
    /// recorded no steps.
    public let step: [UInt32]?

    /// Creates a block from its columns, checking their lengths and every present cell.
    ///
    /// `step`, when given, holds one engine step per token (`UInt32.max` where unknown).
    ///
    /// - Throws: ``RoutingError/invalidRecord(_:)`` naming the first bad column or cell.
    public init(
        shape: ModelShape,
        ids: ExpertIDs,
        weights: [Float],
        present: [Bool],
        domain: [UInt16],
        domains: [String],
        problemID: [Int64],
        position: [Int32],
        phase: [RoutingPhase],
        tokenID: [Int32],
        step: [UInt32]? = nil
    ) throws {
        let t = domain.count
        let cells = t * shape.layers
        func check(_ name: String, _ count: Int, _ expected: Int) throws {
            guard count == expected else {
                throw RoutingError.invalidRecord(
                    RecordIssue(.malformed, "column '\(name)' holds \(count) values, expected \(expected)")
                )
            }
        }
        try check("ids", ids.count, cells * shape.topK)
        try check("weights", weights.count, cells * shape.topK)
        try check("present", present.count, cells)
        try check("problem_id", problemID.count, t)
        try check("position", position.count, t)
        try check("phase", phase.count, t)
        try check("token_id", tokenID.count, t)
        if let step { try check("step", step.count, t) }
        switch ids {
        case .narrow: try check("ids (narrow requires E <= 256)", shape.usesNarrowIDs ? 0 : 1, 0)
        case .wide: break
        }
        if let bad = domain.first(where: { Int($0) >= domains.count }) {
            throw RoutingError.invalidRecord(
                RecordIssue(.malformed, "domain index \(bad) but only \(domains.count) domain names")
            )
        }
        self.init(
            unchecked: shape,
            tokenCount: t,
            ids: ids,
            weights: weights,
            present: present,
            domain: domain,
            domains: domains,
            problemID: problemID,
            position: position,
            phase: phase,
            tokenID: tokenID,
            step: step
        )
        for tok in 0..<t {
            for l in 0..<shape.layers where isPresent(token: tok, layer: l) {
                try Self.validateCell(
                    shape: shape,
                    experts: (0..<shape.topK).map { expert(token: tok, layer: l, slot: $0) },
                    weights: (0..<shape.topK).map { weight(token: tok, layer: l, slot: $0) },
                    requireOrder: true
                )
            }
        }
    }

    /// Creates a block without checks. Callers guarantee every invariant (builders, readers of
    /// checksummed files).
    @usableFromInline
    package init(
        unchecked shape: ModelShape,
        tokenCount: Int,
        ids: ExpertIDs,
        weights: [Float],
        present: [Bool],
        domain: [UInt16],
        domains: [String],
        problemID: [Int64],
        position: [Int32],
        phase: [RoutingPhase],
        tokenID: [Int32],
        step: [UInt32]? = nil
    ) {
        self.shape = shape
        self.tokenCount = tokenCount
        self.ids = ids
        self.weights = weights
        self.present = present
        self.domain = domain
        self.domains = domains
        self.problemID = problemID
        self.position = position
        self.phase = phase
        self.tokenID = tokenID
        self.step = step
    }

    /// An empty block of the given shape.
    public static func empty(shape: ModelShape, domains: [String] = []) -> RoutingBlock {
        RoutingBlock(
            unchecked: shape,
            tokenCount: 0,
            ids: shape.usesNarrowIDs ? .narrow([]) : .wide([]),
            weights: [],
            present: [],
            domain: [],
            domains: domains,
            problemID: [],
            position: [],
            phase: [],
            tokenID: []
        )
    }

    // MARK: - Cell access

    /// Whether the (token, layer) cell was routed.
    @inlinable public func isPresent(token: Int, layer: Int) -> Bool {
        present[token * shape.layers + layer]
    }

    /// The expert in `slot` (0 = highest weight) of a cell.
    @inlinable public func expert(token: Int, layer: Int, slot: Int) -> Int {
        ids[(token * shape.layers + layer) * shape.topK + slot]
    }

    /// The gating weight in `slot` of a cell.
    @inlinable public func weight(token: Int, layer: Int, slot: Int) -> Float {
        weights[(token * shape.layers + layer) * shape.topK + slot]
    }

    /// The highest-weight expert of a cell, or `nil` when the cell is missing.
    @inlinable public func top1(token: Int, layer: Int) -> Int? {
        isPresent(token: token, layer: layer) ? expert(token: token, layer: layer, slot: 0) : nil
    }

    /// The domain name of a token.
    @inlinable public func domainName(token: Int) -> String { domains[Int(domain[token])] }

    /// Whether every column holds the length ``tokenCount`` and ``shape`` call for (blocks made
    /// with the unchecked initialiser can break this; writers check it before encoding).
    public var hasConsistentColumns: Bool {
        let t = tokenCount
        let cells = t * shape.layers
        let slots = cells * shape.topK
        return ids.count == slots && weights.count == slots && present.count == cells && domain.count == t
            && problemID.count == t && position.count == t && phase.count == t && tokenID.count == t
            && (step?.count ?? t) == t
    }

    /// The number of present (token, layer) cells: the block's token-layer records.
    public var recordCount: Int { present.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Tokens whose every layer is present.
    public var completeJourneyCount: Int {
        var n = 0
        for t in 0..<tokenCount where !(0..<shape.layers).contains(where: { !isPresent(token: t, layer: $0) }) {
            n += 1
        }
        return n
    }

    // MARK: - Validation shared by builders and readers

    /// Checks one cell: k ids, each below E and distinct, weights finite and non-negative, and,
    /// when `requireOrder`, ordered highest first.
    @usableFromInline
    package static func validateCell(
        shape: ModelShape,
        experts: [Int],
        weights: [Float],
        requireOrder: Bool
    ) throws {
        guard experts.count == shape.topK, weights.count == shape.topK else {
            throw RoutingError.invalidRecord(
                RecordIssue(
                    .topKMismatch,
                    "record has \(experts.count) experts and \(weights.count) weights, but top-k is \(shape.topK)"
                )
            )
        }
        for (j, e) in experts.enumerated() {
            guard e >= 0, e < shape.experts else {
                throw RoutingError.invalidRecord(
                    RecordIssue(.expertOutOfRange, "expert id \(e) is outside 0..<\(shape.experts) (E)")
                )
            }
            if experts[..<j].contains(e) {
                throw RoutingError.invalidRecord(
                    RecordIssue(.duplicateExpert, "expert id \(e) appears twice in one cell")
                )
            }
        }
        for w in weights where !(w.isFinite && w >= 0) {
            throw RoutingError.invalidRecord(
                RecordIssue(.invalidWeight, "weight \(w) is not a finite, non-negative number")
            )
        }
        if requireOrder {
            for j in 1..<max(1, weights.count) where weights[j] > weights[j - 1] {
                throw RoutingError.invalidRecord(
                    RecordIssue(.malformed, "weights are not ordered highest first: \(weights)")
                )
            }
        }
    }
}
