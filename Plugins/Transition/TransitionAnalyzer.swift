// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// TransitionAnalyzer: how a token's routing at layer l relates to its routing at layer l+1,
// measured without assuming that expert ids are shared across layers (same-id rates beside their
// chance values, affinity matrices, mutual information against a shuffled null, and out-of-sample
// next-layer prediction with problem-level folds).

public import AnalysisSupport
import CAnalysisKernels
public import MoERouting

/// The single-hop (layer l -> l+1) transition analyzer, registry name `"transition"`.
///
/// For every layer pair (l, l+1) and pooled over l it reports: the share of tokens whose top-1 id
/// is the same (`top1_same`), the mean top-k overlap fraction, the share with any overlap and with
/// identical sets, each beside its chance value; the affinity matrix
/// `P(j in S_{l+1} | i in S_l)`; the top-1 -> top-1 matrix; the mutual information between the
/// two top-1 choices in bits with a shuffled-token null (same margins) and the conditional
/// entropy; and the cross-validated accuracy of predicting the next layer's top-1 from this
/// layer's top-1, beside the most-frequent-expert and random baselines.
///
/// Pairs with a missing layer are skipped and counted. Memory is bounded by the shape:
/// per-fold `[L-1][E][E]` count tables (folds are assigned per problem by ``ProblemFolds``), the
/// affinity counts and one entry per distinct problem. For `k == 2` and `E <= 8` (Mixtral) the
/// hot loop instead counts ordered (top-1, second) id pairs of layer l against those of l+1 in one
/// `[F][L-1][E^2][E^2]` table (2.5 MB for Mixtral), one increment per layer pair, and expands it
/// into the same counts at `finish()`.
///
/// ```swift
/// let t = TransitionAnalyzer()
/// try t.begin(AnalysisContext(shape: .mixtral8x7B))
/// for block in blocks { try t.consume(block) }
/// let report = try t.finish()
/// print(report.json["pooled"]?["top1_same"] ?? .null)
/// ```
public final class TransitionAnalyzer: RoutingAnalyzer {
    public let name = "transition"
    /// Problem-level cross-validation folds.
    public let folds: ProblemFolds
    /// Replicates of the shuffled-token null of the mutual information.
    public let nullReplicates: Int

    private var context: AnalysisContext?
    private var layers = 0, experts = 0, topK = 0
    private var tokens = 0
    private var records = 0
    /// Overlap-size histogram per layer pair: `[L-1][k+1]`.
    private var overlapHistogram: [Int] = []
    /// Top-1 -> top-1 counts per fold: `[F][L-1][E][E]`.
    private var top1Counts = CompactCounts<UInt16>(count: 0)
    /// Per fold, tokens with top1_l = i and j in S_{l+1} other than its top-1: `[F][L-1][E][E]`.
    private var extraMembers = CompactCounts<UInt16>(count: 0)
    /// Every (i in S_l, j in S_{l+1}) combination: `[L-1][E][E]`, in 16-bit cells reserved chunk
    /// by chunk, so that one layer pair's table (32 KiB at E = 128) stays in the L1 cache while
    /// a chunk's k x k increments land in it.
    private var affinity = CompactCounts<UInt16>(count: 0)
    /// Fast path for `k == 2`, `E <= 8`: per fold and layer pair, counts of every ordered
    /// (top-1, second) id pair at layer l against the same at l+1: `[F][L-1][E*E][E*E]`. It is
    /// expanded into the histogram, top-1, extra-member and affinity counts at `finish()`.
    private var joint = CompactCounts<UInt32>(count: 0)
    private var useJoint = false
    private var problems = ProblemSet()
    private var foldBuffer: [Int] = []
    /// Scratch of the overlap count above 64 experts: per expert, the serial number of the last
    /// present cell that selected it.
    private var stamp: [Int] = []
    private var stampSerial = 0

    /// A transition analyzer with 5 problem folds and 20 null replicates.
    public convenience init() { self.init(folds: ProblemFolds.defaultCount, nullReplicates: 20) }

    /// A transition analyzer with `folds` problem folds and `nullReplicates` shuffled tables per
    /// layer pair for the mutual-information null.
    public init(folds: Int, nullReplicates: Int = 20) {
        self.folds = ProblemFolds(count: folds)
        self.nullReplicates = max(0, nullReplicates)
    }

    public func begin(_ context: AnalysisContext) throws {
        self.context = context
        let s = context.shape
        layers = s.layers
        experts = s.experts
        topK = s.topK
        let pairs = max(0, layers - 1)
        let ee = experts * experts
        tokens = 0
        records = 0
        overlapHistogram = [Int](repeating: 0, count: pairs * (topK + 1))
        top1Counts = CompactCounts(count: folds.count * pairs * ee)
        extraMembers = CompactCounts(count: folds.count * pairs * ee)
        affinity = CompactCounts(count: pairs * ee)
        useJoint = topK == 2 && experts >= 1 && experts <= 8
        joint = CompactCounts(count: useJoint ? folds.count * pairs * ee * ee : 0)
        problems = ProblemSet()
    }

    public func consume(_ block: RoutingBlock) throws {
        if context == nil { try begin(AnalysisContext(shape: block.shape)) }
        try context?.shape.requireMatch(block.shape, analyzer: name)
        tokens += block.tokenCount
        guard block.tokenCount > 0 else { return }
        problems.insert(from: block)
        folds.folds(for: block, into: &foldBuffer)
        if useJoint {
            joint.reserve(increments: block.tokenCount)
            switch block.ids {
            case .narrow(let ids): ids.withUnsafeBufferPointer { accumulatePairs($0, block) }
            case .wide(let ids): ids.withUnsafeBufferPointer { accumulatePairs($0, block) }
            }
            return
        }
        switch block.ids {
        case .narrow(let ids): ids.withUnsafeBufferPointer { accumulate($0, block) }
        case .wide(let ids): ids.withUnsafeBufferPointer { accumulate($0, block) }
        }
    }

    /// The `k == 2`, `E <= 8` path: one increment per layer pair into ``joint``, keyed by the
    /// ordered id pairs of both layers (expanded at `finish()`).
    private func accumulatePairs<ID: FixedWidthInteger & UnsignedInteger>(
        _ ids: UnsafeBufferPointer<ID>,
        _ block: RoutingBlock
    ) {
        let L = layers
        let E = experts
        let P = L - 1
        guard P > 0 else {
            records += block.recordCount
            return
        }
        let pp = E * E * E * E
        let T = block.tokenCount
        var presentCount = 0
        block.present.withUnsafeBufferPointer { present in
            foldBuffer.withUnsafeBufferPointer { foldOf in
                joint.withCounters { joint in
                    for t in 0..<T {
                        let tBase = t &* L
                        var prevPresent = present[tBase]
                        var prevCode = 0
                        if prevPresent {
                            presentCount &+= 1
                            prevCode = Int(ids[tBase &* 2]) &* E &+ Int(ids[tBase &* 2 &+ 1])
                        }
                        var row = joint + foldOf[t] &* P &* pp
                        for l in 1...P {
                            let cell = tBase &+ l
                            let curPresent = present[cell]
                            if curPresent {
                                presentCount &+= 1
                                let curCode = Int(ids[cell &* 2]) &* E &+ Int(ids[cell &* 2 &+ 1])
                                if prevPresent { row[prevCode &* E &* E &+ curCode] &+= 1 }
                                prevCode = curCode
                            }
                            prevPresent = curPresent
                            row += pp
                        }
                    }
                }
            }
        }
        records += presentCount
    }

    /// The histogram, top-1, extra-member and affinity counts, with ``joint`` expanded into them.
    /// Without the fast path the counters are handed over as they are, not copied: at Kimi-K2's
    /// shape the per-fold tables are 348 MB each as `[Int]`.
    private func expandedCounts() -> (
        hist: [Int], top1: CompactCounts<UInt16>, extra: CompactCounts<UInt16>, affinity: CompactCounts<UInt16>
    ) {
        var hist = overlapHistogram
        guard useJoint, joint.count > 0 else { return (hist, top1Counts, extraMembers, affinity) }
        var top1 = top1Counts.values
        var extra = extraMembers.values
        var aff = affinity.values
        let E = experts
        let P = max(0, layers - 1)
        let ee = E * E
        let histWidth = topK + 1
        for f in 0..<folds.count {
            for l in 0..<P {
                let base = (f * P + l) * ee * ee
                for prev in 0..<ee {
                    let a = prev / E
                    let b = prev % E
                    let prevMask: UInt64 = (1 << UInt64(a)) | (1 << UInt64(b))
                    let rowBase = ((f * P + l) * E + a) * E
                    for cur in 0..<ee {
                        let n = joint[base + prev * ee + cur]
                        if n == 0 { continue }
                        let c = cur / E
                        let d = cur % E
                        let curMask: UInt64 = (1 << UInt64(c)) | (1 << UInt64(d))
                        hist[l * histWidth + (prevMask & curMask).nonzeroBitCount] += n
                        top1[rowBase + c] += n
                        extra[rowBase + d] += n
                        let affBase = l * ee
                        aff[affBase + a * E + c] += n
                        aff[affBase + a * E + d] += n
                        aff[affBase + b * E + c] += n
                        aff[affBase + b * E + d] += n
                    }
                }
            }
        }
        return (hist, CompactCounts(values: top1), CompactCounts(values: extra), CompactCounts(values: aff))
    }

    /// The general loop (any k and E), in chunks of ``chunkTokens`` tokens taken layer pair by
    /// layer pair, so that one layer pair's `[E][E]` counters stay in cache while the chunk's
    /// tokens add to them (token by token, a top-8 token touches 64 affinity cells in each of the
    /// L-1 tables).
    private func accumulate<ID: FixedWidthInteger & UnsignedInteger>(
        _ ids: UnsafeBufferPointer<ID>,
        _ block: RoutingBlock
    ) {
        let L = layers
        let E = experts
        let k = topK
        let P = L - 1
        records += block.recordCount
        guard P > 0 else { return }
        let ee = E * E
        let useMask = E <= 64
        let histWidth = k + 1
        let T = block.tokenCount
        // Above 64 experts the overlap of two sets is counted with stamps: the previous cell's ids
        // get a fresh serial number in `stamp`, and the next cell's ids carrying it are shared
        // (2k steps, no clearing, no k x k comparison).
        if !useMask && stamp.count != E { stamp = [Int](repeating: -1, count: E) }
        var serial = stampSerial
        guard let idBase = ids.baseAddress else { return }
        block.present.withUnsafeBufferPointer { presentBuf in
            foldBuffer.withUnsafeBufferPointer { foldBuf in
                overlapHistogram.withUnsafeMutableBufferPointer { histBuf in
                    stamp.withUnsafeMutableBufferPointer { stampBuf in
                        let present = presentBuf.baseAddress!
                        let foldOf = foldBuf.baseAddress!
                        let histogram = histBuf.baseAddress!
                        let stamps = stampBuf.baseAddress
                        var t0 = 0
                        while t0 < T {
                            let t1 = Swift.min(T, t0 &+ Self.chunkTokens)
                            // A chunk adds at most one to any cell per token.
                            top1Counts.reserve(increments: t1 &- t0)
                            extraMembers.reserve(increments: t1 &- t0)
                            affinity.reserve(increments: t1 &- t0)
                            top1Counts.withCounters { top1 in
                                extraMembers.withCounters { extra in
                                    affinity.withCounters { aff in
                                        for l in 0..<P {
                                            let hist = histogram + l &* histWidth
                                            let affSlab = aff + l &* ee
                                            for t in t0..<t1 {
                                                let ahead = t &+ Self.prefetchDistance
                                                if ahead < t1 {
                                                    // The fold tables' row of a later token is mostly
                                                    // out of cache: ask for its cells now (a missing
                                                    // cell's ids are zeros, so the row is in range).
                                                    let c = ahead &* L &+ l
                                                    let p = idBase + c &* k
                                                    let row =
                                                        ((foldOf[ahead] &* P &+ l) &* E &+ Int(p[0])) &* E
                                                    moe_prefetch_for_write(top1 + (row &+ Int(p[k])))
                                                    for j in 1..<Swift.max(1, k) {
                                                        moe_prefetch_for_write(extra + (row &+ Int(p[k &+ j])))
                                                    }
                                                }
                                                let cell = t &* L &+ l
                                                guard present[cell], present[cell &+ 1] else { continue }
                                                let prev = idBase + cell &* k
                                                let cur = prev + k
                                                var ov = 0
                                                if useMask {
                                                    var prevMask: UInt64 = 0
                                                    var curMask: UInt64 = 0
                                                    for j in 0..<k {
                                                        prevMask |= 1 &<< UInt64(prev[j])
                                                        curMask |= 1 &<< UInt64(cur[j])
                                                    }
                                                    ov = (prevMask & curMask).nonzeroBitCount
                                                } else if let stamps {
                                                    serial &+= 1
                                                    for j in 0..<k { stamps[Int(prev[j])] = serial }
                                                    for j in 0..<k where stamps[Int(cur[j])] == serial { ov &+= 1 }
                                                }
                                                hist[ov] &+= 1
                                                let rowBase = ((foldOf[t] &* P &+ l) &* E &+ Int(prev[0])) &* E
                                                top1[rowBase &+ Int(cur[0])] &+= 1
                                                for j in 1..<Swift.max(1, k) { extra[rowBase &+ Int(cur[j])] &+= 1 }
                                                for i in 0..<k {
                                                    let row = affSlab + Int(prev[i]) &* E
                                                    for j in 0..<k { row[Int(cur[j])] &+= 1 }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            t0 = t1
                        }
                    }
                }
            }
        }
        stampSerial = serial
    }

    /// Tokens per chunk of the general loop. A layer pair's tables come back into cache once per
    /// chunk, so a longer chunk reuses them longer; its ids are read once per pair, in token
    /// order. At Qwen3-30B-A3B's shape on a 1 MiB-L2 AMD EPYC, 4096 was about 12% faster than 512
    /// (docs/benchmarks.md); the counts do not depend on it.
    static let chunkTokens = 4096

    /// Tokens ahead of the one being counted whose fold-table cells the general loop prefetches.
    static let prefetchDistance = 16

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        guard let theirs = o.context else { return }
        guard let mine = context else {
            try begin(theirs)
            try merge(o)
            return
        }
        guard mine.shape.layers == theirs.shape.layers, mine.shape.experts == theirs.shape.experts,
            mine.shape.topK == theirs.shape.topK, o.folds == folds
        else {
            throw RoutingError.incompatibleMerge(
                "transition: shards differ in shape (\(mine.shape) vs \(theirs.shape)) or folds (\(folds.count) vs \(o.folds.count))"
            )
        }
        tokens += o.tokens
        records += o.records
        for i in overlapHistogram.indices { overlapHistogram[i] += o.overlapHistogram[i] }
        top1Counts.add(o.top1Counts)
        extraMembers.add(o.extraMembers)
        affinity.add(o.affinity)
        joint.add(o.joint)
        problems.merge(o.problems)
    }

    public func finish() throws -> AnalyzerReport {
        guard let ctx = context else { return TransitionReportBuilder.emptyReport(name: name) }
        let counts = expandedCounts()
        return TransitionReportBuilder(
            shape: ctx.shape,
            seed: ctx.seed,
            folds: folds,
            nullReplicates: nullReplicates,
            tokens: tokens,
            records: records,
            problems: problems,
            overlapHistogram: counts.hist,
            top1Counts: counts.top1,
            extraMembers: counts.extra,
            affinity: counts.affinity
        ).build()
    }
}
