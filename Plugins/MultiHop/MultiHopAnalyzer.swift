// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// MultiHopAnalyzer: how a token's routing at layer l relates to its routing at every later layer
// l+d, and how predictable a layer is from the token's whole path so far.

public import AnalysisSupport
public import MoERouting

/// The multi-hop analyzer, registry name `"multihop"`.
///
/// For every hop distance d = 1..L-1 (pooled over the starting layer l, and per (l, l+d)) it
/// reports the same-id rates beside chance, the mutual information between top-1 choices
/// (with a shuffled-token null) and the cross-validated accuracy of predicting `top1_{l+d}` from
/// `top1_l`; the L x L mutual-information matrix (diagonal: the entropy of each layer's top-1);
/// a path predictor of `top1_{l+1}` from the path `top1_{l-c+1..l}` with back-off to shorter
/// contexts and then to the most frequent expert; and the most frequent top-1 paths over windows
/// of 2, 3 and 4 consecutive layers, with the number and entropy of distinct full-depth paths.
///
/// Memory: per-fold `[L(L-1)/2][E][E]` pair tables and dense path-context tables (bounded by
/// the shape; the context order is lowered when `E^order` tables would exceed
/// ``pathTableBudget`` counters), a fixed buffer of path-context counter indices
/// (`(L-1) x 65,552` Int32, 8 MiB for Mixtral), plus the full-depth path table, which grows with
/// the number of distinct paths (at most one per complete token).
///
/// ```swift
/// let m = MultiHopAnalyzer()                 // path contexts up to 4 previous layers
/// try m.begin(AnalysisContext(shape: .mixtral8x7B))
/// for block in blocks { try m.consume(block) }
/// let report = try m.finish()
/// ```
public final class MultiHopAnalyzer: RoutingAnalyzer {
    public let name = "multihop"
    /// Problem-level cross-validation folds.
    public let folds: ProblemFolds
    /// The longest path context (number of previous layers) the path predictor uses.
    public let maxOrder: Int
    /// Replicates of the shuffled-token null per layer pair.
    public let nullReplicates: Int
    /// The most counters one context order of the path predictor may use; higher orders are
    /// dropped beyond it.
    public let pathTableBudget: Int
    /// The most counters the per-fold pair tables may use; `begin` throws beyond it.
    public static let pairTableLimit = 1 << 28
    /// Window lengths of the path-frequency tables (fixed: the kernel counts exactly these).
    public static let windowLengths = [2, 3, 4]
    /// How many of the most frequent paths each window length reports.
    public static let topPathCount = 20
    /// Windows with `E^length` above this are counted in a dictionary instead of a dense array.
    static let denseWindowLimit = 1 << 20

    private var context: AnalysisContext?
    private var layers = 0, experts = 0, topK = 0, pairCount = 0
    /// The context order actually used (``maxOrder`` lowered to fit ``pathTableBudget``).
    public private(set) var effectiveMaxOrder = 0
    private var tokens = 0, records = 0, completeTokens = 0
    private var pairBase: [Int] = []
    /// Per pair (l, j): pairs, sum of overlap sizes, pairs with any overlap, pairs with equal
    /// sets: `[P][4]`.
    private var pairStats: [Int] = []
    /// Per pair, fold and top-1 a of the earlier layer, 2E counters: top-1 of the later layer
    /// (first E) and its other set members (next E): `[P][F][E][2E]`, so one pair's tables are
    /// contiguous and stay in cache while a chunk of tokens is counted.
    private var pairCounts = CompactCounts(count: 0)
    /// Number of distinct (unordered) top-k sets when the ordered codes (E^k) number at most
    /// ``codeTableLimit``, else 0.
    private var setCodes = 0
    /// Ordered set code (base E, top-1 first) -> index of its unordered set.
    private var setIndex: [Int32] = []
    /// For small code spaces: per (set at l, set at j), the packed increments of the pair
    /// statistics (overlap size, any overlap, equal sets, one pair), 16 bits each.
    private var overlapTable: [UInt64] = []
    private var layerTop1: [Int] = []
    /// Path-context counts by each token's longest hole-free context order c, at
    /// `orderOffset[c]`, layout `[L-1][F][E^c][E]`.
    private var pathCounts = CompactCounts(count: 0)
    private var orderOffset: [Int] = []
    private var windowDense: [Int] = []
    private var windowOffset: [Int] = []
    private var windowSparse: [[UInt64: Int]] = []
    private var windowStarts: [Int] = []
    /// Windows of 4 layers ending at layer 3 or later of complete tokens, `[E^4]`, counted apart
    /// when the kernel's complete-token loop applies (else empty): the windows of 2 and 3 layers
    /// ending there are their marginals, added at ``finish()``.
    private var windowComplete4: [Int] = []
    private var fullPaths = FullPathTable(wordsPerKey: 1)
    private var bitsPerID = 1, idsPerWord = 64
    private var problems = ProblemSet()
    private var foldBuffer: [Int] = []
    /// Layer-major scratch for one chunk of tokens.
    private var scratch = ChunkScratch()
    /// Path-context counter of each buffered token per target layer (its index into
    /// ``pathCounts``, -1 when the token has no top-1 there), computed in the kernel and counted
    /// later, one target layer at a time: `[L-1][pathStride]`.
    private var pathIndex: [Int32] = []
    /// Tokens the path buffer holds (0 when no path context is counted).
    private var pathCapacity = 0
    /// Distance between the buffer's target-layer rows.
    private var pathStride = 0
    /// `E^c` for c = 0 ... effective order.
    private var pathPowers: [Int] = [1]
    /// Tokens in the path buffer.
    private var pathFill = 0
    /// Tokens per path-context sweep: large, so that each target layer's context tables (up to
    /// a few hundred KiB) are swept by many more tokens than they have cache lines.
    static let pathChunkTokens = 65_536
    /// Tokens per chunk of the layer-major kernel.
    static let chunkTokens = 2048
    /// The row stride of a layer-major buffer of `tokens` tokens: padded by 16 elements so that
    /// the rows a token writes to (one per layer) fall into different cache sets instead of all
    /// aliasing one (a power-of-two stride maps every row to the same L1 set).
    static func paddedStride(_ tokens: Int) -> Int { tokens + 16 }
    /// The largest number of ordered top-k set codes (E^k) for the overlap lookup table.
    static let codeTableLimit = 64

    /// A multihop analyzer with path contexts up to 4 layers, 5 problem folds and 20 null
    /// replicates.
    public convenience init() { self.init(maxOrder: 4) }

    /// A multihop analyzer.
    ///
    /// - Parameters:
    ///   - maxOrder: the longest path context (previous layers) for the path predictor, >= 1.
    ///   - folds: problem-level folds for cross-validation.
    ///   - nullReplicates: shuffled tables per layer pair for the mutual-information null.
    ///   - pathTableBudget: the most counters one context order may use (default 2^23).
    public init(maxOrder: Int = 4, folds: Int = ProblemFolds.defaultCount, nullReplicates: Int = 20, pathTableBudget: Int = 1 << 23) {
        self.maxOrder = max(1, maxOrder)
        self.folds = ProblemFolds(count: folds)
        self.nullReplicates = max(0, nullReplicates)
        self.pathTableBudget = max(0, pathTableBudget)
    }

    private static func product(_ xs: [Int]) -> Int? {
        var p = 1
        for x in xs {
            let (r, o) = p.multipliedReportingOverflow(by: x)
            if o { return nil }
            p = r
        }
        return p
    }

    public func begin(_ context: AnalysisContext) throws {
        let s = context.shape
        let L = s.layers, E = s.experts, k = s.topK, F = folds.count
        let P = L * (L - 1) / 2
        guard let pairCounters = Self.product([F, P, E, 2 * E]), pairCounters <= Self.pairTableLimit else {
            throw RoutingError.analyzerFailed(
                name: name,
                message: "shape \(s) needs \(F) x \(P) x \(E) x \(2 * E) pair counters, over the limit of \(Self.pairTableLimit); run the transition analyzer for this model"
            )
        }
        self.context = context
        layers = L
        experts = E
        topK = k
        pairCount = P
        tokens = 0
        records = 0
        completeTokens = 0
        pairBase = (0..<L).map { l in l * (2 * L - l - 1) / 2 - (l + 1) }
        pairStats = [Int](repeating: 0, count: P * 4)
        pairCounts = CompactCounts(count: pairCounters)
        let codes = Self.product(Array(repeating: E, count: k)) ?? Int.max
        if codes <= Self.codeTableLimit {
            var unordered: [[Int]] = []
            var lookup: [[Int]: Int] = [:]
            setIndex = (0..<codes).map { code in
                var ids = [Int](repeating: 0, count: k)
                var x = code
                for q in stride(from: k - 1, through: 0, by: -1) {
                    ids[q] = x % E
                    x /= E
                }
                let key = ids.sorted()
                if let i = lookup[key] { return Int32(i) }
                lookup[key] = unordered.count
                unordered.append(key)
                return Int32(unordered.count - 1)
            }
            let u = unordered.count
            setCodes = u
            overlapTable = [UInt64](repeating: 0, count: u * u)
            for a in 0..<u {
                for b in 0..<u {
                    let ov = unordered[a].filter { unordered[b].contains($0) }.count
                    overlapTable[a * u + b] =
                        UInt64(ov) | (UInt64(ov > 0 ? 1 : 0) << 16) | (UInt64(ov == k ? 1 : 0) << 32) | (1 << 48)
                }
            }
        } else {
            setCodes = 0
            setIndex = []
            overlapTable = []
        }
        layerTop1 = [Int](repeating: 0, count: L * E)
        // Path predictor: order c has (L-1) targets x F folds x E^c contexts x E target experts.
        var offsets: [Int] = []
        var total = 0
        var order = 0
        while order <= min(maxOrder, L - 1) {
            // Counter indices are buffered as Int32, so all orders together stay below 2^31.
            guard let size = Self.product([max(0, L - 1), Self.product(Array(repeating: E, count: order)) ?? Int.max, F, E]),
                order == 0 || size <= pathTableBudget, total + size <= Int(Int32.max)
            else { break }
            offsets.append(total)
            total += size
            order += 1
        }
        orderOffset = offsets
        effectiveMaxOrder = max(0, offsets.count - 1)
        pathCounts = CompactCounts(count: total)
        // Windows.
        windowOffset = []
        windowDense = []
        windowSparse = []
        for w in Self.windowLengths {
            if let size = Self.product(Array(repeating: E, count: w)), size <= Self.denseWindowLimit {
                windowOffset.append(windowDense.count)
                windowDense.append(contentsOf: repeatElement(0, count: size))
            } else {
                windowOffset.append(-1)
            }
            windowSparse.append([:])
        }
        windowStarts = [Int](repeating: 0, count: Self.windowLengths.count * L)
        let completeLoop = setCodes > 0 && k == 2 && F * E * 2 * E <= 0xFFFF && L >= 4 && windowOffset.allSatisfy { $0 >= 0 }
        windowComplete4 = completeLoop ? [Int](repeating: 0, count: E * E * E * E) : []
        bitsPerID = max(1, Int.bitWidth - (E - 1).leadingZeroBitCount)
        idsPerWord = 64 / bitsPerID
        fullPaths = FullPathTable(wordsPerKey: (L + idsPerWord - 1) / idsPerWord)
        problems = ProblemSet()
        scratch = ChunkScratch(layers: L, topK: k, chunk: Self.chunkTokens, pathWords: fullPaths.wordsPerKey)
        pathPowers = [1]
        for _ in 0..<effectiveMaxOrder { pathPowers.append(pathPowers[pathPowers.count - 1] &* E) }
        pathCapacity = offsets.isEmpty || L < 2 ? 0 : Self.pathChunkTokens
        pathStride = pathCapacity == 0 ? 0 : Self.paddedStride(pathCapacity)
        pathIndex = [Int32](repeating: -1, count: max(0, L - 1) * pathStride)
        pathFill = 0
    }

    public func consume(_ block: RoutingBlock) throws {
        if context == nil { try begin(AnalysisContext(shape: block.shape)) }
        try context?.shape.requireMatch(block.shape, analyzer: name)
        tokens += block.tokenCount
        guard block.tokenCount > 0 else { return }
        problems.insert(from: block)
        folds.folds(for: block, into: &foldBuffer)
        pairCounts.reserve(increments: block.tokenCount)
        switch block.ids {
        case .narrow(let ids): ids.withUnsafeBufferPointer { accumulate($0, block) }
        case .wide(let ids): ids.withUnsafeBufferPointer { accumulate($0, block) }
        }
    }

    /// Layer-major copies of one chunk of tokens: top-1 ids (-1 when missing), the pair-table
    /// row offset `(fold * E + top1) * 2E` (-1 when missing), top-k sets and set bitmasks (the
    /// last three only for the generic pair loops), and each token's packed full path.
    struct ChunkScratch {
        /// Tokens per chunk.
        var chunk = 0
        /// Distance between layer rows (see ``paddedStride(_:)``).
        var stride = 0
        var top1: [Int32] = []
        var row: [Int32] = []
        var code: [Int32] = []
        var packedSource: [Int64] = []
        var packedTarget: [Int64] = []
        var sets: [Int32] = []
        var masks: [UInt64] = []
        var folds: [Int] = []
        var complete: [Bool] = []
        /// Per token, its top-1 path packed into `pathWords` words (meaningful for complete
        /// tokens only).
        var keys: [UInt64] = []

        init() {}

        init(layers: Int, topK: Int, chunk: Int, pathWords: Int) {
            self.chunk = chunk
            stride = MultiHopAnalyzer.paddedStride(chunk)
            top1 = [Int32](repeating: -1, count: layers * stride)
            row = [Int32](repeating: -1, count: layers * stride)
            code = [Int32](repeating: -1, count: layers * stride)
            packedSource = [Int64](repeating: packedMissing, count: layers * stride)
            packedTarget = [Int64](repeating: packedMissing, count: layers * stride)
            sets = [Int32](repeating: 0, count: layers * stride * topK)
            masks = [UInt64](repeating: 0, count: layers * stride)
            folds = [Int](repeating: 0, count: chunk)
            complete = [Bool](repeating: false, count: chunk)
            keys = [UInt64](repeating: 0, count: chunk * pathWords)
        }
    }

    /// Dimensions handed to the kernel.
    struct Dims {
        /// `chunk`: the distance between layer rows of the scratch.
        var L: Int, E: Int, k: Int, F: Int, P: Int, C: Int, chunk: Int
        /// Unordered top-k sets when the overlap lookup table is used, else 0.
        var codes: Int
        /// Words per packed full path, ids per word and bits per id.
        var pathWords: Int, idsPerWord: Int, bitsPerID: Int
        /// Row length of the path-index buffer (0: no path contexts).
        var pathStride: Int
    }

    /// Pointers into the analyzer's counters, handed to the kernel.
    struct Counters {
        var pairStats: UnsafeMutablePointer<Int>
        var pairCounts: UnsafeMutablePointer<UInt32>
        var overlapTable: UnsafePointer<UInt64>?
        var setIndex: UnsafePointer<Int32>?
        var marginals: UnsafeMutablePointer<Int>
        var path: UnsafeMutablePointer<UInt32>
        var windowDense: UnsafeMutablePointer<Int>?
        var windowStarts: UnsafeMutablePointer<Int>
        var pairBase: UnsafePointer<Int>
        var orderOffset: UnsafePointer<Int>
        var windowOffset: UnsafePointer<Int>
        /// The path-index buffer at the first free token (nil: no path contexts).
        var pathIndex: UnsafeMutablePointer<Int32>?
        /// `E^c` for c = 0 ... C.
        var powers: UnsafePointer<Int>
        /// Complete tokens' windows of 4 layers (nil: no complete-token loop).
        var windowComplete4: UnsafeMutablePointer<Int>?
    }

    /// Pointers into the chunk scratch.
    struct Scratch {
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

    private func accumulate<ID: FixedWidthInteger & UnsignedInteger>(_ ids: UnsafeBufferPointer<ID>, _ block: RoutingBlock) {
        let T = block.tokenCount
        let L = layers, k = topK
        let dims = Dims(
            L: L, E: experts, k: k, F: folds.count, P: pairCount, C: effectiveMaxOrder, chunk: scratch.stride, codes: setCodes,
            pathWords: fullPaths.wordsPerKey, idsPerWord: idsPerWord, bitsPerID: bitsPerID, pathStride: pathStride
        )
        let sparseWindows = windowOffset.indices.filter { windowOffset[$0] < 0 && Self.windowLengths[$0] <= L }
        let bits = UInt64(bitsPerID)
        var t0 = 0
        while t0 < T {
            let n = min(scratch.chunk, T - t0)
            // Path contexts are counted from a larger buffer, so each target layer's context
            // tables are swept by many tokens at once.
            if pathCapacity > 0, pathFill + n > pathCapacity { flushPaths() }
            let fill = pathFill
            var counted = (records: 0, complete: 0)
            block.present.withUnsafeBufferPointer { present in
                foldBuffer.withUnsafeBufferPointer { foldOf in
                    pairStats.withUnsafeMutableBufferPointer { stats in
                        layerTop1.withUnsafeMutableBufferPointer { marg in
                            windowDense.withUnsafeMutableBufferPointer { wdense in
                                windowStarts.withUnsafeMutableBufferPointer { wstarts in
                                    pairBase.withUnsafeBufferPointer { pbase in
                                        orderOffset.withUnsafeBufferPointer { ooff in
                                            windowOffset.withUnsafeBufferPointer { woff in
                                                pairCounts.withCounters { pc in
                                                  overlapTable.withUnsafeBufferPointer { ovt in
                                                  setIndex.withUnsafeBufferPointer { six in
                                                  pathPowers.withUnsafeBufferPointer { pow in
                                                  pathIndex.withUnsafeMutableBufferPointer { pidx in
                                                  windowComplete4.withUnsafeMutableBufferPointer { wc4 in
                                                    pathCounts.withCounters { path in
                                                        let counters = Counters(
                                                            pairStats: stats.baseAddress!, pairCounts: pc, overlapTable: ovt.baseAddress, setIndex: six.baseAddress,
                                                            marginals: marg.baseAddress!,
                                                            path: path, windowDense: wdense.baseAddress, windowStarts: wstarts.baseAddress!,
                                                            pairBase: pbase.baseAddress!, orderOffset: ooff.baseAddress ?? pbase.baseAddress!,
                                                            windowOffset: woff.baseAddress!,
                                                            pathIndex: pidx.isEmpty ? nil : pidx.baseAddress.map { $0 + fill },
                                                            powers: pow.baseAddress!,
                                                            // An empty array may still have a base address: only a
                                                            // table that exists turns on the complete-token loop.
                                                            windowComplete4: wc4.isEmpty ? nil : wc4.baseAddress
                                                        )
                                                        counted = scratch.withPointers { sc in
                                                            Self.kernel(
                                                                ids: ids, present: present, folds: foldOf, first: t0, count: n,
                                                                dims: dims, counters: counters, scratch: sc
                                                            )
                                                        }
                                                    }
                                                  }
                                                  }
                                                  }
                                                  }
                                                  }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            records += counted.records
            completeTokens += counted.complete
            if pathStride > 0 { pathFill += n }
            // Full-depth paths of complete tokens (packed by the kernel), and windows too large
            // for dense arrays.
            let chunk = scratch.stride
            let wordCount = fullPaths.wordsPerKey
            if counted.complete > 0 || !sparseWindows.isEmpty {
                scratch.withPointers { sc in
                    if counted.complete > 0 { fullPaths.warm(sc.keys, flags: sc.complete, count: n) }
                    for i in 0..<n {
                        if sc.complete[i] { fullPaths.add(sc.keys + i &* wordCount) }
                        for wi in sparseWindows {
                            let w = Self.windowLengths[wi]
                            for start in 0...(L - w) {
                                var key: UInt64 = 0
                                var ok = true
                                for l in start..<(start + w) {
                                    let x = sc.top1[l &* chunk &+ i]
                                    guard x >= 0 else {
                                        ok = false
                                        break
                                    }
                                    key = (key << bits) | UInt64(x)
                                }
                                if ok { windowSparse[wi][key, default: 0] += 1 }
                            }
                        }
                    }
                }
            }
            t0 += n
        }
    }

    /// The hot loop over one chunk of tokens `first ..< first + count`. First, token by token
    /// and layer by layer: the layer-major scratch, the expert marginals, the packed full path,
    /// each layer's path-context counter index (from a rolling context code) and the dense
    /// windows of 2, 3 and 4 layers ending there. Then every layer pair, one at a time, so its
    /// tables stay in cache and its rates add up in registers. Returns (present cells, complete
    /// tokens).
    static func kernel<ID: FixedWidthInteger & UnsignedInteger>(
        ids: UnsafeBufferPointer<ID>,
        present: UnsafeBufferPointer<Bool>,
        folds: UnsafeBufferPointer<Int>,
        first: Int,
        count n: Int,
        dims: Dims,
        counters c: Counters,
        scratch s: Scratch
    ) -> (records: Int, complete: Int) {
        let L = dims.L, E = dims.E, k = dims.k, F = dims.F, CH = dims.chunk
        let codes = dims.codes
        let useMask = E <= 64
        let rowWidth = 2 * E
        let foldTable = E * rowWidth
        let pairTable = F * foldTable
        var records = 0, completeCount = 0
        guard let idBase = ids.baseAddress, let presentBase = present.baseAddress, let foldBase = folds.baseAddress else {
            return (0, 0)
        }
        // The top-2 pair loop reads only the packed source and target words, whose 16-bit lanes
        // (counter offsets below 2^16) add up to both counter indices and the overlap index.
        let fastSix = codes > 0 && k == 2 && c.overlapTable != nil && pairTable <= 0xFFFF ? c.setIndex : nil
        let C = dims.C
        let powC = c.powers[C]
        let pathIndex = c.pathIndex
        let pathStride = dims.pathStride
        let W = dims.pathWords, perWord = dims.idsPerWord, bits = UInt64(dims.bitsPerID)
        // Dense window tables (nil when a length is counted in a dictionary).
        let wo2 = c.windowOffset[0], wo3 = c.windowOffset[1], wo4 = c.windowOffset[2]
        let wd2 = wo2 >= 0 ? c.windowDense.map { $0 + wo2 } : nil
        let wd3 = wo3 >= 0 ? c.windowDense.map { $0 + wo3 } : nil
        let wd4 = wo4 >= 0 ? c.windowDense.map { $0 + wo4 } : nil
        let ws2 = c.windowStarts - 1, ws3 = c.windowStarts + (L - 2), ws4 = c.windowStarts + (2 * L - 3)
        // Complete tokens (present at every layer) take a loop without missing-data branches or
        // window starts (added per chunk), their windows of 4 layers counted apart.
        let wc4 = fastSix != nil && wd2 != nil && wd3 != nil && wd4 != nil ? c.windowComplete4 : nil
        var completeFast = 0
        // 1. Token by token.
        for i in 0..<n {
            let t = first &+ i
            let f = foldBase[t]
            s.folds[i] = f
            let tBase = t &* L
            var m = 0
            // Path context: hole-free run ending at the previous layer (at most C) and its code
            // (layer l-1 least significant).
            var run = 0, ctx = 0
            // Windows: hole-free run (at most 3) and the codes of the windows of 1, 2 and 3
            // layers ending at the previous layer (first layer most significant).
            var wrun = 0, c1 = 0, c2 = 0, c3 = 0
            let key = s.keys + i &* W
            for w in 0..<W { key[w] = 0 }
            var keyWord = key, keySlot = 0
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
                        s.packedSource[idx] = rowOffset | (rowOffset << 16) | (Int64(u &* codes) << 32)
                        s.packedTarget[idx] = Int64(a) | (Int64(E &+ b) << 16) | (Int64(u) << 32)
                        c.marginals[l &* E &+ a] &+= 1
                        keyWord[0] |= UInt64(a) &<< keyShift
                        if let pi = pathIndex, l > 0 {
                            pi[(l &- 1) &* pathStride &+ i] = Int32(
                                truncatingIfNeeded: c.orderOffset[run] &+ ((((l &- 1) &* F &+ f) &* c.powers[run] &+ ctx) &* E &+ a)
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
                    s.complete[i] = true
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
                    s.top1[idx] = Int32(truncatingIfNeeded: a)
                    if let six = fastSix {
                        let b = Int(idBase[cell &+ 1])
                        let u = Int(six[a &* E &+ b])
                        // Source side: table row offset, and the set's row in the overlap table.
                        // Lanes: row offset (twice), the set's row in the overlap table.
                        let rowOffset = Int64((f &* E &+ a) &* rowWidth)
                        s.packedSource[idx] = rowOffset | (rowOffset << 16) | (Int64(u &* codes) << 32)
                        // Target side, lanes: top-1, E + second member, set index.
                        s.packedTarget[idx] = Int64(a) | (Int64(E &+ b) << 16) | (Int64(u) << 32)
                    } else {
                        s.row[idx] = Int32(truncatingIfNeeded: (f &* E &+ a) &* rowWidth)
                        var mask: UInt64 = 0
                        var code = 0
                        for q in 0..<k {
                            let e = idBase[cell &+ q]
                            s.sets[idx &* k &+ q] = Int32(truncatingIfNeeded: e)
                            if useMask { mask |= 1 &<< UInt64(e) }
                            code = code &* E &+ Int(e)
                        }
                        s.masks[idx] = mask
                        if codes > 0, let six = c.setIndex { s.code[idx] = six[code] }
                    }
                    c.marginals[l &* E &+ a] &+= 1
                    m &+= 1
                    keyWord[0] |= UInt64(a) &<< keyShift
                    if let pi = pathIndex, l > 0 {
                        pi[(l &- 1) &* pathStride &+ i] = Int32(
                            truncatingIfNeeded: c.orderOffset[run] &+ ((((l &- 1) &* F &+ f) &* c.powers[run] &+ ctx) &* E &+ a)
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
                    s.top1[idx] = -1
                    s.row[idx] = -1
                    s.code[idx] = -1
                    s.packedSource[idx] = packedMissing
                    s.packedTarget[idx] = packedMissing
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
            s.complete[i] = m == L
            if m == L { completeCount &+= 1 }
        }
        if completeFast > 0 {
            // Window starts of complete tokens: windows of w layers end at layers w-1 ..< L (none
            // when L < w).
            for l in stride(from: 1, to: L, by: 1) { ws2[l] &+= completeFast }
            for l in stride(from: 2, to: L, by: 1) { ws3[l] &+= completeFast }
            for l in stride(from: 3, to: L, by: 1) { ws4[l] &+= completeFast }
        }
        // 2. Every pair (l, j), l < j, one at a time.
        if fastSix != nil, let ovt = c.overlapTable {
            // Top-2, small code spaces (Mixtral): packed words, two target layers per pass.
            for l in 0..<max(0, L - 1) {
                let source = s.packedSource + l &* CH
                let pb = c.pairBase[l]
                var j = l &+ 1
                while j < L {
                    let p = pb &+ j
                    let table = c.pairCounts + p &* pairTable
                    if j &+ 1 < L {
                        let (acc0, acc1) = pairsTop2Twice(
                            source: source, target: s.packedTarget + j &* CH, next: s.packedTarget + (j &+ 1) &* CH, count: n,
                            table: table, nextTable: table + pairTable, overlap: ovt
                        )
                        addPackedStats(acc0, c.pairStats + p &* 4)
                        addPackedStats(acc1, c.pairStats + (p &+ 1) &* 4)
                        j &+= 2
                    } else {
                        let acc = pairsTop2(source: source, target: s.packedTarget + j &* CH, count: n, table: table, overlap: ovt)
                        addPackedStats(acc, c.pairStats + p &* 4)
                        j &+= 1
                    }
                }
            }
        } else if codes > 0, let ovt = c.overlapTable {
            // Small code spaces (Mixtral: E^k = 64): the four pair statistics come from one
            // lookup, added up in 16-bit lanes (a chunk adds at most k * chunk per lane).
            for l in 0..<max(0, L - 1) {
                let rowL = s.row + l &* CH
                let codeL = s.code + l &* CH
                let pb = c.pairBase[l]
                for j in (l + 1)..<L {
                    let p = pb &+ j
                    let table = c.pairCounts + p &* pairTable
                    let topJ = s.top1 + j &* CH
                    let codeJ = s.code + j &* CH
                    let setJ = s.sets + j &* CH &* k
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
                    addPackedStats(acc, c.pairStats + p &* 4)
                }
            }
        }
        for l in 0..<(codes > 0 ? 0 : max(0, L - 1)) {
            let rowL = s.row + l &* CH
            let maskL = s.masks + l &* CH
            let setL = s.sets + l &* CH &* k
            let pb = c.pairBase[l]
            for j in (l + 1)..<L {
                let p = pb &+ j
                let table = c.pairCounts + p &* pairTable
                let topJ = s.top1 + j &* CH
                let maskJ = s.masks + j &* CH
                let setJ = s.sets + j &* CH &* k
                var pairs = 0, overlap = 0, any = 0, same = 0
                if k == 2 {
                    // Top-2 (Mixtral): overlap by four comparisons, one extra member.
                    for i in 0..<n {
                        let r = Int(rowL[i])
                        let b = Int(topJ[i])
                        if (r | b) < 0 { continue }
                        let a0 = setL[2 &* i], a1 = setL[2 &* i &+ 1]
                        let b1 = Int(setJ[2 &* i &+ 1])
                        let b0 = Int32(truncatingIfNeeded: b), b1x = Int32(truncatingIfNeeded: b1)
                        let ov = bit(a0 == b0) &+ bit(a0 == b1x) &+ bit(a1 == b0) &+ bit(a1 == b1x)
                        pairs &+= 1
                        overlap &+= ov
                        any &+= bit(ov > 0)
                        same &+= bit(ov == 2)
                        let cell = table + r
                        cell[b] &+= 1
                        cell[E &+ b1] &+= 1
                    }
                    let st = c.pairStats + p &* 4
                    st[0] &+= pairs
                    st[1] &+= overlap
                    st[2] &+= any
                    st[3] &+= same
                    continue
                }
                for i in 0..<n {
                    let r = Int(rowL[i])
                    let b = Int(topJ[i])
                    if (r | b) < 0 { continue }
                    var ov = 0
                    if useMask {
                        ov = (maskL[i] & maskJ[i]).nonzeroBitCount
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
                    let cell = table + r
                    cell[b] &+= 1
                    if k > 1 {
                        let extra = cell + E
                        let others = setJ + i &* k
                        for q in 1..<k { extra[Int(others[q])] &+= 1 }
                    }
                }
                let st = c.pairStats + p &* 4
                st[0] &+= pairs
                st[1] &+= overlap
                st[2] &+= any
                st[3] &+= same
            }
        }
        return (records, completeCount)
    }

    /// Counts the path contexts of the buffered tokens and empties the buffer.
    private func flushPaths() {
        guard pathFill > 0, pathStride > 0 else {
            pathFill = 0
            return
        }
        pathCounts.reserve(increments: pathFill)
        let n = pathFill, stride = pathStride
        pathIndex.withUnsafeBufferPointer { index in
            guard let base = index.baseAddress else { return }
            pathCounts.withCounters { path in
                for tl in 1..<max(1, layers) { countPathIndices(base + (tl - 1) * stride, count: n, path: path) }
            }
        }
        pathFill = 0
    }

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        guard let theirs = o.context else { return }
        guard let mine = context else {
            try begin(theirs)
            try merge(o)
            return
        }
        guard mine.shape.layers == theirs.shape.layers, mine.shape.experts == theirs.shape.experts,
            mine.shape.topK == theirs.shape.topK, o.folds == folds, o.effectiveMaxOrder == effectiveMaxOrder
        else {
            throw RoutingError.incompatibleMerge(
                "multihop: shards differ in shape (\(mine.shape) vs \(theirs.shape)), folds or path order"
            )
        }
        flushPaths()
        o.flushPaths()
        tokens += o.tokens
        records += o.records
        completeTokens += o.completeTokens
        for i in pairStats.indices { pairStats[i] += o.pairStats[i] }
        pairCounts.add(o.pairCounts)
        for i in layerTop1.indices { layerTop1[i] += o.layerTop1[i] }
        pathCounts.add(o.pathCounts)
        for i in windowDense.indices { windowDense[i] += o.windowDense[i] }
        for wi in windowSparse.indices {
            for (key, c) in o.windowSparse[wi] { windowSparse[wi][key, default: 0] += c }
        }
        for i in windowStarts.indices { windowStarts[i] += o.windowStarts[i] }
        for i in windowComplete4.indices { windowComplete4[i] += o.windowComplete4[i] }
        fullPaths.merge(o.fullPaths)
        problems.merge(o.problems)
    }

    public func finish() throws -> AnalyzerReport {
        guard let ctx = context else { return MultiHopReportBuilder.emptyReport(name: name) }
        flushPaths()
        var windows: [MultiHopReportBuilder.WindowCounts] = []
        // Complete tokens' windows counted apart: 4 layers as they are, 3 and 2 layers (ending
        // at layer 3 or later) as their marginals over the first layers.
        var windowDense = windowDense
        if !windowComplete4.isEmpty {
            let e2 = experts * experts, e3 = e2 * experts
            for code in windowComplete4.indices where windowComplete4[code] > 0 {
                let x = windowComplete4[code]
                windowDense[windowOffset[2] + code] += x
                windowDense[windowOffset[1] + code % e3] += x
                windowDense[windowOffset[0] + code % e2] += x
            }
        }
        for (wi, w) in Self.windowLengths.enumerated() where w <= layers {
            var entries: [(code: UInt64, count: Int)] = []
            if windowOffset[wi] >= 0 {
                let size = Self.product(Array(repeating: experts, count: w)) ?? 0
                let off = windowOffset[wi]
                for code in 0..<size where windowDense[off + code] > 0 {
                    entries.append((UInt64(code), windowDense[off + code]))
                }
            } else {
                entries = windowSparse[wi].map { ($0.key, $0.value) }
            }
            windows.append(
                MultiHopReportBuilder.WindowCounts(
                    length: w, dense: windowOffset[wi] >= 0, entries: entries,
                    starts: Array(windowStarts[(wi * layers)..<((wi + 1) * layers)])
                )
            )
        }
        return MultiHopReportBuilder(
            shape: ctx.shape, seed: ctx.seed, folds: folds, maxOrder: maxOrder, effectiveMaxOrder: effectiveMaxOrder,
            nullReplicates: nullReplicates, tokens: tokens, records: records, completeTokens: completeTokens,
            problems: problems, pairStats: pairStats, pairCounts: pairCounts,
            layerTop1: layerTop1, pathCounts: pathCounts, orderOffset: orderOffset, windows: windows,
            bitsPerID: bitsPerID, distinctFullPaths: fullPaths.distinct, fullPathEntropy: fullPaths.entropyBits
        ).build()
    }
}

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
    var acc0: UInt64 = 0, acc1: UInt64 = 0
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
    var acc0: UInt64 = 0, acc1: UInt64 = 0
    for i in 0..<n {
        let src = source[i]
        let x = src &+ target[i]
        let y = src &+ next[i]
        if x < packedMissing { acc0 &+= countPacked(x, table, overlap) }
        if y < packedMissing { acc1 &+= countPacked(y, nextTable, overlap) }
    }
    return (acc0, acc1)
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

extension MultiHopAnalyzer.ChunkScratch {
    /// Calls `body` with pointers into every scratch array.
    mutating func withPointers<R>(_ body: (MultiHopAnalyzer.Scratch) -> R) -> R {
        top1.withUnsafeMutableBufferPointer { t in
            row.withUnsafeMutableBufferPointer { r in
              code.withUnsafeMutableBufferPointer { cd in
              packedSource.withUnsafeMutableBufferPointer { ps in
              packedTarget.withUnsafeMutableBufferPointer { pt in
                sets.withUnsafeMutableBufferPointer { st in
                    masks.withUnsafeMutableBufferPointer { m in
                        folds.withUnsafeMutableBufferPointer { f in
                            complete.withUnsafeMutableBufferPointer { c in
                                keys.withUnsafeMutableBufferPointer { kb in
                                    body(
                                        MultiHopAnalyzer.Scratch(
                                            top1: t.baseAddress!, row: r.baseAddress!, code: cd.baseAddress!,
                                            packedSource: ps.baseAddress!, packedTarget: pt.baseAddress!, sets: st.baseAddress!,
                                            masks: m.baseAddress!, folds: f.baseAddress!, complete: c.baseAddress!, keys: kb.baseAddress!
                                        )
                                    )
                                }
                            }
                        }
                    }
                }
              }
              }
              }
            }
        }
    }
}
