// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Problem-level significance of per-layer divergences between two domains: a permutation test
// over whole problems (exact or sampled), with per-layer p-values, p-values adjusted for the
// number of layers (single-step max-T) and the null's mean and 95th percentile, and a percentile
// bootstrap over problems. The same code serves expert usage ([L][E] rows) and top-1 -> top-1
// transitions ([L-1][E*E] rows, one "layer" per layer pair).

import AnalysisSupport

/// Per-problem count vectors of two domains and the tests run on them.
///
/// `rows` holds one `[L][E]` count vector per problem: domain A's `nA` problems first, then B's
/// `nB`. A relabeling assigns `nA` of the `n = nA + nB` problems to A and the rest to B; the
/// statistic of layer `l` is the JS divergence (bits) between the pooled usage counts of the two
/// sides at `l`. Nothing here depends on what a "layer" row holds: transition tests pass one
/// `[E*E]` joint count matrix per layer pair as a layer of width `E*E`.
struct DomainSignificance {
    let rows: [Double]
    let nA: Int
    let nB: Int
    let layers: Int
    let experts: Int

    /// The tolerance under which a relabeling's statistic counts as equal to the observed one.
    static let tolerance = 1e-12

    struct Permutation {
        /// "exact" or "sampled".
        var method: String
        /// Relabelings evaluated (all C(n, nA) for exact, the sample size otherwise).
        var relabelings: Int
        /// Observed per-layer JS (bits), NaN where a side has no record at that layer.
        var observed: [Double]
        /// Per-layer p-values, NaN where the observed statistic is NaN.
        var pValues: [Double]
        /// The p-value of the maximum over layers of the per-layer JS (corrected for L layers).
        var maxLayerP: Double
        /// Per-layer p-values adjusted for the L layers by the single-step max-T method
        /// (Westfall-Young): the share of relabelings whose *maximum over layers* is at least the
        /// observed JS of this layer. Controls the family-wise error rate; never below `pValues`.
        var adjustedP: [Double]
        /// The 95th percentile (type 7) of each layer's JS over the relabelings.
        var nullP95: [Double]
        /// The 95th percentile of the maximum over layers: a layer whose JS exceeds it is
        /// significant at 5% after the correction.
        var nullMaxP95: Double
        /// Mean per-layer JS over the relabelings: the statistic's value under no difference.
        var nullMean: [Double]
        /// The smallest p-value this design can give.
        var minimumP: Double
        /// Exact method: the smallest attainable p-value as a fraction (numerator, denominator).
        var minimumFraction: (Int, Int)?
    }

    private var width: Int { layers * experts }

    /// Per-layer JS between `sum` and `total - sum` (written to `other`), into `out`.
    private func splitJS(
        _ sum: UnsafeMutableBufferPointer<Double>,
        total: UnsafeBufferPointer<Double>,
        other: UnsafeMutableBufferPointer<Double>,
        out: UnsafeMutableBufferPointer<Double>
    ) {
        for c in 0..<width { other[c] = total[c] - sum[c] }
        guard let s = sum.baseAddress, let o = other.baseAddress else { return }
        for l in 0..<layers { out[l] = layerJS(s, o, layer: l) }
    }

    /// JS (bits) at layer `l` between the `[L][E]` count vectors at `a` and `b`, each layer
    /// normalised by its own total.
    @inline(__always)
    private func layerJS(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, layer l: Int) -> Double {
        let E = experts
        var ta = 0.0
        var tb = 0.0
        for e in 0..<E {
            ta += a[l * E + e]
            tb += b[l * E + e]
        }
        return DomainStatistics.jsBits(a + l * E, b + l * E, count: E, totalA: ta, totalB: tb)
    }

    /// Adds the rows named by `chosen` into `sum` (zeroed first).
    private func sumRows(
        _ chosen: UnsafeBufferPointer<Int>,
        rows r: UnsafeBufferPointer<Double>,
        into sum: UnsafeMutableBufferPointer<Double>
    ) {
        let w = width
        for c in 0..<w { sum[c] = 0 }
        for i in chosen {
            let base = i * w
            for c in 0..<w { sum[c] += r[base + c] }
        }
    }

    private static func maxFinite(_ v: UnsafeMutableBufferPointer<Double>) -> Double {
        var m = -Double.infinity
        for x in v where x.isFinite && x > m { m = x }
        return m.isFinite ? m : .nan
    }

    /// The permutation test: every relabeling when there are at most `limit` of them, otherwise
    /// `limit` relabelings drawn with a SplitMix64 generator seeded with `seed`.
    ///
    /// Exact p = #{relabelings with JS >= observed - 1e-12} / C(n, nA), the observed labelling
    /// included; sampled p = (1 + #{...}) / (1 + limit).
    ///
    /// - Complexity: O(R (min(nA, nB) + 1) L E) for R relabelings.
    func permutation(limit: Int, seed: UInt64) -> Permutation {
        let n = nA + nB
        let L = layers
        // The smaller side is summed; the other is the total minus it. JS is symmetric, so which
        // side is "A" does not matter.
        let m = min(nA, nB)
        let observedSide = nA <= nB ? Array(0..<nA) : Array(nA..<n)
        var total = [Double](repeating: 0, count: width)
        var sum = [Double](repeating: 0, count: width)
        var other = [Double](repeating: 0, count: width)
        var stat = [Double](repeating: .nan, count: L)
        var observed = [Double](repeating: .nan, count: L)
        var countGE = [Int](repeating: 0, count: L)
        var nullSum = [Double](repeating: 0, count: L)
        var nullCount = [Int](repeating: 0, count: L)
        var nullValues = [[Double]](repeating: [], count: L)
        var maxima: [Double] = []
        var maxGE = 0
        var chosen = [Int](repeating: 0, count: m)
        let exactCount = DomainStatistics.binomial(n, m, cap: limit)
        var evaluated = 0

        rows.withUnsafeBufferPointer { r in
            total.withUnsafeMutableBufferPointer { tot in
                for i in 0..<n {
                    for c in 0..<width { tot[c] += r[i * width + c] }
                }
            }
            total.withUnsafeBufferPointer { tot in
                sum.withUnsafeMutableBufferPointer { s in
                    other.withUnsafeMutableBufferPointer { o in
                        stat.withUnsafeMutableBufferPointer { st in
                            observedSide.withUnsafeBufferPointer { sumRows($0, rows: r, into: s) }
                            splitJS(s, total: tot, other: o, out: st)
                            for l in 0..<L { observed[l] = st[l] }
                            let observedMax = Self.maxFinite(st)

                            func record() {
                                evaluated += 1
                                for l in 0..<L where st[l].isFinite {
                                    nullSum[l] += st[l]
                                    nullCount[l] += 1
                                    nullValues[l].append(st[l])
                                    if observed[l].isFinite && st[l] >= observed[l] - Self.tolerance { countGE[l] += 1 }
                                }
                                let mx = Self.maxFinite(st)
                                maxima.append(mx)
                                if observedMax.isFinite && mx.isFinite && mx >= observedMax - Self.tolerance {
                                    maxGE += 1
                                }
                            }

                            chosen.withUnsafeMutableBufferPointer { c in
                                if exactCount != nil {
                                    // Every m-subset, in lexicographic order.
                                    for i in 0..<m { c[i] = i }
                                    while true {
                                        sumRows(UnsafeBufferPointer(c), rows: r, into: s)
                                        splitJS(s, total: tot, other: o, out: st)
                                        record()
                                        var i = m - 1
                                        while i >= 0 && c[i] == n - m + i { i -= 1 }
                                        if i < 0 { break }
                                        c[i] += 1
                                        for j in (i + 1)..<m { c[j] = c[j - 1] + 1 }
                                    }
                                } else {
                                    // Partial Fisher-Yates: the first m of a uniformly shuffled
                                    // index array are a uniform m-subset.
                                    var rng = SeededRandom(seed: seed)
                                    var index = Array(0..<n)
                                    for _ in 0..<limit {
                                        for i in 0..<m {
                                            let j = i + rng.nextIndex(below: n - i)
                                            index.swapAt(i, j)
                                        }
                                        for i in 0..<m { c[i] = index[i] }
                                        sumRows(UnsafeBufferPointer(c), rows: r, into: s)
                                        splitJS(s, total: tot, other: o, out: st)
                                        record()
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        let exact = exactCount != nil
        let denominator = Double(exact ? evaluated : evaluated + 1)
        func p(_ ge: Int) -> Double { Double(exact ? ge : ge + 1) / denominator }
        let observedMax = observed.filter(\.isFinite).max()
        var minimumFraction: (Int, Int)?
        let minimumP: Double
        if exact {
            // A relabeling and its mirror (sides swapped) have the same JS when nA == nB.
            let numerator = nA == nB ? min(2, evaluated) : 1
            minimumFraction = (numerator, evaluated)
            minimumP = Double(numerator) / Double(max(1, evaluated))
        } else {
            minimumP = 1 / denominator
        }
        let finiteMaxima = maxima.filter(\.isFinite).sorted()
        let adjusted: [Double] = (0..<L).map { l in
            guard observed[l].isFinite else { return .nan }
            let threshold = observed[l] - Self.tolerance
            // Maxima are sorted: count those >= threshold by binary search.
            var lo = 0
            var hi = finiteMaxima.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if finiteMaxima[mid] >= threshold { hi = mid } else { lo = mid + 1 }
            }
            return p(finiteMaxima.count - lo)
        }
        return Permutation(
            method: exact ? "exact" : "sampled",
            relabelings: evaluated,
            observed: observed,
            pValues: (0..<L).map { observed[$0].isFinite ? p(countGE[$0]) : .nan },
            maxLayerP: observedMax == nil ? .nan : p(maxGE),
            adjustedP: adjusted,
            nullP95: nullValues.map { DomainStatistics.quantile(sorted: $0.sorted(), 0.95) },
            nullMaxP95: DomainStatistics.quantile(sorted: finiteMaxima, 0.95),
            nullMean: (0..<L).map { nullCount[$0] > 0 ? nullSum[$0] / Double(nullCount[$0]) : .nan },
            minimumP: minimumP,
            minimumFraction: minimumFraction
        )
    }

    /// Percentile bootstrap over problems: each resample draws nA problems of A and nB of B with
    /// replacement (SplitMix64 seeded with `seed`) and recomputes every layer's JS. Returns the
    /// 2.5% and 97.5% quantiles per layer (type 7), NaN where no resample had records there.
    ///
    /// - Complexity: O(R n L E).
    func bootstrap(resamples: Int, seed: UInt64) -> [(lo: Double, hi: Double)] {
        let L = layers
        var values = [[Double]](repeating: [], count: L)
        for l in 0..<L { values[l].reserveCapacity(resamples) }
        var rng = SeededRandom(seed: seed)
        var sumA = [Double](repeating: 0, count: width)
        var sumB = [Double](repeating: 0, count: width)
        rows.withUnsafeBufferPointer { r in
            sumA.withUnsafeMutableBufferPointer { a in
                sumB.withUnsafeMutableBufferPointer { b in
                    guard let pa = a.baseAddress, let pb = b.baseAddress else { return }
                    for _ in 0..<resamples {
                        for c in 0..<width {
                            a[c] = 0
                            b[c] = 0
                        }
                        for _ in 0..<nA {
                            let base = rng.nextIndex(below: nA) * width
                            for c in 0..<width { a[c] += r[base + c] }
                        }
                        for _ in 0..<nB {
                            let base = (nA + rng.nextIndex(below: nB)) * width
                            for c in 0..<width { b[c] += r[base + c] }
                        }
                        for l in 0..<L {
                            let js = layerJS(pa, pb, layer: l)
                            if js.isFinite { values[l].append(js) }
                        }
                    }
                }
            }
        }
        return values.map { v in
            let s = v.sorted()
            return (DomainStatistics.quantile(sorted: s, 0.025), DomainStatistics.quantile(sorted: s, 0.975))
        }
    }
}
