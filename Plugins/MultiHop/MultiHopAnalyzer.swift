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
/// Layer pairs kept **in full** (per-fold `[F][E][2E]` count tables: MI with its exact null,
/// d-hop predictor) are all pairs when `F x L(L-1)/2 x 2E^2 <= allPairsBudget` (Mixtral), else
/// the adjacent pairs (l, l+1) and the pairs asked for in `detailPairs`, asked-for ones first,
/// as many as fit `detailBudget` counters. Every other pair is **summarised**: exact same-id and
/// overlap rates (counted for every pair), and the mutual information with a permutation null
/// and the top-m affinity mass estimated from a bounded token sample (``TokenSample``: the
/// `sampleSize` tokens with the smallest hash of (domain, problem, position, phase); exact when
/// the stream has at most that many tokens).
///
/// Memory, bounded by the shape (never by the token count): `4 x F x D x 2E^2` bytes of pair
/// tables for D detailed pairs (at most `4 x detailBudget`), `32 x L(L-1)/2` bytes of pair rates,
/// the path-context tables (`4 x (L-1) x F x E^(c+1)` bytes for each order c kept; orders above
/// `pathTableBudget` counters are dropped), a fixed path-index buffer (`(L-1) x 65,552` Int32),
/// dense window tables (`E^w` counters while `E^w <= 2^20`) or dictionaries of at most
/// `windowCapacity` entries each, the full-path table (at most `fullPathCapacity` entries), the
/// token sample (at most `2 x sampleSize x (2 L k + 9)` bytes) and one entry per distinct problem.
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
    /// Layer pairs asked for in full (beside the adjacent ones).
    public let detailPairs: [LayerPair]
    /// Pair tables for all layer pairs are kept when they need at most this many counters.
    public let allPairsBudget: Int
    /// The most counters the detailed pairs' tables may use; detailed pairs beyond it are
    /// summarised (asked-for pairs are kept first, then adjacent pairs by layer).
    public let detailBudget: Int
    /// Tokens in the bounded sample behind the summarised figures.
    public let sampleSize: Int
    /// Distinct full-depth paths counted exactly (then estimated, see ``FullPathTable``).
    public let fullPathCapacity: Int
    /// Distinct windows counted exactly per window length too large for a dense table (then
    /// the top windows come from the sample).
    public let windowCapacity: Int
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
    /// Per window length, whether its dictionary exceeded ``windowCapacity`` and was dropped.
    private(set) var windowOverflowed: [Bool] = []
    /// The bounded token sample.
    private(set) var sample = TokenSample(capacity: 0, layers: 0, topK: 0)
    /// The layer pairs with full tables, in slot order, and each pair's slot (-1: summarised).
    private(set) var detailed: [LayerPair] = []
    private(set) var pairSlot: [Int32] = []
    /// Pairs that were asked for or adjacent but did not fit ``detailBudget``.
    private(set) var droppedDetail: [LayerPair] = []
    private var domainHashes: [UInt64] = []
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
    /// Per summarised pair, tokens with the same top-1 id at both layers: `[P]`.
    var pairTop1Same: UnsafeMutableBufferPointer<Int> { storage.pairTop1Same }
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
    /// Tokens per chunk of the layer-major kernel: small enough that a chunk's scratch rows
    /// (ids, masks, top-1 and rows of L layers) stay in a 2 MiB L2 cache at L = 48, k = 8 (2048
    /// did not: 4.7 against 5.4 M records/s at Qwen3-30B-A3B's shape, same counts).
    static let chunkTokens = 1024
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
    /// ```swift
    /// let m = MultiHopAnalyzer(detailPairs: [LayerPair(0, 5), LayerPair(3, 10)])
    /// ```
    ///
    /// - Parameters:
    ///   - maxOrder: the longest path context (previous layers) for the path predictor, >= 1.
    ///   - folds: problem-level folds for cross-validation.
    ///   - nullReplicates: shuffled tables per layer pair for the mutual-information null.
    ///   - pathTableBudget: the most counters one context order may use (default 2^26).
    ///   - detailPairs: layer pairs (l, j), l < j, to keep in full beside the adjacent ones;
    ///     `begin` throws when one is out of range for the model.
    ///   - allPairsBudget: keep every pair in full when that needs at most this many counters
    ///     (default 2^24, 64 MiB).
    ///   - detailBudget: the most counters of the detailed pairs' tables (default 2^27, 512 MiB).
    ///   - sampleSize: tokens sampled for the summarised pairs (default 4096).
    ///   - fullPathCapacity: distinct full paths counted exactly (default 2^16).
    ///   - windowCapacity: distinct sparse windows counted exactly per length (default 2^18).
    public init(
        maxOrder: Int = 4,
        folds: Int = ProblemFolds.defaultCount,
        nullReplicates: Int = 20,
        pathTableBudget: Int = 1 << 26,
        detailPairs: [LayerPair] = [],
        allPairsBudget: Int = 1 << 24,
        detailBudget: Int = 1 << 27,
        sampleSize: Int = 4096,
        fullPathCapacity: Int = 1 << 16,
        windowCapacity: Int = 1 << 18
    ) {
        self.maxOrder = max(1, maxOrder)
        self.folds = ProblemFolds(count: folds)
        self.nullReplicates = max(0, nullReplicates)
        self.pathTableBudget = max(0, pathTableBudget)
        var unique: [LayerPair] = []
        for p in detailPairs where !unique.contains(p) { unique.append(p) }
        self.detailPairs = unique
        self.allPairsBudget = max(0, allPairsBudget)
        self.detailBudget = max(0, detailBudget)
        self.sampleSize = max(0, sampleSize)
        self.fullPathCapacity = max(0, fullPathCapacity)
        self.windowCapacity = max(0, windowCapacity)
    }

    /// Whether every layer pair has its full tables (then the report is as it always was).
    public var allPairsDetailed: Bool { detailed.count == pairCount }

    /// Index of pair (l, j), l < j < L, among the L(L-1)/2 pairs.
    static func pairIndex(_ l: Int, _ j: Int, layers L: Int) -> Int { l * (2 * L - l - 1) / 2 + (j - l - 1) }

    /// Chooses the detailed pairs for a shape (see the type's documentation).
    static func chooseDetailed(
        layers L: Int,
        experts E: Int,
        folds F: Int,
        asked: [LayerPair],
        allPairsBudget: Int,
        detailBudget: Int
    ) -> (detailed: [LayerPair], dropped: [LayerPair]) {
        let perPair = product([F, E, 2 * E]) ?? Int.max
        let P = L * (L - 1) / 2
        if let all = product([P, perPair]), all <= allPairsBudget {
            var pairs: [LayerPair] = []
            for l in 0..<L { for j in (l + 1)..<max(l + 1, L) { pairs.append(LayerPair(l, j)) } }
            return (pairs, [])
        }
        var wanted = asked
        for l in 0..<max(0, L - 1) where !wanted.contains(LayerPair(l, l + 1)) { wanted.append(LayerPair(l, l + 1)) }
        let fit = perPair > 0 ? max(0, detailBudget / perPair) : wanted.count
        let kept = Array(wanted.prefix(fit))
        // Slots in pair order, so the tables are laid out like the full set's.
        return (kept.sorted(), Array(wanted.dropFirst(fit)))
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
        for pair in detailPairs where !(pair.earlier >= 0 && pair.earlier < pair.later && pair.later < L) {
            throw RoutingError.analyzerFailed(
                name: name,
                message:
                    "detail pair \(pair) is out of range for \(L) MoE layers: use l:j with 0 <= l < j <= \(L - 1)"
            )
        }
        let choice = Self.chooseDetailed(
            layers: L,
            experts: E,
            folds: F,
            asked: detailPairs,
            allPairsBudget: allPairsBudget,
            detailBudget: detailBudget
        )
        detailed = choice.detailed
        droppedDetail = choice.dropped
        pairSlot = [Int32](repeating: -1, count: P)
        for (slot, pair) in detailed.enumerated() {
            pairSlot[Self.pairIndex(pair.earlier, pair.later, layers: L)] = Int32(slot)
        }
        let pairCounters = detailed.count * F * E * 2 * E
        sample = TokenSample(capacity: sampleSize, layers: L, topK: k)
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
        windowOverflowed = []
        for w in Self.windowLengths {
            windowOverflowed.append(false)
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
        fullPaths = FullPathTable(wordsPerKey: (L + idsPerWord - 1) / idsPerWord, capacity: fullPathCapacity)
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
            maskWords: max(1, (E + 63) / 64),
            allPairsDetailed: detailed.count == P,
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
            pairSlot: pairSlot,
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
        domainHashes = block.domains.map(TokenSample.domainHash)
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
        if sample.capacity > 0 {
            block.present.withUnsafeBufferPointer { present in
                for t in 0..<T {
                    let d = Int(block.domain[t])
                    let h = TokenSample.tokenHash(
                        domain: d < domainHashes.count ? domainHashes[d] : 0,
                        problemID: block.problemID[t],
                        position: block.position[t],
                        phase: block.phase[t]
                    )
                    if sample.admits(h) {
                        sample.add(hash: h, fold: foldBuffer[t], token: t, ids: ids, present: present)
                    }
                }
            }
        }
        let sparseWindows = windowOffset.indices.filter {
            windowOffset[$0] < 0 && Self.windowLengths[$0] <= L && !windowOverflowed[$0]
        }
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
                            if ok, !windowOverflowed[wi] { windowSparse[wi][key, default: 0] += 1 }
                        }
                    }
                }
            }
            for wi in sparseWindows where windowSparse[wi].count > windowCapacity {
                windowSparse[wi] = [:]
                windowOverflowed[wi] = true
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
            mine.shape.topK == theirs.shape.topK, o.folds == folds, o.effectiveMaxOrder == effectiveMaxOrder,
            o.detailed == detailed, o.sampleSize == sampleSize, o.windowCapacity == windowCapacity,
            o.fullPathCapacity == fullPathCapacity
        else {
            throw RoutingError.incompatibleMerge(
                "multihop: shards differ in shape (\(mine.shape) vs \(theirs.shape)), folds, path order, detailed pairs or sample size"
            )
        }
        flushPaths()
        o.flushPaths()
        tokens += o.tokens
        records += o.records
        completeTokens += o.completeTokens
        for i in pairStats.indices { pairStats[i] += o.pairStats[i] }
        for i in pairTop1Same.indices { pairTop1Same[i] += o.pairTop1Same[i] }
        pairCounts.add(o.pairCounts)
        for i in layerTop1.indices { layerTop1[i] += o.layerTop1[i] }
        pathCounts.add(o.pathCounts)
        for i in windowDense.indices { windowDense[i] += o.windowDense[i] }
        for wi in windowSparse.indices {
            if o.windowOverflowed[wi] { windowOverflowed[wi] = true }
            if windowOverflowed[wi] {
                windowSparse[wi] = [:]
                continue
            }
            for (key, c) in o.windowSparse[wi] { windowSparse[wi][key, default: 0] += c }
            if windowSparse[wi].count > windowCapacity {
                windowSparse[wi] = [:]
                windowOverflowed[wi] = true
            }
        }
        sample.merge(o.sample)
        for i in windowStarts.indices { windowStarts[i] += o.windowStarts[i] }
        for i in windowComplete4.indices { windowComplete4[i] += o.windowComplete4[i] }
        fullPaths.merge(o.fullPaths)
        problems.merge(o.problems)
    }
}
