// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Assembles ``RoutingBlock``s from routing decisions that arrive cell by cell (trace records)
/// or layer by layer for a batch of rows (an engine hook).
///
/// The builder validates every cell (ids below E and distinct, finite non-negative weights, k of
/// each), orders each cell's experts by weight, highest first, and refuses a second write to the
/// same (token, layer) cell. The domain table is shared by all blocks a builder emits.
///
/// Tokens may carry the engine step that routed them (``TokenMetadata/step``, or the `step:`
/// overload of the fast append). A block gets a ``RoutingBlock/step`` column when at least one of
/// its tokens had a step (the others read `UInt32.max`, unknown), else `nil`.
///
/// ```swift
/// var builder = RoutingBlockBuilder(shape: .tinyMixtral)
/// let t = builder.appendToken(TokenMetadata(domain: "gsm8k", problemID: 0, position: 0, phase: .decode))
/// try builder.setCell(token: t, layer: 0, experts: [5, 2], weights: [0.3, 0.7])
/// let block = builder.makeBlock()   // experts stored as [2, 5]
/// ```
public struct RoutingBlockBuilder: Sendable {
    /// The shape every cell must fit.
    public let shape: ModelShape
    /// Domain names seen so far; indices are stable.
    public private(set) var domains: [String]
    private var domainIndex: [String: UInt16]

    @usableFromInline var narrowIDs: [UInt8] = []
    @usableFromInline var wideIDs: [UInt16] = []
    @usableFromInline var weights: [Float] = []
    @usableFromInline var present: [Bool] = []
    @usableFromInline var domain: [UInt16] = []
    @usableFromInline var problemID: [Int64] = []
    @usableFromInline var position: [Int32] = []
    @usableFromInline var phase: [RoutingPhase] = []
    @usableFromInline var tokenID: [Int32] = []
    /// Steps of the pending tokens; empty (and ignored) until one of them has a step.
    @usableFromInline var step: [UInt32] = []
    /// Whether a pending token has a step, so ``step`` holds one value per pending token.
    @usableFromInline var hasSteps = false

    // Scratch space for sorting one cell.
    @usableFromInline var scratchIDs: [Int] = []
    @usableFromInline var scratchWeights: [Float] = []

    /// Creates a builder; `domains` pre-registers names so their indices are fixed.
    public init(shape: ModelShape, domains: [String] = []) {
        self.shape = shape
        self.domains = []
        self.domainIndex = [:]
        for d in domains { _ = try? self.domainIndex(of: d) }
    }

    /// Tokens added since the last ``makeBlock()``.
    @inlinable public var tokenCount: Int { domain.count }

    /// The index of a domain name, registering it when new.
    ///
    /// - Throws: ``RoutingError/invalidRecord(_:)`` beyond 65,536 distinct domains.
    public mutating func domainIndex(of name: String) throws -> UInt16 {
        if let i = domainIndex[name] { return i }
        guard domains.count <= Int(UInt16.max) else {
            throw RoutingError.invalidRecord(RecordIssue(.malformed, "more than 65536 distinct domains"))
        }
        let i = UInt16(domains.count)
        domains.append(name)
        domainIndex[name] = i
        return i
    }

    /// Appends a token with every cell missing and returns its index in the pending block.
    @discardableResult
    public mutating func appendToken(_ meta: TokenMetadata) throws -> Int {
        let d = try domainIndex(of: meta.domain)
        return appendToken(
            domainIndex: d,
            problemID: meta.problemID,
            position: meta.position,
            phase: meta.phase,
            tokenID: meta.tokenID,
            step: meta.step ?? .max
        )
    }

    /// Appends a token by domain index (fast path for readers) and returns its index. The token's
    /// step is unknown (`UInt32.max` if the block gets a step column).
    @discardableResult
    public mutating func appendToken(
        domainIndex d: UInt16,
        problemID p: Int64,
        position pos: Int32,
        phase ph: RoutingPhase,
        tokenID tid: Int32
    ) -> Int {
        if hasSteps { step.append(.max) }
        return appendRow(domainIndex: d, problemID: p, position: pos, phase: ph, tokenID: tid)
    }

    /// Appends a token by domain index with the engine step that routed it (`UInt32.max` for
    /// unknown) and returns its index.
    @discardableResult
    public mutating func appendToken(
        domainIndex d: UInt16,
        problemID p: Int64,
        position pos: Int32,
        phase ph: RoutingPhase,
        tokenID tid: Int32,
        step s: UInt32
    ) -> Int {
        if hasSteps {
            step.append(s)
        } else if s != .max {
            // The first step of this block: earlier tokens' steps are unknown.
            step.append(contentsOf: repeatElement(.max, count: domain.count))
            step.append(s)
            hasSteps = true
        }
        return appendRow(domainIndex: d, problemID: p, position: pos, phase: ph, tokenID: tid)
    }

    /// Appends a token's metadata (not its step) and its missing cells.
    @inline(__always)
    private mutating func appendRow(
        domainIndex d: UInt16,
        problemID p: Int64,
        position pos: Int32,
        phase ph: RoutingPhase,
        tokenID tid: Int32
    ) -> Int {
        let t = domain.count
        domain.append(d)
        problemID.append(p)
        position.append(pos)
        phase.append(ph)
        tokenID.append(tid)
        present.append(contentsOf: repeatElement(false, count: shape.layers))
        let n = shape.layers * shape.topK
        weights.append(contentsOf: repeatElement(0, count: n))
        if shape.usesNarrowIDs {
            narrowIDs.append(contentsOf: repeatElement(0, count: n))
        } else {
            wideIDs.append(contentsOf: repeatElement(0, count: n))
        }
        return t
    }

    /// Whether a cell of a pending token has been set.
    public func isSet(token: Int, layer: Int) -> Bool { present[token * shape.layers + layer] }

    /// Sets one (token, layer) cell. Experts may come in any order; they are stored by weight,
    /// highest first (ties keep their given order).
    ///
    /// - Throws: ``RoutingError/invalidRecord(_:)`` for a layer outside the shape, a bad cell or
    ///   a cell already set. Nothing is written when it throws.
    @inlinable
    public mutating func setCell<E: BinaryInteger, W: BinaryFloatingPoint>(
        token: Int,
        layer: Int,
        experts: some Collection<E>,
        weights w: some Collection<W>
    ) throws {
        guard layer >= 0, layer < shape.layers else {
            throw RoutingError.invalidRecord(
                RecordIssue(.layerOutOfRange, "layer \(layer) is outside 0..<\(shape.layers) (L)")
            )
        }
        guard token >= 0, token < tokenCount else {
            throw RoutingError.invalidRecord(RecordIssue(.malformed, "token index \(token) was never appended"))
        }
        scratchIDs.removeAll(keepingCapacity: true)
        scratchWeights.removeAll(keepingCapacity: true)
        for e in experts { scratchIDs.append(Int(truncatingIfNeeded: e)) }
        for x in w { scratchWeights.append(Float(x)) }
        try RoutingBlock.validateCell(shape: shape, experts: scratchIDs, weights: scratchWeights, requireOrder: false)
        let cell = token * shape.layers + layer
        guard !present[cell] else {
            throw RoutingError.invalidRecord(
                RecordIssue(.duplicateCell, "a second record for layer \(layer) of the same token")
            )
        }
        // Insertion sort by weight, descending; stable.
        let k = shape.topK
        if k > 1 {
            for i in 1..<k {
                let wi = scratchWeights[i]
                let ei = scratchIDs[i]
                var j = i - 1
                while j >= 0 && scratchWeights[j] < wi {
                    scratchWeights[j + 1] = scratchWeights[j]
                    scratchIDs[j + 1] = scratchIDs[j]
                    j -= 1
                }
                scratchWeights[j + 1] = wi
                scratchIDs[j + 1] = ei
            }
        }
        let base = cell * k
        for j in 0..<k {
            weights[base + j] = scratchWeights[j]
            if shape.usesNarrowIDs {
                narrowIDs[base + j] = UInt8(scratchIDs[j])
            } else {
                wideIDs[base + j] = UInt16(scratchIDs[j])
            }
        }
        present[cell] = true
    }

    /// Sets `layer` for a run of consecutive pending tokens from an engine batch: row `r` of
    /// `experts` and `weights` (each `rows * k` values, row-major) goes to token `firstToken + r`.
    ///
    /// - Throws: the first bad row's error, naming the row. Rows before it are kept.
    public mutating func setLayer<E: BinaryInteger, W: BinaryFloatingPoint>(
        layer: Int,
        firstToken: Int,
        rows: Int,
        experts: UnsafeBufferPointer<E>,
        weights w: UnsafeBufferPointer<W>
    ) throws {
        let k = shape.topK
        guard experts.count >= rows * k, w.count >= rows * k else {
            throw RoutingError.invalidRecord(
                RecordIssue(.topKMismatch, "layer \(layer) batch has \(experts.count) ids for \(rows) rows of top-\(k)")
            )
        }
        for r in 0..<rows {
            let lo = r * k
            do {
                try setCell(
                    token: firstToken + r,
                    layer: layer,
                    experts: experts[lo..<(lo + k)],
                    weights: w[lo..<(lo + k)]
                )
            } catch let RoutingError.invalidRecord(issue) {
                throw RoutingError.invalidRecord(RecordIssue(issue.kind, "row \(r) of layer \(layer): \(issue.detail)"))
            }
        }
    }

    /// Returns the pending tokens as a block and starts a new one. Domain indices carry over.
    public mutating func makeBlock() -> RoutingBlock {
        let block = RoutingBlock(
            unchecked: shape,
            tokenCount: domain.count,
            ids: shape.usesNarrowIDs ? .narrow(narrowIDs) : .wide(wideIDs),
            weights: weights,
            present: present,
            domain: domain,
            domains: domains,
            problemID: problemID,
            position: position,
            phase: phase,
            tokenID: tokenID,
            step: hasSteps ? step : nil
        )
        narrowIDs.removeAll(keepingCapacity: true)
        wideIDs.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        present.removeAll(keepingCapacity: true)
        domain.removeAll(keepingCapacity: true)
        problemID.removeAll(keepingCapacity: true)
        position.removeAll(keepingCapacity: true)
        phase.removeAll(keepingCapacity: true)
        tokenID.removeAll(keepingCapacity: true)
        step.removeAll(keepingCapacity: true)
        hasSteps = false
        return block
    }
}
