// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Turns an engine's per-step, per-layer routing batches into one RoutingBlock per request.

public import MoERouting

/// Counts of what an assembler saw and dropped.
public struct AssemblyStatistics: Sendable, Equatable {
    /// Engine steps begun.
    public var steps = 0
    /// Layer batches received.
    public var layerCalls = 0
    /// Rows attributed to a request and kept.
    public var rows = 0
    /// Rows whose request the run did not submit (dropped).
    public var unknownRequestRows = 0
    /// Rows at positions already routed for their request (a preempted request being recomputed):
    /// the first routing is kept, these are dropped.
    public var recomputedRows = 0
    /// Rows of a request that had already finished, or past its last fed-back position (dropped).
    public var rowsAfterFinish = 0
    /// Steps in which some MoE layer sent no batch.
    public var incompleteSteps = 0

    public init() {}
}

/// What one finished request's routing looks like.
public struct RequestRouting: Sendable {
    /// The request's index in the run.
    public var index: Int
    /// Its tokens, ordered by position: prompt tokens (prefill) then generated ones (decode).
    public var block: RoutingBlock
    /// Positions that should have been routed: prompt length + generated tokens - 1 (the last
    /// generated token is never fed back).
    public var expectedPositions: Int
    /// Positions, as closed ranges, missing from ``block`` or with a layer missing: served from
    /// the prefix cache, or cut off by an interruption.
    public var unroutedPositions: [ClosedRange<Int32>]

    /// Creates a request's routing.
    public init(index: Int, block: RoutingBlock, expectedPositions: Int, unroutedPositions: [ClosedRange<Int32>]) {
        self.index = index
        self.block = block
        self.expectedPositions = expectedPositions
        self.unroutedPositions = unroutedPositions
    }

    /// How many positions ``unroutedPositions`` covers.
    public var unroutedCount: Int { unroutedPositions.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } }
}

/// Assembles routing batches from an engine hook into per-request ``RoutingBlock``s.
///
/// The engine calls, per step: ``beginStep(step:runIndex:positions:tokenIDs:prefill:)`` with one value
/// per row, then ``addLayer(_:ids:weights:)`` once per MoE layer with `rows x k` ids and weights,
/// then ``endStep()``. Rows of one request are contiguous within a step and their positions
/// increase. Each layer's cells are checked and ordered into a token-major staging area for the
/// step; ``endStep()`` appends every request's rows to its columns in one go. When a request
/// finishes, ``finishRequest(_:promptLength:generatedCount:)`` returns its
/// block: every token it routed, ordered by position, each cell's experts ordered by weight.
/// Memory is bounded by the requests in flight.
///
/// ```swift
/// let assembler = RoutingAssembler(shape: .tinyMixtral, problems: problems)
/// try assembler.beginStep(step: 0, runIndex: ri, positions: pos, tokenIDs: tok, prefill: pf)
/// for layer in 0..<4 { try assembler.addLayer(layer, ids: ids[layer], weights: w[layer]) }
/// assembler.endStep()
/// let routing = try assembler.finishRequest(0, promptLength: 12, generatedCount: 8)
/// ```
public final class RoutingAssembler {
    /// The shape every batch must have.
    public let shape: ModelShape
    /// The run's requests, by index.
    public let problems: [Problem]
    /// The domain names, in order of first appearance among ``problems``.
    public let domains: [String]
    /// What was seen and dropped so far.
    public private(set) var statistics = AssemblyStatistics()

    /// A request in flight: its block's columns as they grow. A class, so that appending never
    /// copies the columns (a struct held in a dictionary would be copied on every write). Only
    /// the assembler touches it, one call at a time, so the columns skip the run-time
    /// exclusivity checks. Each step appends a request's rows once, as contiguous slices of the
    /// step's staging buffers, so the columns are touched once per request and step, not once
    /// per row and layer.
    private final class InFlight {
        let shape: ModelShape
        let domain: UInt16
        let problemID: Int64
        @exclusivity(unchecked) var ids: [UInt16] = []
        @exclusivity(unchecked) var weights: [Float] = []
        @exclusivity(unchecked) var present: [Bool] = []
        @exclusivity(unchecked) var position: [Int32] = []
        @exclusivity(unchecked) var phase: [RoutingPhase] = []
        @exclusivity(unchecked) var tokenID: [Int32] = []
        /// The engine step that routed each token.
        @exclusivity(unchecked) var step: [UInt32] = []
        /// The next position expected (one past the highest routed).
        var nextPosition: Int32 = 0

        init(shape: ModelShape, domain: UInt16, problemID: Int64) {
            self.shape = shape
            self.domain = domain
            self.problemID = problemID
        }

        var tokenCount: Int { position.count }

        /// The block of every token appended so far.
        func makeBlock(domains: [String]) -> RoutingBlock {
            let t = position.count
            return RoutingBlock(
                unchecked: shape,
                tokenCount: t,
                ids: shape.usesNarrowIDs ? .narrow(ids.map { UInt8(truncatingIfNeeded: $0) }) : .wide(ids),
                weights: weights,
                present: present,
                domain: Array(repeating: domain, count: t),
                domains: domains,
                problemID: Array(repeating: problemID, count: t),
                position: position,
                phase: phase,
                tokenID: tokenID,
                step: step
            )
        }
    }

    /// A request's consecutive rows in the open step, with its in-flight state (looked up once
    /// per step, not once per layer).
    private struct Run {
        var state: InFlight
        var firstRow: Int
        var count: Int
    }

    private let domainIndex: [UInt16]
    /// By request index: the requests with routing that have not finished (arrays, not hashed
    /// containers: looked up for every request of every step).
    private var inFlight: [InFlight?]
    private var inFlightCount = 0
    private var finished: [Bool]
    private var runs: [Run] = []
    private var stepRows = -1
    private var stepIndex: UInt32 = 0
    private var layerSeen: [Bool]
    /// The open step, token-major like a block: [row][layer][k] ids and weights (each cell
    /// checked and ordered by weight as its layer arrives), [row][layer] presence, and per row
    /// its position, phase and token id. Reused from step to step.
    private var stepIDs: [UInt16] = []
    private var stepWeights: [Float] = []
    private var stepPresent: [Bool] = []
    private var stepPosition: [Int32] = []
    private var stepPhase: [RoutingPhase] = []
    private var stepTokenID: [Int32] = []

    /// Creates an assembler for a run's requests.
    public init(shape: ModelShape, problems: [Problem]) {
        self.shape = shape
        self.problems = problems
        var names: [String] = []
        var index: [String: UInt16] = [:]
        var perProblem: [UInt16] = []
        for p in problems {
            if let i = index[p.domain] {
                perProblem.append(i)
            } else {
                let i = UInt16(truncatingIfNeeded: names.count)
                index[p.domain] = i
                names.append(p.domain)
                perProblem.append(i)
            }
        }
        self.domains = names
        self.domainIndex = perProblem
        self.layerSeen = Array(repeating: false, count: shape.layers)
        self.inFlight = Array(repeating: nil, count: problems.count)
        self.finished = Array(repeating: false, count: problems.count)
    }

    /// Whether a step is open (between ``beginStep(step:runIndex:positions:tokenIDs:prefill:)`` and ``endStep()``).
    public var stepIsOpen: Bool { stepRows >= 0 }

    /// Requests with routing that have not finished.
    public var requestsInFlight: Int { inFlightCount }

    // MARK: - Steps

    /// Starts a step: one value per row in each buffer.
    ///
    /// - Parameters:
    ///   - step: the engine step's index in the run (kept per token in the blocks' `step`
    ///     column, linking tokens to timing records); `nil` numbers steps 0, 1, 2... in call order.
    ///   - runIndex: the request of each row (its index in ``problems``; -1 for one the run did not submit).
    ///   - positions: each row's absolute position in its sequence.
    ///   - tokenIDs: each row's token id.
    ///   - prefill: 1 for a prompt token, 0 for a generated one.
    /// - Throws: ``CaptureError/inconsistentCapture(_:)`` when the buffers differ in length, a step
    ///   is already open, or a request's rows are not consecutive positions.
    public func beginStep(
        step: Int? = nil,
        runIndex: UnsafeBufferPointer<Int32>,
        positions: UnsafeBufferPointer<Int32>,
        tokenIDs: UnsafeBufferPointer<Int32>,
        prefill: UnsafeBufferPointer<UInt8>
    ) throws {
        let rows = runIndex.count
        guard positions.count == rows, tokenIDs.count == rows, prefill.count == rows else {
            throw CaptureError.inconsistentCapture(
                "step attribution columns differ in length: \(rows) requests, \(positions.count) positions, "
                    + "\(tokenIDs.count) token ids, \(prefill.count) phases"
            )
        }
        guard stepRows < 0 else {
            throw CaptureError.inconsistentCapture("a step began before the previous one ended")
        }
        if let step {
            guard let s = UInt32(exactly: step), s != .max else {
                throw CaptureError.inconsistentCapture("step index \(step) is outside 0..<\(UInt32.max)")
            }
            stepIndex = s
        } else {
            stepIndex = UInt32(truncatingIfNeeded: statistics.steps)
        }
        runs.removeAll(keepingCapacity: true)
        for l in 0..<layerSeen.count { layerSeen[l] = false }
        statistics.steps += 1
        let cells = rows * shape.layers
        stepIDs.removeAll(keepingCapacity: true)
        stepIDs.append(contentsOf: repeatElement(0, count: cells * shape.topK))
        stepWeights.removeAll(keepingCapacity: true)
        stepWeights.append(contentsOf: repeatElement(0, count: cells * shape.topK))
        stepPresent.removeAll(keepingCapacity: true)
        stepPresent.append(contentsOf: repeatElement(false, count: cells))
        stepPosition.removeAll(keepingCapacity: true)
        stepPosition.append(contentsOf: positions)
        stepTokenID.removeAll(keepingCapacity: true)
        stepTokenID.append(contentsOf: tokenIDs)
        stepPhase.removeAll(keepingCapacity: true)
        for r in 0..<rows { stepPhase.append(prefill[r] != 0 ? .prefill : .decode) }
        var r = 0
        while r < rows {
            let request = Int(runIndex[r])
            var end = r + 1
            while end < rows, Int(runIndex[end]) == request { end += 1 }
            try addRun(request: request, rows: r..<end, positions: positions, tokenIDs: tokenIDs, prefill: prefill)
            r = end
        }
        stepRows = rows
    }

    private func addRun(
        request: Int,
        rows: Range<Int>,
        positions: UnsafeBufferPointer<Int32>,
        tokenIDs: UnsafeBufferPointer<Int32>,
        prefill: UnsafeBufferPointer<UInt8>
    ) throws {
        guard request >= 0, request < problems.count else {
            statistics.unknownRequestRows += rows.count
            return
        }
        guard !finished[request] else {
            statistics.rowsAfterFinish += rows.count
            return
        }
        for r in rows.dropFirst() where positions[r] != positions[r - 1] &+ 1 {
            throw CaptureError.inconsistentCapture(
                "request \(request): rows \(r - 1) and \(r) of a step hold positions \(positions[r - 1]) and \(positions[r]), not consecutive"
            )
        }
        let state: InFlight
        if let existing = inFlight[request] {
            state = existing
        } else {
            state = InFlight(shape: shape, domain: domainIndex[request], problemID: problems[request].problemID)
            inFlight[request] = state
            inFlightCount += 1
        }
        // Positions routed before (a preempted request recomputed): keep the first routing.
        var first = rows.lowerBound
        while first < rows.upperBound, positions[first] < state.nextPosition { first += 1 }
        statistics.recomputedRows += first - rows.lowerBound
        guard first < rows.upperBound else { return }
        state.nextPosition = positions[rows.upperBound - 1] &+ 1
        runs.append(Run(state: state, firstRow: first, count: rows.upperBound - first))
        statistics.rows += rows.upperBound - first
    }

    /// Adds one MoE layer's batch for the open step: `rows x k` expert ids and weights, row-major.
    ///
    /// - Throws: ``CaptureError/inconsistentCapture(_:)`` with no open step, a layer outside the
    ///   shape, a layer sent twice in a step, or a batch of the wrong size; a bad cell (expert out
    ///   of range, duplicate expert, negative or NaN weight) as ``RoutingError``.
    public func addLayer(_ layer: Int, ids: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>) throws {
        guard stepRows >= 0 else {
            throw CaptureError.inconsistentCapture("layer \(layer) routing arrived outside a step")
        }
        guard layer >= 0, layer < shape.layers else {
            throw CaptureError.inconsistentCapture("layer \(layer) is outside the model's \(shape.layers) MoE layers")
        }
        guard !layerSeen[layer] else {
            throw CaptureError.inconsistentCapture("layer \(layer) was routed twice in one step")
        }
        let k = shape.topK
        guard ids.count == stepRows * k, weights.count == stepRows * k else {
            throw CaptureError.inconsistentCapture(
                "layer \(layer) sent \(ids.count) ids and \(weights.count) weights for \(stepRows) rows of top-\(k)"
            )
        }
        let L = shape.layers
        let E = shape.experts
        // Checked into the staging buffers first; a bad cell leaves the whole layer missing
        // (its cells zero, as for a layer that never came).
        try stepIDs.withUnsafeMutableBufferPointer { idp in
            try stepWeights.withUnsafeMutableBufferPointer { wp in
                do {
                    for run in runs {
                        for r in run.firstRow..<(run.firstRow + run.count) {
                            try Self.insertCell(
                                base: (r * L + layer) * k,
                                from: r * k,
                                k: k,
                                experts: E,
                                src: ids,
                                wsrc: weights,
                                ids: idp,
                                weights: wp,
                                row: r,
                                layer: layer
                            )
                        }
                    }
                } catch {
                    for run in runs {
                        for r in run.firstRow..<(run.firstRow + run.count) {
                            for j in 0..<k {
                                idp[(r * L + layer) * k + j] = 0
                                wp[(r * L + layer) * k + j] = 0
                            }
                        }
                    }
                    throw error
                }
            }
        }
        stepPresent.withUnsafeMutableBufferPointer { pp in
            for run in runs {
                for r in run.firstRow..<(run.firstRow + run.count) { pp[r * L + layer] = true }
            }
        }
        layerSeen[layer] = true
        statistics.layerCalls += 1
    }

    /// Writes one cell: each of the k (id, weight) pairs checked and inserted in weight order,
    /// highest first (ties keep their order).
    @inline(__always)
    private static func insertCell(
        base: Int,
        from: Int,
        k: Int,
        experts E: Int,
        src: UnsafeBufferPointer<Int32>,
        wsrc: UnsafeBufferPointer<Float>,
        ids: UnsafeMutableBufferPointer<UInt16>,
        weights: UnsafeMutableBufferPointer<Float>,
        row r: Int,
        layer: Int
    ) throws {
        for j in 0..<k {
            let e = Int(src[from + j])
            let w = wsrc[from + j]
            guard e >= 0, e < E else {
                throw RoutingError.invalidRecord(
                    RecordIssue(.expertOutOfRange, "row \(r) of layer \(layer): expert id \(e) is outside 0..<\(E) (E)")
                )
            }
            guard w.isFinite, w >= 0 else {
                throw RoutingError.invalidRecord(
                    RecordIssue(
                        .invalidWeight,
                        "row \(r) of layer \(layer): weight \(w) is not a finite, non-negative number"
                    )
                )
            }
            for q in 0..<j where Int(ids[base + q]) == e {
                throw RoutingError.invalidRecord(
                    RecordIssue(
                        .duplicateExpert,
                        "row \(r) of layer \(layer): expert id \(e) appears twice in one cell"
                    )
                )
            }
            var i = j
            while i > 0, weights[base + i - 1] < w {
                ids[base + i] = ids[base + i - 1]
                weights[base + i] = weights[base + i - 1]
                i -= 1
            }
            ids[base + i] = UInt16(e)
            weights[base + i] = w
        }
    }

    /// Closes the open step. A step in which a layer sent nothing is counted in
    /// ``AssemblyStatistics/incompleteSteps`` (its cells stay missing). No-op with no open step.
    public func endStep() {
        guard stepRows >= 0 else { return }
        if layerSeen.contains(false) { statistics.incompleteSteps += 1 }
        let L = shape.layers
        let k = shape.topK
        for run in runs {
            let state = run.state
            let rows = run.firstRow..<(run.firstRow + run.count)
            state.ids.append(contentsOf: stepIDs[(rows.lowerBound * L * k)..<(rows.upperBound * L * k)])
            state.weights.append(contentsOf: stepWeights[(rows.lowerBound * L * k)..<(rows.upperBound * L * k)])
            state.present.append(contentsOf: stepPresent[(rows.lowerBound * L)..<(rows.upperBound * L)])
            state.position.append(contentsOf: stepPosition[rows])
            state.phase.append(contentsOf: stepPhase[rows])
            state.tokenID.append(contentsOf: stepTokenID[rows])
            state.step.append(contentsOf: repeatElement(stepIndex, count: run.count))
        }
        stepRows = -1
        runs.removeAll(keepingCapacity: true)
    }

    // MARK: - Requests

    /// Finishes a request and returns its routing.
    ///
    /// - Parameters:
    ///   - index: the request.
    ///   - promptLength: its prompt's token count.
    ///   - generatedCount: how many tokens it generated; the last one is never fed back, so
    ///     positions `0..<promptLength + generatedCount - 1` should have been routed.
    /// - Returns: the block (tokens past the last fed-back position dropped and counted) and the
    ///   positions that were not routed.
    /// - Throws: ``CaptureError/inconsistentCapture(_:)`` for an index outside the run or one
    ///   already finished.
    public func finishRequest(_ index: Int, promptLength: Int, generatedCount: Int) throws -> RequestRouting {
        guard index >= 0, index < problems.count else {
            throw CaptureError.inconsistentCapture(
                "request \(index) finished but the run has \(problems.count) requests"
            )
        }
        guard !finished[index] else {
            throw CaptureError.inconsistentCapture("request \(index) finished twice")
        }
        finished[index] = true
        let expected = max(0, promptLength + generatedCount - 1)
        return complete(index, expected: expected)
    }

    /// Returns the routing of every request still in flight, as it stands (used when a run stops
    /// early: their last step may lack layers). They count as finished afterwards.
    public func drainUnfinished() -> [RequestRouting] {
        endStep()
        var out: [RequestRouting] = []
        for index in inFlight.indices where inFlight[index] != nil {
            finished[index] = true
            let next = Int(inFlight[index]?.nextPosition ?? 0)
            out.append(complete(index, expected: next))
        }
        return out
    }

    private func complete(_ index: Int, expected: Int) -> RequestRouting {
        let L = shape.layers
        var block: RoutingBlock
        if let state = inFlight[index] {
            inFlight[index] = nil
            inFlightCount -= 1
            block = state.makeBlock(domains: domains)
        } else {
            block = RoutingBlock.empty(shape: shape, domains: domains)
        }
        // Positions at or past `expected` (an extra step after the end) are dropped.
        if block.position.contains(where: { Int($0) >= expected }) {
            let keep = block.position.map { Int($0) < expected }
            statistics.rowsAfterFinish += keep.reduce(0) { $0 + ($1 ? 0 : 1) }
            block = Self.filter(block, keep: keep)
        }
        // Positions without full routing.
        var complete = [Bool](repeating: false, count: expected)
        for t in 0..<block.tokenCount {
            let p = Int(block.position[t])
            guard p >= 0, p < expected else { continue }
            var all = true
            for l in 0..<L where !block.present[t * L + l] {
                all = false
                break
            }
            complete[p] = all
        }
        var gaps: [ClosedRange<Int32>] = []
        var p = 0
        while p < expected {
            if complete[p] {
                p += 1
                continue
            }
            var q = p
            while q + 1 < expected, !complete[q + 1] { q += 1 }
            gaps.append(Int32(p)...Int32(q))
            p = q + 1
        }
        return RequestRouting(index: index, block: block, expectedPositions: expected, unroutedPositions: gaps)
    }

    /// A copy of `block` with only the tokens where `keep` is true.
    static func filter(_ block: RoutingBlock, keep: [Bool]) -> RoutingBlock {
        let shape = block.shape
        var b = RoutingBlockBuilder(shape: shape, domains: block.domains)
        let L = shape.layers
        let k = shape.topK
        for t in 0..<block.tokenCount where keep[t] {
            let nt: Int
            if let steps = block.step {
                nt = b.appendToken(
                    domainIndex: block.domain[t],
                    problemID: block.problemID[t],
                    position: block.position[t],
                    phase: block.phase[t],
                    tokenID: block.tokenID[t],
                    step: steps[t]
                )
            } else {
                nt = b.appendToken(
                    domainIndex: block.domain[t],
                    problemID: block.problemID[t],
                    position: block.position[t],
                    phase: block.phase[t],
                    tokenID: block.tokenID[t]
                )
            }
            for l in 0..<L where block.present[t * L + l] {
                let base = (t * L + l) * k
                // Cells of a valid block are valid: setCell cannot fail here.
                try? b.setCell(
                    token: nt,
                    layer: l,
                    experts: (0..<k).map { block.ids[base + $0] },
                    weights: block.weights[base..<(base + k)]
                )
            }
        }
        return b.makeBlock()
    }
}
