// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// MultiHopStorage: the raw buffers behind one multihop analyzer's counts and chunk scratch,
// allocated once in `begin` and freed in `deinit`, handed to the kernel as one struct of pointers.

import AnalysisSupport

/// The memory of one multihop run: every counter table, the constant look-up tables and the
/// layer-major chunk scratch, each one raw buffer of a size fixed by the shape.
///
/// The analyzer allocates a new storage in ``MultiHopAnalyzer/begin(_:)``; the kernel only ever
/// sees ``pointers`` (``MultiHopKernel/Pointers``), so no buffer is reached through nested
/// `withUnsafe…` closures. Buffers are freed when the storage is released.
///
/// ```swift
/// let storage = MultiHopStorage(layout: layout, tables: tables)
/// let p = storage.pointers            // valid while `storage` is alive
/// storage.pairStats[0]                // counters read as buffers
/// ```
final class MultiHopStorage {
    /// Sizes and constants of the run.
    let dims: MultiHopKernel.Dims

    // MARK: - Counters

    /// Per pair (l, j): pairs, sum of overlap sizes, pairs with any overlap, pairs with equal
    /// sets: `[P][4]`.
    let pairStats: UnsafeMutableBufferPointer<Int>
    /// Per pair, fold and top-1 a of the earlier layer, 2E counters: top-1 of the later layer
    /// (first E) and its other set members (next E): `[P][F][E][2E]`.
    let pairCounts: CounterBuffer
    /// Per pair without tables (summarised), tokens with the same top-1 id at both layers: `[P]`.
    let pairTop1Same: UnsafeMutableBufferPointer<Int>
    /// Top-1 counts per layer, `[L][E]`.
    let layerTop1: UnsafeMutableBufferPointer<Int>
    /// Path-context counts, order c at `orderOffset[c]`, layout `[L-1][F][E^c][E]`.
    let pathCounts: CounterBuffer
    /// Dense window tables, window length `windowLengths[w]` at `windowOffset[w]`.
    let windowDense: UnsafeMutableBufferPointer<Int>
    /// Windows started per (window length, last layer): `[3][L]`.
    let windowStarts: UnsafeMutableBufferPointer<Int>
    /// Complete tokens' windows of 4 layers ending at layer 3 or later, `[E^4]` (empty when the
    /// complete-token loop is off).
    let windowComplete4: UnsafeMutableBufferPointer<Int>
    /// Path-context counter index of each buffered token per target layer (-1: no top-1 there),
    /// `[L-1][pathStride]`.
    let pathIndex: UnsafeMutableBufferPointer<Int32>

    // MARK: - Constant tables

    /// Index of pair (l, j) is `pairBase[l] + j`.
    let pairBase: UnsafeMutableBufferPointer<Int>
    /// Per pair, the index of its tables in ``pairCounts`` (-1: rates only).
    let pairSlot: UnsafeMutableBufferPointer<Int32>
    /// Offset of each context order's table in ``pathCounts``.
    let orderOffset: UnsafeMutableBufferPointer<Int>
    /// Offset of each window length's dense table in ``windowDense`` (-1: counted sparsely).
    let windowOffset: UnsafeMutableBufferPointer<Int>
    /// Ordered set code (base E, top-1 first) -> index of its unordered set (empty: no table).
    let setIndex: UnsafeMutableBufferPointer<Int32>
    /// Per (set at l, set at j), the packed pair-statistic increments (empty: no table).
    let overlapTable: UnsafeMutableBufferPointer<UInt64>
    /// `E^c` for c = 0 ... effective order.
    let powers: UnsafeMutableBufferPointer<Int>

    // MARK: - Chunk scratch (layer-major, rows `dims.chunk` apart)

    let top1: UnsafeMutableBufferPointer<Int32>
    let row: UnsafeMutableBufferPointer<Int32>
    let code: UnsafeMutableBufferPointer<Int32>
    let packedSource: UnsafeMutableBufferPointer<Int64>
    let packedTarget: UnsafeMutableBufferPointer<Int64>
    let sets: UnsafeMutableBufferPointer<Int32>
    let masks: UnsafeMutableBufferPointer<UInt64>
    let folds: UnsafeMutableBufferPointer<Int>
    let complete: UnsafeMutableBufferPointer<Bool>
    /// Per token, its top-1 path packed into `dims.pathWords` words.
    let keys: UnsafeMutableBufferPointer<UInt64>

    /// Sizes of the tables that depend on choices made in `begin`.
    struct Layout {
        var dims: MultiHopKernel.Dims
        var pairCounters: Int
        var pathCounters: Int
        var windowCounters: Int
        var windowComplete4: Int
    }

    /// An empty storage, for an analyzer that has not begun.
    convenience init() {
        let dims = MultiHopKernel.Dims(
            L: 0,
            E: 0,
            k: 0,
            F: 0,
            P: 0,
            C: 0,
            chunk: 0,
            codes: 0,
            maskWords: 1,
            allPairsDetailed: true,
            pathWords: 0,
            idsPerWord: 0,
            bitsPerID: 0,
            pathStride: 0,
            paths: .general
        )
        self.init(
            layout: Layout(dims: dims, pairCounters: 0, pathCounters: 0, windowCounters: 0, windowComplete4: 0),
            pairBase: [],
            pairSlot: [],
            orderOffset: [],
            windowOffset: [],
            setIndex: [],
            overlapTable: [],
            powers: []
        )
    }

    /// Allocates every buffer, counters zeroed and the scratch's missing markers set,, and copies the
    /// constant tables.
    init(
        layout: Layout,
        pairBase: [Int],
        pairSlot: [Int32],
        orderOffset: [Int],
        windowOffset: [Int],
        setIndex: [Int32],
        overlapTable: [UInt64],
        powers: [Int]
    ) {
        let d = layout.dims
        dims = d
        let L = d.L
        let cells = d.L * d.chunk
        pairStats = .filled(d.P * 4, 0)
        pairTop1Same = .filled(d.P, 0)
        pairCounts = CounterBuffer(count: layout.pairCounters)
        layerTop1 = .filled(L * d.E, 0)
        pathCounts = CounterBuffer(count: layout.pathCounters)
        windowDense = .filled(layout.windowCounters, 0)
        windowStarts = .filled(MultiHopAnalyzer.windowLengths.count * L, 0)
        windowComplete4 = .filled(layout.windowComplete4, 0)
        pathIndex = .filled(max(0, L - 1) * d.pathStride, -1)
        self.pairBase = .copied(pairBase)
        self.pairSlot = .copied(pairSlot)
        self.orderOffset = .copied(orderOffset)
        self.windowOffset = .copied(windowOffset)
        self.setIndex = .copied(setIndex)
        self.overlapTable = .copied(overlapTable)
        self.powers = .copied(powers)
        top1 = .filled(cells, -1)
        row = .filled(cells, -1)
        code = .filled(cells, -1)
        packedSource = .filled(cells, packedMissing)
        packedTarget = .filled(cells, packedMissing)
        sets = .filled(cells * d.k, 0)
        masks = .filled(cells * max(1, d.maskWords), 0)
        folds = .filled(d.chunk, 0)
        complete = .filled(d.chunk, false)
        keys = .filled(d.chunk * d.pathWords, 0)
    }

    deinit {
        pairStats.freeRaw()
        pairTop1Same.freeRaw()
        layerTop1.freeRaw()
        windowDense.freeRaw()
        windowStarts.freeRaw()
        windowComplete4.freeRaw()
        pathIndex.freeRaw()
        pairBase.freeRaw()
        pairSlot.freeRaw()
        orderOffset.freeRaw()
        windowOffset.freeRaw()
        setIndex.freeRaw()
        overlapTable.freeRaw()
        powers.freeRaw()
        top1.freeRaw()
        row.freeRaw()
        code.freeRaw()
        packedSource.freeRaw()
        packedTarget.freeRaw()
        sets.freeRaw()
        masks.freeRaw()
        folds.freeRaw()
        complete.freeRaw()
        keys.freeRaw()
    }

    /// The kernel's view of every buffer, valid while this storage is alive. `pathIndex` points
    /// at the first token of the path buffer (the caller advances it to the first free one).
    var pointers: MultiHopKernel.Pointers {
        MultiHopKernel.Pointers(
            dims: dims,
            pairStats: pairStats.base,
            pairCounts: pairCounts.small.base,
            overlapTable: overlapTable.isEmpty ? nil : UnsafePointer(overlapTable.base),
            setIndex: setIndex.isEmpty ? nil : UnsafePointer(setIndex.base),
            marginals: layerTop1.base,
            path: pathCounts.small.base,
            windowDense: windowDense.isEmpty ? nil : windowDense.base,
            windowStarts: windowStarts.base,
            pairBase: UnsafePointer(pairBase.base),
            pairSlot: UnsafePointer(pairSlot.base),
            pairTop1Same: pairTop1Same.base,
            orderOffset: UnsafePointer(orderOffset.base),
            windowOffset: UnsafePointer(windowOffset.base),
            pathIndex: pathIndex.isEmpty ? nil : pathIndex.base,
            powers: UnsafePointer(powers.base),
            windowComplete4: windowComplete4.isEmpty ? nil : windowComplete4.base,
            top1: top1.base,
            row: row.base,
            code: code.base,
            packedSource: packedSource.base,
            packedTarget: packedTarget.base,
            sets: sets.base,
            masks: masks.base,
            folds: folds.base,
            complete: complete.base,
            keys: keys.base
        )
    }
}

/// Counters kept as 32-bit integers in one raw buffer (so the kernel gets a plain pointer),
/// spilling into 64-bit totals before any counter could overflow: the multihop storage's
/// counterpart of ``CompactCounts``, with the same contract.
///
/// ```swift
/// let c = CounterBuffer(count: 64)
/// c.reserve(increments: block.tokenCount)
/// c.small[5] &+= 1
/// c[5]   // 1
/// ```
final class CounterBuffer {
    /// Number of counters.
    let count: Int
    /// The 32-bit counters the kernel increments (within what was reserved).
    let small: UnsafeMutableBufferPointer<UInt32>
    /// The 64-bit totals, allocated at the first spill.
    private var spilled: UnsafeMutableBufferPointer<Int>?
    private var headroom = Int(UInt32.max)

    /// `count` zero counters.
    init(count: Int) {
        self.count = max(0, count)
        small = .filled(self.count, 0)
    }

    deinit {
        small.freeRaw()
        spilled?.freeRaw()
    }

    /// Makes room for up to `increments` more increments of any one counter.
    func reserve(increments: Int) {
        if increments > headroom { spill() }
        headroom -= max(0, increments)
    }

    /// Moves the 32-bit counters into the 64-bit totals.
    func spill() {
        let totals = spilled ?? .filled(count, 0)
        spilled = totals
        for i in 0..<count { totals[i] += Int(small[i]) }
        for i in 0..<count { small[i] = 0 }
        headroom = Int(UInt32.max)
    }

    /// The value of counter `i`.
    subscript(i: Int) -> Int {
        guard let spilled else { return Int(small[i]) }
        return spilled[i] + Int(small[i])
    }

    /// Adds another set of counters of the same size.
    func add(_ other: CounterBuffer) {
        precondition(other.count == count, "counter sizes differ")
        spill()
        guard let totals = spilled else { return }
        for i in 0..<count { totals[i] += other[i] }
    }
}
