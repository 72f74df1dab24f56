// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// MultiHopKernel: the multihop analyzer's hot loop over one chunk of tokens, on the pointers of
// its storage, with its fast paths and the switch that turns them off for tests.

import CAnalysisKernels

/// The multihop counting kernel: a namespace for its inputs (``Dims``, ``Pointers``), its
/// optional fast paths (``Paths``) and the loop itself (``count(ids:present:folds:first:count:into:)``).
///
/// Every fast path counts exactly what the general loop counts; `MultiHopKernelPathTests`
/// checks it by running each trace with ``Paths/all`` and with ``Paths/general``.
///
/// ```swift
/// var p = storage.pointers
/// let tally = MultiHopKernel.count(ids: ids, present: present, folds: folds, first: 0, count: n, into: p)
/// ```
enum MultiHopKernel {
    /// The optional loops of the kernel. Each is taken only where its preconditions hold (shape,
    /// table sizes); removing one makes the kernel use the next more general loop.
    struct Paths: OptionSet, Sendable {
        let rawValue: Int
        /// Tokens present at every layer take a branch-free loop (needs ``packedTop2``), with
        /// their windows of 4 layers counted apart (L >= 4).
        static let completeTokens = Paths(rawValue: 1 << 0)
        /// Top-2 with small code spaces: pair words packed in 16-bit lanes, two target layers
        /// per pass.
        static let packedTop2 = Paths(rawValue: 1 << 1)
        /// Small code spaces (E^k <= 64): the four pair statistics from one table look-up.
        static let overlapTable = Paths(rawValue: 1 << 2)
        /// Top-2 without the table: overlap by four comparisons.
        static let top2Comparisons = Paths(rawValue: 1 << 3)
        /// E <= 64: overlap as the popcount of two set bitmasks.
        static let setMasks = Paths(rawValue: 1 << 4)
        /// Summarised pairs' rates from the C kernels' hardware population counts
        /// (``hardwareKernelLevel``), where the CPU has them.
        static let hardwarePopcount = Paths(rawValue: 1 << 5)
        /// Every fast path (the default).
        static let all: Paths = [
            .completeTokens, .packedTop2, .overlapTable, .top2Comparisons, .setMasks, .hardwarePopcount,
        ]
        /// None: the general loop only (nested set comparisons).
        static let general: Paths = []
    }

    /// Which loops one call took, for tests that must see each path exercised.
    struct Tally: Equatable {
        /// Present cells counted.
        var records = 0
        /// Tokens present at every layer.
        var complete = 0
        /// Tokens that took the complete-token loop.
        var completeLoop = 0
        /// Chunks whose pairs were counted by each pair loop.
        var packedTop2 = 0, overlapTable = 0, top2Comparisons = 0, setMasks = 0, nestedComparisons = 0
        /// Summarised pairs whose rates came from the C kernels (per pair and chunk).
        var hardwarePopcount = 0

        static func += (a: inout Tally, b: Tally) {
            a.records += b.records
            a.complete += b.complete
            a.completeLoop += b.completeLoop
            a.packedTop2 += b.packedTop2
            a.overlapTable += b.overlapTable
            a.top2Comparisons += b.top2Comparisons
            a.setMasks += b.setMasks
            a.nestedComparisons += b.nestedComparisons
            a.hardwarePopcount += b.hardwarePopcount
        }
    }

    /// Dimensions handed to the kernel.
    struct Dims {
        /// `chunk`: the distance between layer rows of the scratch.
        var L: Int, E: Int, k: Int, F: Int, P: Int, C: Int, chunk: Int
        /// Unordered top-k sets when the overlap lookup table is used, else 0.
        var codes: Int
        /// 64-bit words per set bitmask (`ceil(E / 64)`).
        var maskWords: Int
        /// Whether every layer pair has its count tables (slot = pair index); the packed and
        /// overlap-table loops need it.
        var allPairsDetailed: Bool
        /// Words per packed full path, ids per word and bits per id.
        var pathWords: Int, idsPerWord: Int, bitsPerID: Int
        /// Row length of the path-index buffer (0: no path contexts).
        var pathStride: Int
        /// The fast paths the kernel may take.
        var paths: Paths
    }

    /// Pointers into the analyzer's storage (``MultiHopStorage``): counters, constant tables and
    /// the layer-major chunk scratch.
    struct Pointers {
        var dims: Dims
        var pairStats: UnsafeMutablePointer<Int>
        var pairCounts: UnsafeMutablePointer<UInt32>
        var overlapTable: UnsafePointer<UInt64>?
        var setIndex: UnsafePointer<Int32>?
        var marginals: UnsafeMutablePointer<Int>
        var path: UnsafeMutablePointer<UInt32>
        var windowDense: UnsafeMutablePointer<Int>?
        var windowStarts: UnsafeMutablePointer<Int>
        var pairBase: UnsafePointer<Int>
        /// Per pair, the index of its count tables in `pairCounts` (-1: rates only, no tables).
        var pairSlot: UnsafePointer<Int32>
        /// Per pair without tables, tokens whose top-1 is the same id at both layers.
        var pairTop1Same: UnsafeMutablePointer<Int>
        var orderOffset: UnsafePointer<Int>
        var windowOffset: UnsafePointer<Int>
        /// The path-index buffer at the first free token (nil: no path contexts).
        var pathIndex: UnsafeMutablePointer<Int32>?
        /// `E^c` for c = 0 ... C.
        var powers: UnsafePointer<Int>
        /// Complete tokens' windows of 4 layers (nil: no complete-token loop).
        var windowComplete4: UnsafeMutablePointer<Int>?
        // Chunk scratch.
        var top1: UnsafeMutablePointer<Int32>
        var row: UnsafeMutablePointer<Int32>
        var code: UnsafeMutablePointer<Int32>
        var packedSource: UnsafeMutablePointer<Int64>
        var packedTarget: UnsafeMutablePointer<Int64>
        var sets: UnsafeMutablePointer<Int32>
        var masks: UnsafeMutablePointer<UInt64>
        var folds: UnsafeMutablePointer<Int>
        var complete: UnsafeMutablePointer<Bool>
        var keys: UnsafeMutablePointer<UInt64>
    }

    /// The hot loop over one chunk of tokens `first ..< first + count`. First, token by token
    /// and layer by layer: the layer-major scratch, the expert marginals, the packed full path,
    /// each layer's path-context counter index (from a rolling context code) and the dense
    /// windows of 2, 3 and 4 layers ending there. Then every layer pair, one at a time, so its
    /// tables stay in cache and its rates add up in registers.
    ///
    /// - Returns: present cells, complete tokens and the loops taken.
    /// - Complexity: O(count x L^2) for the pairs, O(count x L) for the rest.
    static func count<ID: FixedWidthInteger & UnsignedInteger>(
        ids: UnsafeBufferPointer<ID>,
        present: UnsafeBufferPointer<Bool>,
        folds: UnsafeBufferPointer<Int>,
        first: Int,
        count n: Int,
        into p: Pointers
    ) -> Tally {
        let dims = p.dims
        let L = dims.L
        let E = dims.E
        let k = dims.k
        let F = dims.F
        let CH = dims.chunk
        let codes = dims.codes
        let useMask = dims.paths.contains(.setMasks)
        let MW = dims.maskWords
        let rowWidth = 2 * E
        let foldTable = E * rowWidth
        let pairTable = F * foldTable
        var records = 0
        var completeCount = 0
        var tally = Tally()
        guard let idBase = ids.baseAddress, let presentBase = present.baseAddress, let foldBase = folds.baseAddress
        else {
            return tally
        }
        // The top-2 pair loop reads only the packed source and target words, whose 16-bit lanes
        // (counter offsets below 2^16) add up to both counter indices and the overlap index.
        let fastSix =
            dims.paths.contains(.packedTop2) && codes > 0 && k == 2 && p.overlapTable != nil && pairTable <= 0xFFFF
                && dims.allPairsDetailed
            ? p.setIndex : nil
        let C = dims.C
        let powC = p.powers[C]
        let pathIndex = p.pathIndex
        let pathStride = dims.pathStride
        let W = dims.pathWords
        let perWord = dims.idsPerWord
        let bits = UInt64(dims.bitsPerID)
        // Dense window tables (nil when a length is counted in a dictionary).
        let wo2 = p.windowOffset[0]
        let wo3 = p.windowOffset[1]
        let wo4 = p.windowOffset[2]
        let wd2 = wo2 >= 0 ? p.windowDense.map { $0 + wo2 } : nil
        let wd3 = wo3 >= 0 ? p.windowDense.map { $0 + wo3 } : nil
        let wd4 = wo4 >= 0 ? p.windowDense.map { $0 + wo4 } : nil
        let ws2 = p.windowStarts - 1
        let ws3 = p.windowStarts + (L - 2)
        let ws4 = p.windowStarts + (2 * L - 3)
        // Complete tokens (present at every layer) take a loop without missing-data branches or
        // window starts (added per chunk), their windows of 4 layers counted apart.
        let wc4 =
            dims.paths.contains(.completeTokens) && fastSix != nil && wd2 != nil && wd3 != nil && wd4 != nil
            ? p.windowComplete4 : nil
        var completeFast = 0
        // 1. Token by token.
        for i in 0..<n {
            let t = first &+ i
            let f = foldBase[t]
            p.folds[i] = f
            let tBase = t &* L
            var m = 0
            // Path context: hole-free run ending at the previous layer (at most C) and its code
            // (layer l-1 least significant).
            var run = 0
            var ctx = 0
            // Windows: hole-free run (at most 3) and the codes of the windows of 1, 2 and 3
            // layers ending at the previous layer (first layer most significant).
            var wrun = 0
            var c1 = 0
            var c2 = 0
            var c3 = 0
            let key = p.keys + i &* W
            for w in 0..<W { key[w] = 0 }
            var keyWord = key
            var keySlot = 0
            var keyShift: UInt64 = 0
            if let six = fastSix, let w4 = wc4, let w2 = wd2, let w3 = wd3 {
                var all: UInt8 = 1
                for l in 0..<L { all &= unsafeBitCast(presentBase[tBase &+ l], to: UInt8.self) }
                if all != 0 {
                    for l in 0..<L {
                        let idx = l &* CH &+ i
                        let cell = (tBase &+ l) &* k
                        let a = Int(idBase[cell])
                        let b = Int(idBase[cell &+ 1])
                        let u = Int(six[a &* E &+ b])
                        let rowOffset = Int64((f &* E &+ a) &* rowWidth)
                        p.packedSource[idx] = rowOffset | (rowOffset << 16) | (Int64(u &* codes) << 32)
                        p.packedTarget[idx] = Int64(a) | (Int64(E &+ b) << 16) | (Int64(u) << 32)
                        p.marginals[l &* E &+ a] &+= 1
                        keyWord[0] |= UInt64(a) &<< keyShift
                        if let pi = pathIndex, l > 0 {
                            pi[(l &- 1) &* pathStride &+ i] = Int32(
                                truncatingIfNeeded: p.orderOffset[run]
                                    &+ ((((l &- 1) &* F &+ f) &* p.powers[run] &+ ctx) &* E &+ a)
                            )
                        }
                        if run == C {
                            ctx = ctx &* E &+ a &- Int(idBase[(tBase &+ l &- C) &* k]) &* powC
                        } else {
                            ctx = ctx &* E &+ a
                            run &+= 1
                        }
                        if l >= 3 {
                            w4[c3 &* E &+ a] &+= 1
                        } else if l >= 1 {
                            w2[c1 &* E &+ a] &+= 1
                            if l == 2 { w3[c2 &* E &+ a] &+= 1 }
                        }
                        c3 = c2 &* E &+ a
                        c2 = c1 &* E &+ a
                        c1 = a
                        keySlot &+= 1
                        if keySlot == perWord {
                            keySlot = 0
                            keyShift = 0
                            keyWord += 1
                        } else {
                            keyShift &+= bits
                        }
                    }
                    records &+= L
                    p.complete[i] = true
                    completeCount &+= 1
                    completeFast &+= 1
                    continue
                }
            }
            for l in 0..<L {
                let idx = l &* CH &+ i
                if presentBase[tBase &+ l] {
                    let cell = (tBase &+ l) &* k
                    let a = Int(idBase[cell])
                    p.top1[idx] = Int32(truncatingIfNeeded: a)
                    if let six = fastSix {
                        let b = Int(idBase[cell &+ 1])
                        let u = Int(six[a &* E &+ b])
                        // Source side: table row offset, and the set's row in the overlap table.
                        // Lanes: row offset (twice), the set's row in the overlap table.
                        let rowOffset = Int64((f &* E &+ a) &* rowWidth)
                        p.packedSource[idx] = rowOffset | (rowOffset << 16) | (Int64(u &* codes) << 32)
                        // Target side, lanes: top-1, E + second member, set index.
                        p.packedTarget[idx] = Int64(a) | (Int64(E &+ b) << 16) | (Int64(u) << 32)
                    } else {
                        p.row[idx] = Int32(truncatingIfNeeded: (f &* E &+ a) &* rowWidth)
                        var code = 0
                        let mask = p.masks + idx &* MW
                        if useMask && MW <= 2 {
                            // One or two words (E <= 128) built in registers: setting bits in
                            // memory would chain every member through a store-to-load forward.
                            var low: UInt64 = 0
                            var high: UInt64 = 0
                            for q in 0..<k {
                                let e = idBase[cell &+ q]
                                p.sets[idx &* k &+ q] = Int32(truncatingIfNeeded: e)
                                let member: UInt64 = 1 &<< UInt64(e & 63)
                                let upper = UInt64(e &>> 6) & 1
                                low |= member & (upper &- 1)
                                high |= member & (0 &- upper)
                                code = code &* E &+ Int(e)
                            }
                            mask[0] = low
                            if MW == 2 { mask[1] = high }
                        } else {
                            if useMask { for w in 0..<MW { mask[w] = 0 } }
                            for q in 0..<k {
                                let e = idBase[cell &+ q]
                                p.sets[idx &* k &+ q] = Int32(truncatingIfNeeded: e)
                                if useMask { mask[Int(e) &>> 6] |= 1 &<< UInt64(e & 63) }
                                code = code &* E &+ Int(e)
                            }
                        }
                        if codes > 0, let six = p.setIndex { p.code[idx] = six[code] }
                    }
                    p.marginals[l &* E &+ a] &+= 1
                    m &+= 1
                    keyWord[0] |= UInt64(a) &<< keyShift
                    if let pi = pathIndex, l > 0 {
                        pi[(l &- 1) &* pathStride &+ i] = Int32(
                            truncatingIfNeeded: p.orderOffset[run]
                                &+ ((((l &- 1) &* F &+ f) &* p.powers[run] &+ ctx) &* E &+ a)
                        )
                    }
                    if run == C {
                        // Drop the oldest layer, l - C (present: the run covers it; C = 0 drops a).
                        ctx = ctx &* E &+ a &- Int(idBase[(tBase &+ l &- C) &* k]) &* powC
                    } else {
                        ctx = ctx &* E &+ a
                        run &+= 1
                    }
                    if wrun >= 1 {
                        let x2 = c1 &* E &+ a
                        ws2[l] &+= 1
                        if let wd = wd2 { wd[x2] &+= 1 }
                        if wrun >= 2 {
                            let x3 = c2 &* E &+ a
                            ws3[l] &+= 1
                            if let wd = wd3 { wd[x3] &+= 1 }
                            if wrun >= 3 {
                                ws4[l] &+= 1
                                if let wd = wd4 { wd[c3 &* E &+ a] &+= 1 }
                            }
                            c3 = x3
                        }
                        c2 = x2
                    }
                    c1 = a
                    wrun = min(wrun &+ 1, 3)
                } else {
                    p.top1[idx] = -1
                    p.row[idx] = -1
                    // An absent cell's mask is empty, so the summarised-pair loop counts no
                    // overlap for it without a branch.
                    if useMask {
                        let mask = p.masks + idx &* MW
                        for w in 0..<MW { mask[w] = 0 }
                    }
                    p.code[idx] = -1
                    p.packedSource[idx] = packedMissing
                    p.packedTarget[idx] = packedMissing
                    if let pi = pathIndex, l > 0 { pi[(l &- 1) &* pathStride &+ i] = -1 }
                    run = 0
                    ctx = 0
                    wrun = 0
                }
                keySlot &+= 1
                if keySlot == perWord {
                    keySlot = 0
                    keyShift = 0
                    keyWord += 1
                } else {
                    keyShift &+= bits
                }
            }
            records &+= m
            p.complete[i] = m == L
            if m == L { completeCount &+= 1 }
        }
        if completeFast > 0 {
            // Window starts of complete tokens: windows of w layers end at layers w-1 ..< L (none
            // when L < w).
            for l in stride(from: 1, to: L, by: 1) { ws2[l] &+= completeFast }
            for l in stride(from: 2, to: L, by: 1) { ws3[l] &+= completeFast }
            for l in stride(from: 3, to: L, by: 1) { ws4[l] &+= completeFast }
        }
        tally.records = records
        tally.complete = completeCount
        tally.completeLoop = completeFast
        // 2. Every pair (l, j), l < j, one at a time.
        if fastSix != nil, let ovt = p.overlapTable {
            // Top-2, small code spaces (Mixtral): packed words, two target layers per pass.
            tally.packedTop2 = 1
            for l in 0..<max(0, L - 1) {
                let source = p.packedSource + l &* CH
                let pb = p.pairBase[l]
                var j = l &+ 1
                while j < L {
                    let pair = pb &+ j
                    let table = p.pairCounts + pair &* pairTable
                    if j &+ 1 < L {
                        let (acc0, acc1) = pairsTop2Twice(
                            source: source,
                            target: p.packedTarget + j &* CH,
                            next: p.packedTarget + (j &+ 1) &* CH,
                            count: n,
                            table: table,
                            nextTable: table + pairTable,
                            overlap: ovt
                        )
                        addPackedStats(acc0, p.pairStats + pair &* 4)
                        addPackedStats(acc1, p.pairStats + (pair &+ 1) &* 4)
                        j &+= 2
                    } else {
                        let acc = pairsTop2(
                            source: source,
                            target: p.packedTarget + j &* CH,
                            count: n,
                            table: table,
                            overlap: ovt
                        )
                        addPackedStats(acc, p.pairStats + pair &* 4)
                        j &+= 1
                    }
                }
            }
            return tally
        }
        if codes > 0, dims.allPairsDetailed, dims.paths.contains(.overlapTable), let ovt = p.overlapTable {
            // Small code spaces (Mixtral: E^k = 64): the four pair statistics come from one
            // lookup, added up in 16-bit lanes (a chunk adds at most k * chunk per lane).
            tally.overlapTable = 1
            for l in 0..<max(0, L - 1) {
                let rowL = p.row + l &* CH
                let codeL = p.code + l &* CH
                let pb = p.pairBase[l]
                for j in (l + 1)..<L {
                    let pair = pb &+ j
                    let table = p.pairCounts + pair &* pairTable
                    let topJ = p.top1 + j &* CH
                    let codeJ = p.code + j &* CH
                    let setJ = p.sets + j &* CH &* k
                    var acc: UInt64 = 0
                    for i in 0..<n {
                        let r = Int(rowL[i])
                        let b = Int(topJ[i])
                        if (r | b) < 0 { continue }
                        acc &+= ovt[Int(codeL[i]) &* codes &+ Int(codeJ[i])]
                        let cell = table + r
                        cell[b] &+= 1
                        if k > 1 {
                            let extra = cell + E
                            let others = setJ + i &* k
                            for q in 1..<k { extra[Int(others[q])] &+= 1 }
                        }
                    }
                    addPackedStats(acc, p.pairStats + pair &* 4)
                }
            }
            return tally
        }
        let top2Comparisons = k == 2 && dims.paths.contains(.top2Comparisons)
        let kernelLevel = dims.paths.contains(.hardwarePopcount) ? hardwareKernelLevel : 0
        if top2Comparisons {
            tally.top2Comparisons = 1
        } else if useMask {
            tally.setMasks = 1
        } else {
            tally.nestedComparisons = 1
        }
        for l in 0..<max(0, L - 1) {
            let rowL = p.row + l &* CH
            let maskL = p.masks + l &* CH &* MW
            let setL = p.sets + l &* CH &* k
            let pb = p.pairBase[l]
            for j in (l + 1)..<L {
                let pair = pb &+ j
                let slot = Int(p.pairSlot[pair])
                // Pairs outside the detailed set count their rates only.
                let table: UnsafeMutablePointer<UInt32>? = slot >= 0 ? p.pairCounts + slot &* pairTable : nil
                let topJ = p.top1 + j &* CH
                let maskJ = p.masks + j &* CH &* MW
                let setJ = p.sets + j &* CH &* k
                var pairs = 0
                var overlap = 0
                var any = 0
                var same = 0
                var sameTop1 = 0
                if table == nil, useMask, !top2Comparisons {
                    // Summarised pair: rates only, from the top-1 rows and the set masks.
                    var c = moe_mask_pair_rates()
                    let rates: (pairs: Int, overlap: Int, any: Int, same: Int, sameTop1: Int)
                    if kernelLevel > 0,
                        moe_mask_pair_rates_compute(
                            p.top1 + l &* CH,
                            maskL,
                            topJ,
                            maskJ,
                            Int64(n),
                            Int64(MW),
                            Int64(k),
                            kernelLevel,
                            &c
                        ) != 0
                    {
                        rates = (Int(c.pairs), Int(c.overlap), Int(c.any), Int(c.same), Int(c.same_top1))
                        tally.hardwarePopcount &+= 1
                    } else {
                        rates = maskPairRates(
                            sourceTop: p.top1 + l &* CH,
                            sourceMasks: maskL,
                            targetTop: topJ,
                            targetMasks: maskJ,
                            count: n,
                            maskWords: MW,
                            topK: k
                        )
                    }
                    p.pairTop1Same[pair] &+= rates.sameTop1
                    let st = p.pairStats + pair &* 4
                    st[0] &+= rates.pairs
                    st[1] &+= rates.overlap
                    st[2] &+= rates.any
                    st[3] &+= rates.same
                    continue
                }
                if top2Comparisons {
                    // Top-2 (Mixtral): overlap by four comparisons, one extra member.
                    for i in 0..<n {
                        let r = Int(rowL[i])
                        let b = Int(topJ[i])
                        if (r | b) < 0 { continue }
                        let a0 = setL[2 &* i]
                        let a1 = setL[2 &* i &+ 1]
                        let b1 = Int(setJ[2 &* i &+ 1])
                        let b0 = Int32(truncatingIfNeeded: b)
                        let b1x = Int32(truncatingIfNeeded: b1)
                        let ov = bit(a0 == b0) &+ bit(a0 == b1x) &+ bit(a1 == b0) &+ bit(a1 == b1x)
                        pairs &+= 1
                        overlap &+= ov
                        any &+= bit(ov > 0)
                        same &+= bit(ov == 2)
                        if let table {
                            let cell = table + r
                            cell[b] &+= 1
                            cell[E &+ b1] &+= 1
                        } else {
                            sameTop1 &+= bit(a0 == b0)
                        }
                    }
                    p.pairTop1Same[pair] &+= sameTop1
                    let st = p.pairStats + pair &* 4
                    st[0] &+= pairs
                    st[1] &+= overlap
                    st[2] &+= any
                    st[3] &+= same
                    continue
                }
                for i in 0..<n {
                    if let table, i &+ Self.prefetchDistance < n {
                        // A kept pair's table (F x E x 2E counters, 655 KB at Qwen3-30B-A3B) is
                        // mostly out of cache: ask for the rows a later token will increment.
                        let ahead = i &+ Self.prefetchDistance
                        let r = Int(rowL[ahead])
                        let b = Int(topJ[ahead])
                        if (r | b) >= 0 {
                            let cell = table + r
                            moe_prefetch_for_write(cell + b)
                            let others = setJ + ahead &* k
                            for q in 1..<Swift.max(1, k) { moe_prefetch_for_write(cell + (E &+ Int(others[q]))) }
                        }
                    }
                    let r = Int(rowL[i])
                    let b = Int(topJ[i])
                    if (r | b) < 0 { continue }
                    var ov = 0
                    if useMask {
                        let x = maskL + i &* MW
                        let y = maskJ + i &* MW
                        for w in 0..<MW { ov &+= (x[w] & y[w]).nonzeroBitCount }
                    } else {
                        for x in 0..<k {
                            let e = setL[i &* k &+ x]
                            for y in 0..<k where setJ[i &* k &+ y] == e { ov &+= 1 }
                        }
                    }
                    pairs &+= 1
                    overlap &+= ov
                    any &+= bit(ov > 0)
                    same &+= bit(ov == k)
                    if let table {
                        let cell = table + r
                        cell[b] &+= 1
                        if k > 1 {
                            let extra = cell + E
                            let others = setJ + i &* k
                            for q in 1..<k { extra[Int(others[q])] &+= 1 }
                        }
                    } else {
                        sameTop1 &+= bit(Int(setL[i &* k]) == b)
                    }
                }
                p.pairTop1Same[pair] &+= sameTop1
                let st = p.pairStats + pair &* 4
                st[0] &+= pairs
                st[1] &+= overlap
                st[2] &+= any
                st[3] &+= same
            }
        }
        return tally
    }
}

// MARK: - Inner loops

/// The top-2 pair loop over one chunk for one layer pair (l, j): per token present at both, the
/// packed pair statistics from the overlap table, and the top-1 and second-member counters.
/// Kept out of line so its few pointers stay in registers.
///
/// Source and target words are packed in 16-bit lanes (source: row offset, row offset, overlap
/// row; target: top-1, E + second member, set index), so one add gives the top-1 counter, the
/// second-member counter and the overlap entry. A missing cell is ``packedMissing``, which makes
/// the sum at least `packedMissing` whatever it is added to. Unrolled by two.
@inline(never)
func pairsTop2(
    source: UnsafePointer<Int64>,
    target: UnsafePointer<Int64>,
    count n: Int,
    table: UnsafeMutablePointer<UInt32>,
    overlap: UnsafePointer<UInt64>
) -> UInt64 {
    var acc0: UInt64 = 0
    var acc1: UInt64 = 0
    var i = 0
    while i &+ 1 < n {
        let x = source[i] &+ target[i]
        let y = source[i &+ 1] &+ target[i &+ 1]
        if x < packedMissing { acc0 &+= countPacked(x, table, overlap) }
        if y < packedMissing { acc1 &+= countPacked(y, table, overlap) }
        i &+= 2
    }
    if i < n {
        let x = source[i] &+ target[i]
        if x < packedMissing { acc0 &+= countPacked(x, table, overlap) }
    }
    return acc0 &+ acc1
}

/// ``pairsTop2`` for two target layers at once (pairs (l, j) and (l, j + 1)), reading each
/// source word once: returns the packed statistics of each pair.
@inline(never)
func pairsTop2Twice(
    source: UnsafePointer<Int64>,
    target: UnsafePointer<Int64>,
    next: UnsafePointer<Int64>,
    count n: Int,
    table: UnsafeMutablePointer<UInt32>,
    nextTable: UnsafeMutablePointer<UInt32>,
    overlap: UnsafePointer<UInt64>
) -> (UInt64, UInt64) {
    var acc0: UInt64 = 0
    var acc1: UInt64 = 0
    for i in 0..<n {
        let src = source[i]
        let x = src &+ target[i]
        let y = src &+ next[i]
        if x < packedMissing { acc0 &+= countPacked(x, table, overlap) }
        if y < packedMissing { acc1 &+= countPacked(y, nextTable, overlap) }
    }
    return (acc0, acc1)
}

/// The rates of one summarised layer pair (l, j) over a chunk, from each token's top-1 at both
/// layers (-1: absent) and its set bitmasks (empty when absent): tokens present at both, the sum
/// of overlap sizes, tokens with any overlap, with equal sets (overlap k) and with the same
/// top-1. Branch-free, with the one- and two-word masks (E <= 128) taken apart.
@inline(never)
func maskPairRates(
    sourceTop: UnsafePointer<Int32>,
    sourceMasks: UnsafePointer<UInt64>,
    targetTop: UnsafePointer<Int32>,
    targetMasks: UnsafePointer<UInt64>,
    count n: Int,
    maskWords MW: Int,
    topK k: Int
) -> (pairs: Int, overlap: Int, any: Int, same: Int, sameTop1: Int) {
    var pairs = 0
    var overlap = 0
    var any = 0
    var same = 0
    var sameTop1 = 0
    @inline(__always) func add(_ a: Int32, _ b: Int32, _ ov: Int) {
        let both = bit((a | b) >= 0)
        pairs &+= both
        overlap &+= ov
        any &+= bit(ov > 0)
        same &+= bit(ov == k)
        sameTop1 &+= bit(a == b) & both
    }
    switch MW {
    case 1:
        for i in 0..<n {
            add(sourceTop[i], targetTop[i], (sourceMasks[i] & targetMasks[i]).nonzeroBitCount)
        }
    case 2:
        for i in 0..<n {
            let x = sourceMasks + 2 &* i
            let y = targetMasks + 2 &* i
            add(sourceTop[i], targetTop[i], bitCount(x[0] & y[0], x[1] & y[1]))
        }
    case 4:
        for i in 0..<n {
            let x = sourceMasks + 4 &* i
            let y = targetMasks + 4 &* i
            add(
                sourceTop[i],
                targetTop[i],
                bitCount(x[0] & y[0], x[1] & y[1]) &+ bitCount(x[2] & y[2], x[3] & y[3])
            )
        }
    default:
        for i in 0..<n {
            let x = sourceMasks + MW &* i
            let y = targetMasks + MW &* i
            var ov = 0
            for w in 0..<MW { ov &+= (x[w] & y[w]).nonzeroBitCount }
            add(sourceTop[i], targetTop[i], ov)
        }
    }
    return (pairs, overlap, any, same, sameTop1)
}

extension MultiHopKernel {
    /// Tokens ahead of the one being counted whose kept-pair table cells are prefetched.
    static let prefetchDistance = 16
}

/// The best instruction-set level of the C kernels on this machine
/// (`MOE_KERNEL_LEVEL_PORTABLE`, `_POPCNT`, `_AVX2` or `_AVX512_POPCOUNT`), detected once.
let hardwareKernelLevel: Int32 = moe_kernel_level_supported()

/// The set bits of two words together, by one shared SWAR reduction (the build targets baseline
/// x86-64, where `nonzeroBitCount` is a software sequence per word rather than `popcnt`).
@inline(__always)
func bitCount(_ x: UInt64, _ y: UInt64) -> Int {
    let m1: UInt64 = 0x5555_5555_5555_5555
    let m2: UInt64 = 0x3333_3333_3333_3333
    let m4: UInt64 = 0x0F0F_0F0F_0F0F_0F0F
    var a = x &- ((x >> 1) & m1)
    var b = y &- ((y >> 1) & m1)
    a = (a & m2) &+ ((a >> 2) & m2)
    b = (b & m2) &+ ((b >> 2) & m2)
    // Nibbles hold at most 4 + 4, bytes then at most 8 + 8, the total at most 128.
    var c = a &+ b
    c = (c & m4) &+ ((c >> 4) & m4)
    return Int((c &* 0x0101_0101_0101_0101) >> 56)
}

/// Adds the pair statistics packed in 16-bit lanes (overlap size, any overlap, equal sets,
/// pairs) to a pair's `[pairs, overlap, any, equal]` totals.
@inline(__always)
func addPackedStats(_ acc: UInt64, _ st: UnsafeMutablePointer<Int>) {
    st[0] &+= Int(acc >> 48)
    st[1] &+= Int(acc & 0xFFFF)
    st[2] &+= Int((acc >> 16) & 0xFFFF)
    st[3] &+= Int((acc >> 32) & 0xFFFF)
}

/// The packed word of a missing cell in the top-2 pair loop: above any sum of two present words,
/// and two of them add up to no more than 2^62.
let packedMissing: Int64 = 1 << 61

/// One pair of the top-2 loop from the sum of its packed source and target words: increments
/// the two counters and returns the packed overlap statistics.
@inline(__always)
func countPacked(_ x: Int64, _ table: UnsafeMutablePointer<UInt32>, _ overlap: UnsafePointer<UInt64>) -> UInt64 {
    let low = UInt32(truncatingIfNeeded: x)
    table[Int(low & 0xFFFF)] &+= 1
    table[Int(low >> 16)] &+= 1
    return overlap[Int(x >> 32)]
}

/// Counts the path contexts of one target layer over the path buffer: one increment per token
/// at its precomputed counter index (-1: no top-1 at the target). The index is that of the
/// token's longest hole-free context (order 0, no context, up to the effective order); the
/// tables of shorter orders are derived at the end by summing over extensions
/// (``PathPredictorEvaluation``). Layout of order c: `[L-1][F][E^c][E]` from `orderOffset[c]`.
@inline(never)
func countPathIndices(_ index: UnsafePointer<Int32>, count n: Int, path: UnsafeMutablePointer<UInt32>) {
    for i in 0..<n {
        let x = Int(index[i])
        if x >= 0 { path[x] &+= 1 }
    }
}

/// 1 for true, 0 for false, without a branch (a comparison's flag, zero-extended), so that hot
/// loops over random data do not pay for mispredicted branches.
@inline(__always) func bit(_ b: Bool) -> Int { Int(unsafeBitCast(b, to: UInt8.self)) }
