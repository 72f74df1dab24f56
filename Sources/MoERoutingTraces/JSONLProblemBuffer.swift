// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Identifies a problem across a stream: its domain index and problem id.
struct JSONLProblemKey: Hashable {
    var domain: UInt16
    var problem: Int64
}

/// The records of the problem being read, held until the problem ends.
///
/// Trace files list a problem's records layer-major (all tokens of layer 0, then layer 1, ...)
/// or token-major; either way a token is complete only when the problem ends, so its cells are
/// gathered here, by token, then handed to the block builder in position order. Memory is
/// bounded by one problem; in interleaved mode the reader keeps one buffer per problem until the
/// end of the input.
struct JSONLProblemBuffer {
    /// Positions below this are looked up in a dense table; larger ones in a dictionary.
    static let denseLimit = 1 << 20

    let layers: Int
    let topK: Int

    /// Whether a problem is being gathered.
    var active = false
    /// The problem's key.
    var key = JSONLProblemKey(domain: 0, problem: 0)

    /// Per token: position, phase, vocabulary id, engine step (`UInt32.max` unknown) and the line
    /// of its first record.
    private(set) var positions: [Int32] = []
    private(set) var phases: [RoutingPhase] = []
    private(set) var tokenIDs: [Int32] = []
    private(set) var steps: [UInt32] = []
    private(set) var firstLines: [Int] = []
    /// Per (token, layer) cell: present, line of its record.
    private(set) var present: [Bool] = []
    private(set) var lines: [Int] = []
    /// Per (token, layer, slot): the record's experts and weights, in the record's order.
    private(set) var experts: [UInt16] = []
    private(set) var weights: [Float] = []

    /// Per layer: records seen so far (``TracePositions/byOrder`` positions) and the highest
    /// position stored (-1 none), to recognise positions that restart.
    private var layerRecords: [Int]
    private var layerMaxPosition: [Int32]

    private var dense: [Int32] = []
    private var sparse: [Int32: Int32] = [:]
    private var ascending = true

    init(layers: Int, topK: Int) {
        self.layers = layers
        self.topK = topK
        layerRecords = Array(repeating: 0, count: layers)
        layerMaxPosition = Array(repeating: -1, count: layers)
    }

    /// ``TracePositions/byOrder``: the position of the next record of `layer` (its index among
    /// the layer's records of this problem), counting it.
    @inline(__always)
    mutating func nextOrderPosition(layer: Int) -> Int {
        let p = layerRecords[layer]
        layerRecords[layer] = p + 1
        return p
    }

    /// Whether a record of `layer` at `position` restarts the layer's positions: below the
    /// highest already stored.
    func restarts(layer: Int, position: Int) -> Bool { position < Int(layerMaxPosition[layer]) }

    /// Number of tokens gathered.
    var tokenCount: Int { positions.count }

    /// The token at a position, if it has a record yet.
    @inline(__always)
    func token(at position: Int) -> Int? {
        if position < dense.count {
            let v = dense[position]
            return v == 0 ? nil : Int(v) - 1
        }
        if position < Self.denseLimit { return nil }
        return sparse[Int32(position)].map { Int($0) - 1 }
    }

    /// Adds a token with no cells and returns its index.
    mutating func addToken(position: Int, phase: RoutingPhase, tokenID: Int32, step: UInt32, line: Int) -> Int {
        let t = positions.count
        if t > 0, Int32(position) < positions[t - 1] { ascending = false }
        positions.append(Int32(position))
        phases.append(phase)
        tokenIDs.append(tokenID)
        steps.append(step)
        firstLines.append(line)
        present.append(contentsOf: repeatElement(false, count: layers))
        lines.append(contentsOf: repeatElement(0, count: layers))
        experts.append(contentsOf: repeatElement(0, count: layers * topK))
        weights.append(contentsOf: repeatElement(0, count: layers * topK))
        if position < Self.denseLimit {
            if position >= dense.count {
                dense.append(contentsOf: repeatElement(0, count: position + 1 - dense.count))
            }
            dense[position] = Int32(t + 1)
        } else {
            sparse[Int32(position)] = Int32(t + 1)
        }
        return t
    }

    /// Stores one cell from the scratch buffers (already checked against the shape).
    @inline(__always)
    mutating func setCell(token t: Int, layer: Int, line: Int, scratch: JSONLScratch) {
        let cell = t * layers + layer
        if positions[t] > layerMaxPosition[layer] { layerMaxPosition[layer] = positions[t] }
        present[cell] = true
        lines[cell] = line
        let base = cell * topK
        let ids = scratch.experts
        let w = scratch.weights
        for j in 0..<topK {
            experts[base + j] = UInt16(truncatingIfNeeded: ids[j])
            weights[base + j] = w[j]
        }
    }

    /// Token indices in position order.
    func order() -> [Int] {
        var order = Array(0..<positions.count)
        if !ascending { order.sort { positions[$0] < positions[$1] } }
        return order
    }

    /// Forgets the problem, keeping capacity.
    mutating func reset() {
        for p in positions where Int(p) < Self.denseLimit { dense[Int(p)] = 0 }
        sparse.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        phases.removeAll(keepingCapacity: true)
        tokenIDs.removeAll(keepingCapacity: true)
        steps.removeAll(keepingCapacity: true)
        firstLines.removeAll(keepingCapacity: true)
        present.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
        experts.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        for l in 0..<layers {
            layerRecords[l] = 0
            layerMaxPosition[l] = -1
        }
        ascending = true
        active = false
    }
}
