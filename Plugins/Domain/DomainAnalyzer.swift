// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainAnalyzer: compares how routing differs between domains (datasets): per-layer expert
// usage and layer-to-layer affinity divergences, their significance by permuting domain labels
// across whole problems and bootstrapping problems, and how well a next-layer predictor fitted on
// one domain transfers to another.

import AnalysisSupport
public import MoERouting

/// Compares routing between domains: per-layer expert usage and affinity divergences, with
/// problem-level permutation p-values and bootstrap intervals, and next-layer predictor transfer.
///
/// Domains come from each block's ``RoutingBlock/domains``; a problem is a (domain name, problem
/// id) pair. Domains are reported in sorted name order, and the headline comparison (the
/// top-level `layers` of the JSON) is between the first two of them, so input order never
/// changes the report.
///
/// ```swift
/// let analyzer = DomainAnalyzer()
/// try analyzer.begin(AnalysisContext(shape: .mixtral8x7B, seed: 7))
/// for block in blocks { try analyzer.consume(block) }
/// let report = try analyzer.finish()
/// print(report.json["layers"]?[0]?["js_divergence_bits"] ?? "n/a")
/// ```
///
/// What it measures, for every pair of domains and layer `l` (see docs/analyzers.md):
/// - usage: the share of each expert among all ids selected at layer `l` (every member of the
///   top-k set counts once); Jensen-Shannon divergence in bits (log base 2, so 0...1) and total
///   variation between two domains;
/// - affinity (`l -> l+1`): the joint distribution of (i in S_l, j in S_{l+1}) over the k x k id
///   pairs of every token with both layers present, normalised to sum 1; its JS divergence and
///   total variation;
/// - significance: domain labels permuted across whole problems (exactly when there are at most
///   ``relabelings`` distinct relabelings, otherwise a seeded sample of that many), per-layer
///   p-values, p-values adjusted for the L layers (single-step max-T), the null's mean and 95th
///   percentile, and a percentile bootstrap over problems (within each domain) for a 95%
///   interval of each layer's JS divergence;
/// - transitions: per layer pair `l -> l+1`, the JS divergence between the two domains' joint
///   distributions of `(top1_l, top1_{l+1})`, with the same permutation test and bootstrap
///   (at most ``transitionRelabelingLimit`` relabelings and ``transitionResampleLimit``
///   resamples);
/// - transfer: the next-layer top-1 predictor (argmax of the top-1 -> top-1 count matrix)
///   fitted on domain A and scored on B, beside one cross-validated within B by problem, each
///   with a 95% bootstrap interval over B's problems and a flag when it does worse than its
///   most-frequent baseline.
///
/// ### Memory
/// Per problem: two `[L][E]` count vectors (4 bytes a cell, so a problem may hold up to 2^32 - 1
/// tokens) and, when `(L-1) E^2` is at most ``maximumProblemTransitionCells``, its own
/// `[L-1][E][E]` top-1 -> top-1 matrix (8 KB for Mixtral-8x7B), which the transition test and
/// the transfer intervals need. Per domain: the affinity counts and five fold-wise top-1 -> top-1
/// count matrices, `[L-1][E][E]` each (and, above that per-problem limit, per-problem matrices
/// only for domains of fewer than 5 problems, for leave-one-problem-out). Transition statistics
/// are skipped (with a note) when `(L-1) E^2` exceeds ``maximumTransitionCells``.
///
/// - Complexity: ``consume(_:)`` is O(T L k^2) for a block of T tokens with one dictionary look-up
///   per run of consecutive tokens of the same problem; ``finish()`` is O(R n L E) for R
///   relabelings or resamples of n problems per pair of domains, plus O(R' n (L-1) E^2) for the
///   transition test (R' at most ``transitionRelabelingLimit``).
public final class DomainAnalyzer: RoutingAnalyzer {
    /// The registry name, `"domain"`.
    public let name = "domain"

    /// Exact enumeration is used up to this many distinct relabelings; beyond, a seeded sample of
    /// this many relabelings.
    public let relabelings: Int
    /// Bootstrap resamples for the 95% intervals.
    public let resamples: Int

    /// ``begin(_:)`` refuses shapes whose per-problem `[L][E]` vectors would be larger.
    public static let maximumUsageCells = 1 << 22
    /// Transition statistics (affinity and transfer) are skipped when `(L-1) E^2` is larger:
    /// 2^22 cells, so a domain's affinity and five fold-wise top-1 matrices take at most
    /// 6 x 8 bytes x 2^22 = 192 MiB (DeepSeek-V3, (58-1) x 256^2 = 3.7 M cells: 171 MiB a domain).
    public static let maximumTransitionCells = 1 << 22
    /// Every problem keeps its own `[L-1][E][E]` top-1 -> top-1 matrix (for the transition
    /// domain test and the transfer intervals) only up to this many cells (64 KB a problem);
    /// above it both are skipped with a note.
    public static let maximumProblemTransitionCells = 1 << 14
    /// The transition domain test evaluates at most this many relabelings (exactly, when there
    /// are no more distinct ones; it costs `(L-1) E^2` per problem summed, 8 times the usage test
    /// for Mixtral).
    public static let transitionRelabelingLimit = 1_000
    /// The transition domain test's bootstrap draws at most this many resamples.
    public static let transitionResampleLimit = 500
    /// The number of cross-validation folds for domains of at least this many problems (the
    /// project-wide default of every analyzer, `ProblemFolds.defaultCount`); smaller domains use
    /// leave-one-problem-out.
    public static let crossValidationFolds = ProblemFolds.defaultCount
    /// The project-wide fold rule (AnalysisSupport): `fold = (id mod 5 + fnv1a(domain) mod 5) mod 5`.
    static let folds = ProblemFolds(count: crossValidationFolds)
    /// At most this many domain pairs get permutation p-values and bootstrap intervals, in
    /// sorted pair order (the divergences themselves are reported for every pair).
    public static let maximumTestedPairs = 6

    /// Creates the analyzer.
    ///
    /// - Parameters:
    ///   - relabelings: the exact-enumeration limit and the sample size of the permutation test
    ///     (at least 1; default 10,000).
    ///   - resamples: bootstrap resamples (at least 1; default 1,000).
    public init(relabelings: Int = 10_000, resamples: Int = 1_000) {
        self.relabelings = max(1, relabelings)
        self.resamples = max(1, resamples)
    }

    // MARK: - State

    struct ProblemKey: Hashable {
        var domain: Int
        var id: Int64
    }

    /// The context's seed.
    var seed: UInt64 = 0
    var shape: ModelShape?
    var layers = 0
    var experts = 0
    var topK = 0
    /// Cells of one `[L-1][E][E]` transition matrix, 0 when transition statistics are off.
    var pairCells = 0
    var transitionsEnabled = false
    /// Whether every problem keeps its own top-1 -> top-1 matrix (``maximumProblemTransitionCells``).
    var problemPairsEnabled = false

    /// Domain names in order of registration (local indices).
    var domainNames: [String] = []
    private var domainLookup: [String: Int] = [:]
    /// Problems registered so far, per local domain.
    var domainProblemCount: [Int] = []
    /// Each local domain's fold offset (``ProblemFolds/offset(domain:)``).
    var domainFoldOffset: [Int] = []
    /// Every count the kernel adds to, in raw columns; emptied in ``begin(_:)``.
    private let storage = DomainStorage()
    /// Whether top-2 blocks take the kernel's specialised loop (tests turn it off to compare
    /// it with the general loop; set before ``begin(_:)``).
    var top2FastPath = true
    /// Affinity counts [D][L-1][E][E]: i in S_l, j in S_{l+1}.
    var domainAffinity: RawColumn<Int> { storage.domainAffinity }
    /// Top-1 -> top-1 counts per fold [D][F][L-1][E][E], folds by ``ProblemFolds``. Counted
    /// only when problems keep no matrices of their own; with ``problemPairsEnabled`` they stay
    /// zero and ``foldPairs()`` sums them from the per-problem matrices (one increment per
    /// record either way).
    var domainFoldPairs: RawColumn<Int> { storage.domainFoldPairs }

    var problemLookup: [ProblemKey: Int] = [:]
    var problemKeys: [ProblemKey] = []
    /// Local domain of each problem (a copy of `problemKeys[s].domain` for the hot loop).
    var problemDomain: RawColumn<Int> { storage.problemDomain }
    var problemFold: RawColumn<Int> { storage.problemFold }
    var problemTokens: RawColumn<Int> { storage.problemTokens }
    var problemRecords: RawColumn<Int> { storage.problemRecords }
    var problemIncomplete: RawColumn<Int> { storage.problemIncomplete }
    /// Selected-id counts [P][L][E] (every member of the top-k set).
    var problemUsage: RawColumn<UInt32> { storage.problemUsage }
    /// Top-1 counts [P][L][E].
    var problemTop1: RawColumn<UInt32> { storage.problemTop1 }
    /// Offset into ``smallPairs`` of a problem's own top-1 -> top-1 matrix, or -1.
    var problemSmallOffset: RawColumn<Int> { storage.problemSmallOffset }
    /// Per-problem top-1 -> top-1 matrices, [L-1][E][E] each: of every problem when
    /// ``problemPairsEnabled``, otherwise of the problems of small domains.
    var smallPairs: RawColumn<UInt32> { storage.smallPairs }

    // Scratch reused across blocks.
    private var cachedBlockDomains: [String] = []
    private var blockTranslation: [Int] = []
    private var tokenSlots: [Int] = []

    // MARK: - Lifecycle

    public func begin(_ context: AnalysisContext) throws {
        let s = context.shape
        guard s.layers * s.experts <= Self.maximumUsageCells else {
            throw RoutingError.analyzerFailed(
                name: name,
                message:
                    "L x E = \(s.layers * s.experts) exceeds \(Self.maximumUsageCells) cells per problem; run the domain analyzer on a model of fewer layers or experts"
            )
        }
        shape = s
        seed = context.seed
        layers = s.layers
        experts = s.experts
        topK = s.topK
        let cells = (s.layers - 1) * s.experts * s.experts
        transitionsEnabled = s.layers > 1 && cells <= Self.maximumTransitionCells
        pairCells = transitionsEnabled ? cells : 0
        problemPairsEnabled = transitionsEnabled && cells <= Self.maximumProblemTransitionCells
        // A new run: no domains or problems yet.
        storage.removeAll()
        domainNames = []
        domainLookup = [:]
        domainProblemCount = []
        domainFoldOffset = []
        problemLookup = [:]
        problemKeys = []
        cachedBlockDomains = []
        blockTranslation = []
    }

    public func consume(_ block: RoutingBlock) throws {
        guard shape != nil else {
            throw RoutingError.analyzerFailed(
                name: name,
                message: "consume was called before begin; call begin(_:) first"
            )
        }
        guard block.shape.layers == layers, block.shape.experts == experts, block.shape.topK == topK else {
            throw RoutingError.analyzerFailed(
                name: name,
                message: "block shape \(block.shape) differs from the run's shape L=\(layers) E=\(experts) k=\(topK)"
            )
        }
        let t = block.tokenCount
        guard t > 0 else { return }
        try translateDomains(block.domains)
        resolveSlots(block)
        switch block.ids {
        case .narrow(let a):
            if let m = a.max(), Int(m) >= experts { throw badID(Int(m)) }
            a.withUnsafeBufferPointer { accumulate($0, block) }
        case .wide(let a):
            if let m = a.max(), Int(m) >= experts { throw badID(Int(m)) }
            a.withUnsafeBufferPointer { accumulate($0, block) }
        }
    }

    private func badID(_ id: Int) -> RoutingError {
        .analyzerFailed(
            name: name,
            message: "block holds expert id \(id), outside 0..<\(experts) (E); the block was not validated"
        )
    }

    // MARK: - Domains and problems

    /// The local index of a domain name, registering it when new.
    func localDomain(_ name: String) -> Int {
        if let i = domainLookup[name] { return i }
        let i = domainNames.count
        domainNames.append(name)
        domainLookup[name] = i
        domainProblemCount.append(0)
        domainFoldOffset.append(Self.folds.offset(domain: name))
        domainAffinity.append(repeating: 0, count: pairCells)
        domainFoldPairs.append(repeating: 0, count: pairCells * Self.crossValidationFolds)
        storage.smallAffinity.append(repeating: 0, count: pairCells)
        storage.smallFoldPairs.append(repeating: 0, count: pairCells * Self.crossValidationFolds)
        return i
    }

    /// Maps the block's domain indices to local ones, recomputed only when its table changes.
    private func translateDomains(_ names: [String]) throws {
        guard names != cachedBlockDomains else { return }
        cachedBlockDomains = names
        blockTranslation = names.map { localDomain($0) }
    }

    /// The slot of a problem, registering it (and its storage) when new.
    func slot(for key: ProblemKey) -> Int {
        if let s = problemLookup[key] { return s }
        let s = problemKeys.count
        problemLookup[key] = s
        problemKeys.append(key)
        problemDomain.append(key.domain)
        problemFold.append(Self.folds.fold(offset: domainFoldOffset[key.domain], problemID: key.id))
        problemTokens.append(0)
        problemRecords.append(0)
        problemIncomplete.append(0)
        problemUsage.append(repeating: 0, count: layers * experts)
        problemTop1.append(repeating: 0, count: layers * experts)
        if transitionsEnabled && (problemPairsEnabled || domainProblemCount[key.domain] < Self.crossValidationFolds) {
            problemSmallOffset.append(smallPairs.count)
            smallPairs.append(repeating: 0, count: pairCells)
        } else {
            problemSmallOffset.append(-1)
        }
        domainProblemCount[key.domain] += 1
        return s
    }

    /// Fills ``tokenSlots`` with each token's problem slot: one look-up per run of consecutive
    /// tokens of the same problem.
    private func resolveSlots(_ block: RoutingBlock) {
        let t = block.tokenCount
        tokenSlots.removeAll(keepingCapacity: true)
        tokenSlots.reserveCapacity(t)
        var lastDomain = -1
        var lastID: Int64 = 0
        var lastSlot = -1
        for i in 0..<t {
            let d = Int(block.domain[i])
            let p = block.problemID[i]
            if d != lastDomain || p != lastID || lastSlot < 0 {
                lastSlot = slot(for: ProblemKey(domain: blockTranslation[d], id: p))
                lastDomain = d
                lastID = p
            }
            tokenSlots.append(lastSlot)
        }
    }

    // MARK: - Hot loop

    /// Adds every present cell of the block to the per-problem and per-domain counts (its
    /// problems are registered already, so the storage's pointers stay valid).
    ///
    /// - Complexity: O(T L k^2); no allocation, no look-up.
    private func accumulate<ID: FixedWidthInteger>(_ ids: UnsafeBufferPointer<ID>, _ block: RoutingBlock) {
        let geometry = DomainKernel.Geometry(
            layers: layers,
            experts: experts,
            topK: topK,
            pairCells: pairCells,
            transitions: transitionsEnabled,
            foldsFromProblems: problemPairsEnabled,
            top2FastPath: top2FastPath
        )
        let pointers = storage.pointers(geometry)
        let cellsPerToken = layers * topK
        let T = block.tokenCount
        block.present.withUnsafeBufferPointer { present in
            tokenSlots.withUnsafeBufferPointer { slots in
                // Token ranges of at most `spillTokens`: each adds at most one to any 16-bit
                // per-domain counter per token, so the counters spill before they could overflow.
                var t0 = 0
                while t0 < T {
                    let n = min(Self.spillTokens, T - t0)
                    if n > storage.smallHeadroom { storage.spillSmallCounts() }
                    storage.smallHeadroom -= n
                    DomainKernel.count(
                        ids: UnsafeBufferPointer(rebasing: ids[(t0 * cellsPerToken)..<((t0 + n) * cellsPerToken)]),
                        present: UnsafeBufferPointer(rebasing: present[(t0 * layers)..<((t0 + n) * layers)]),
                        slots: UnsafeBufferPointer(rebasing: slots[t0..<(t0 + n)]),
                        into: pointers
                    )
                    t0 += n
                }
            }
        }
    }

    /// Most tokens the kernel counts between two checks of the 16-bit counters' headroom.
    static let spillTokens = 16_384

    /// The fold-wise top-1 -> top-1 counts [D][F][L-1][E][E]: ``domainFoldPairs`` as counted, or,
    /// with ``problemPairsEnabled``, summed from every problem's own matrix into its fold.
    func foldPairs() -> [Int] { withFoldPairs { Array($0) } }

    /// Calls `body` with ``foldPairs()``'s counts: read in place from ``domainFoldPairs`` when
    /// they are counted directly (at DeepSeek-V3's shape a copy would be 300 MB), else summed
    /// into a new array. The buffer is valid only inside `body`.
    func withFoldPairs<R>(_ body: (UnsafeBufferPointer<Int>) throws -> R) rethrows -> R {
        storage.spillSmallCounts()
        guard problemPairsEnabled else {
            return try body(UnsafeBufferPointer(start: domainFoldPairs.base, count: domainFoldPairs.count))
        }
        return try summedFoldPairs().withUnsafeBufferPointer(body)
    }

    /// The per-problem matrices summed into their domain and fold.
    private func summedFoldPairs() -> [Int] {
        let cells = pairCells
        let F = Self.crossValidationFolds
        var out = [Int](repeating: 0, count: domainNames.count * F * cells)
        for s in problemKeys.indices {
            let o = problemSmallOffset[s]
            guard o >= 0 else { continue }  // unreachable: every problem has one when enabled
            let base = (problemDomain[s] * F + problemFold[s]) * cells
            for c in 0..<cells { out[base + c] += Int(smallPairs[o + c]) }
        }
        return out
    }

    // MARK: - Merge

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        guard let oShape = o.shape else { return }  // never began: nothing consumed
        guard let myShape = shape else {
            throw RoutingError.incompatibleMerge("'\(name)' cannot merge before begin; call begin(_:) first")
        }
        guard oShape.layers == myShape.layers, oShape.experts == myShape.experts, oShape.topK == myShape.topK else {
            throw RoutingError.incompatibleMerge("'\(name)' shards have different shapes: \(myShape) and \(oShape)")
        }
        guard o.seed == seed, o.relabelings == relabelings, o.resamples == resamples else {
            throw RoutingError.incompatibleMerge(
                "'\(name)' shards have different settings (seed, relabelings or resamples); give every shard the same context"
            )
        }
        storage.spillSmallCounts()
        o.storage.spillSmallCounts()
        let domainMap = o.domainNames.map { localDomain($0) }
        let cells = pairCells
        let foldCells = cells * Self.crossValidationFolds
        for (od, d) in domainMap.enumerated() {
            for c in 0..<cells { domainAffinity[d * cells + c] += o.domainAffinity[od * cells + c] }
            for c in 0..<foldCells { domainFoldPairs[d * foldCells + c] += o.domainFoldPairs[od * foldCells + c] }
        }
        // Problems first, so that the final per-domain problem counts are known.
        let LE = layers * experts
        var slotMap: [Int] = []
        slotMap.reserveCapacity(o.problemKeys.count)
        for (os, key) in o.problemKeys.enumerated() {
            let s = slot(for: ProblemKey(domain: domainMap[key.domain], id: key.id))
            slotMap.append(s)
            problemTokens[s] += o.problemTokens[os]
            problemRecords[s] += o.problemRecords[os]
            problemIncomplete[s] += o.problemIncomplete[os]
            for c in 0..<LE {
                problemUsage[s * LE + c] &+= o.problemUsage[os * LE + c]
                problemTop1[s * LE + c] &+= o.problemTop1[os * LE + c]
            }
        }
        // Every problem has a matrix when `problemPairsEnabled`; otherwise they matter only for
        // domains still below the fold count, and every problem of such a domain has one (see
        // `slot(for:)`).
        for (os, s) in slotMap.enumerated() {
            let oo = o.problemSmallOffset[os]
            let so = problemSmallOffset[s]
            guard oo >= 0, so >= 0 else { continue }
            for c in 0..<cells { smallPairs[so + c] &+= o.smallPairs[oo + c] }
        }
    }
}
