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

    private(set) var context: AnalysisContext?
    private(set) var layers = 0, experts = 0, topK = 0, pairCount = 0
    /// The context order actually used (``maxOrder`` lowered to fit ``pathTableBudget``).
    public private(set) var effectiveMaxOrder = 0
    private(set) var tokens = 0, records = 0, completeTokens = 0
    /// Number of distinct (unordered) top-k sets when the ordered codes (E^k) number at most
    /// ``codeTableLimit``, else 0.
    private var setCodes = 0
    /// Every counter table, the constant tables and the chunk scratch, allocated in ``begin(_:)``.
    private var storage = MultiHopStorage()
    /// Windows too large for a dense table, counted per window length in dictionaries.
    private(set) var windowSparse: [[UInt64: Int]] = []
    private(set) var fullPaths = FullPathTable(wordsPerKey: 1)
    private(set) var bitsPerID = 1, idsPerWord = 64
    private(set) var problems = ProblemSet()
    private var foldBuffer: [Int] = []
    /// Tokens the path buffer holds (0 when no path context is counted).
    private var pathCapacity = 0
    /// Distance between the path buffer's target-layer rows.
    private var pathStride = 0
    /// Tokens in the path buffer.
    private var pathFill = 0
    /// The kernel's fast paths in use: all of them, unless a test forces the general loop
    /// (set before ``begin(_:)``).
    var kernelPaths = MultiHopKernel.Paths.all
    /// The loops the kernel took so far (for tests that must see every path exercised).
    private(set) var kernelTally = MultiHopKernel.Tally()

    // MARK: - Counts (views of the storage)

    /// Per pair (l, j): pairs, sum of overlap sizes, pairs with any overlap, pairs with equal
    /// sets: `[P][4]`.
    var pairStats: UnsafeMutableBufferPointer<Int> { storage.pairStats }
    /// Per pair, fold and top-1 a of the earlier layer, 2E counters: top-1 of the later layer
    /// (first E) and its other set members (next E): `[P][F][E][2E]`, so one pair's tables are
    /// contiguous and stay in cache while a chunk of tokens is counted.
    var pairCounts: CounterBuffer { storage.pairCounts }
    /// Top-1 counts per layer, `[L][E]`.
    var layerTop1: UnsafeMutableBufferPointer<Int> { storage.layerTop1 }
    /// Path-context counts by each token's longest hole-free context order c, at
    /// `orderOffset[c]`, layout `[L-1][F][E^c][E]`.
    var pathCounts: CounterBuffer { storage.pathCounts }
    var orderOffset: UnsafeMutableBufferPointer<Int> { storage.orderOffset }
    var windowDense: UnsafeMutableBufferPointer<Int> { storage.windowDense }
    var windowOffset: UnsafeMutableBufferPointer<Int> { storage.windowOffset }
    var windowStarts: UnsafeMutableBufferPointer<Int> { storage.windowStarts }
    /// Windows of 4 layers ending at layer 3 or later of complete tokens, `[E^4]`, counted apart
    /// when the kernel's complete-token loop applies (else empty): the windows of 2 and 3 layers
    /// ending there are their marginals, added at ``finish()``.
    var windowComplete4: UnsafeMutableBufferPointer<Int> { storage.windowComplete4 }

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
    public init(
        maxOrder: Int = 4,
        folds: Int = ProblemFolds.defaultCount,
        nullReplicates: Int = 20,
        pathTableBudget: Int = 1 << 23
    ) {
        self.maxOrder = max(1, maxOrder)
        self.folds = ProblemFolds(count: folds)
        self.nullReplicates = max(0, nullReplicates)
        self.pathTableBudget = max(0, pathTableBudget)
    }

    static func product(_ xs: [Int]) -> Int? {
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
        let L = s.layers
        let E = s.experts
        let k = s.topK
        let F = folds.count
        let P = L * (L - 1) / 2
        guard let pairCounters = Self.product([F, P, E, 2 * E]), pairCounters <= Self.pairTableLimit else {
            throw RoutingError.analyzerFailed(
                name: name,
                message:
                    "shape \(s) needs \(F) x \(P) x \(E) x \(2 * E) pair counters, over the limit of \(Self.pairTableLimit); run the transition analyzer for this model"
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
        kernelTally = MultiHopKernel.Tally()
        let pairBase = (0..<L).map { l in l * (2 * L - l - 1) / 2 - (l + 1) }
        let codes = Self.product(Array(repeating: E, count: k)) ?? Int.max
        var setIndex: [Int32] = []
        var overlapTable: [UInt64] = []
        setCodes = 0
        if codes <= Self.codeTableLimit, !kernelPaths.isDisjoint(with: [.packedTop2, .overlapTable]) {
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
        }
        // Path predictor: order c has (L-1) targets x F folds x E^c contexts x E target experts.
        var offsets: [Int] = []
        var total = 0
        var order = 0
        while order <= min(maxOrder, L - 1) {
            // Counter indices are buffered as Int32, so all orders together stay below 2^31.
            guard
                let size = Self.product([
                    max(0, L - 1), Self.product(Array(repeating: E, count: order)) ?? Int.max, F, E,
                ]),
                order == 0 || size <= pathTableBudget, total + size <= Int(Int32.max)
            else { break }
            offsets.append(total)
            total += size
            order += 1
        }
        effectiveMaxOrder = max(0, offsets.count - 1)
        // Windows.
        var windowOffset: [Int] = []
        var windowCounters = 0
        windowSparse = []
        for w in Self.windowLengths {
            if let size = Self.product(Array(repeating: E, count: w)), size <= Self.denseWindowLimit {
                windowOffset.append(windowCounters)
                windowCounters += size
            } else {
                windowOffset.append(-1)
            }
            windowSparse.append([:])
        }
        let completeLoop =
            kernelPaths.isSuperset(of: [.completeTokens, .packedTop2]) && setCodes > 0 && k == 2
            && F * E * 2 * E <= 0xFFFF
            && L >= 4 && windowOffset.allSatisfy { $0 >= 0 }
        bitsPerID = max(1, Int.bitWidth - (E - 1).leadingZeroBitCount)
        idsPerWord = 64 / bitsPerID
        fullPaths = FullPathTable(wordsPerKey: (L + idsPerWord - 1) / idsPerWord)
        problems = ProblemSet()
        var pathPowers = [1]
        for _ in 0..<effectiveMaxOrder { pathPowers.append(pathPowers[pathPowers.count - 1] &* E) }
        pathCapacity = offsets.isEmpty || L < 2 ? 0 : Self.pathChunkTokens
        pathStride = pathCapacity == 0 ? 0 : Self.paddedStride(pathCapacity)
        pathFill = 0
        let dims = MultiHopKernel.Dims(
            L: L,
            E: E,
            k: k,
            F: F,
            P: P,
            C: effectiveMaxOrder,
            chunk: Self.paddedStride(Self.chunkTokens),
            codes: setCodes,
            pathWords: fullPaths.wordsPerKey,
            idsPerWord: idsPerWord,
            bitsPerID: bitsPerID,
            pathStride: pathStride,
            paths: kernelPaths
        )
        storage = MultiHopStorage(
            layout: MultiHopStorage.Layout(
                dims: dims,
                pairCounters: pairCounters,
                pathCounters: total,
                windowCounters: windowCounters,
                windowComplete4: completeLoop ? E * E * E * E : 0
            ),
            pairBase: pairBase,
            orderOffset: offsets,
            windowOffset: windowOffset,
            setIndex: setIndex,
            overlapTable: overlapTable,
            powers: pathPowers
        )
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

    /// Runs the kernel over the block chunk by chunk, then adds the full-depth paths of its
    /// complete tokens and the windows too large for dense tables.
    private func accumulate<ID: FixedWidthInteger & UnsignedInteger>(
        _ ids: UnsafeBufferPointer<ID>,
        _ block: RoutingBlock
    ) {
        let T = block.tokenCount
        let L = layers
        let sparseWindows = windowOffset.indices.filter { windowOffset[$0] < 0 && Self.windowLengths[$0] <= L }
        let bits = UInt64(bitsPerID)
        let base = storage.pointers
        let chunk = base.dims.chunk
        let wordCount = base.dims.pathWords
        var t0 = 0
        while t0 < T {
            let n = min(Self.chunkTokens, T - t0)
            // Path contexts are counted from a larger buffer, so each target layer's context
            // tables are swept by many tokens at once.
            if pathCapacity > 0, pathFill + n > pathCapacity { flushPaths() }
            var p = base
            p.pathIndex = base.pathIndex.map { $0 + pathFill }
            let counted = block.present.withUnsafeBufferPointer { present in
                foldBuffer.withUnsafeBufferPointer { foldOf in
                    MultiHopKernel.count(ids: ids, present: present, folds: foldOf, first: t0, count: n, into: p)
                }
            }
            kernelTally += counted
            records += counted.records
            completeTokens += counted.complete
            if pathStride > 0 { pathFill += n }
            // Full-depth paths of complete tokens (packed by the kernel), and windows too large
            // for dense arrays.
            if counted.complete > 0 { fullPaths.warm(p.keys, flags: p.complete, count: n) }
            if counted.complete > 0 || !sparseWindows.isEmpty {
                for i in 0..<n {
                    if p.complete[i] { fullPaths.add(p.keys + i &* wordCount) }
                    for wi in sparseWindows {
                        let w = Self.windowLengths[wi]
                        for start in 0...(L - w) {
                            var key: UInt64 = 0
                            var ok = true
                            for l in start..<(start + w) {
                                let x = p.top1[l &* chunk &+ i]
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
            t0 += n
        }
    }

    /// Counts the path contexts of the buffered tokens and empties the buffer.
    func flushPaths() {
        guard pathFill > 0, pathStride > 0, let index = storage.pathIndex.baseAddress else {
            pathFill = 0
            return
        }
        pathCounts.reserve(increments: pathFill)
        let n = pathFill
        let stride = pathStride
        let path = pathCounts.small.base
        for tl in 1..<max(1, layers) { countPathIndices(index + (tl - 1) * stride, count: n, path: path) }
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
}
