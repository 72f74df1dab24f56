// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// SampledPairFigures: the summary figures of a layer pair whose full count tables are not kept,
// estimated from the multihop analyzer's token sample.

import AnalysisSupport
import Foundation

/// Summary figures of one layer pair (l, j) from the tokens of a ``TokenSample`` present at both
/// layers: the plug-in mutual information of their top-1 choices with a token-permutation null,
/// and the top-m affinity mass with its value under one permutation.
///
/// The null permutes the sampled tokens' layer-j routing against their layer-l routing (same
/// margins, no dependence), `replicates` times, seeded per pair, so it carries the same
/// small-sample bias as the observed figure; read `mi - null.mean` (the excess).
///
/// The top-m affinity mass, m = k: for each top-1 expert a of layer l, the share of the layer-j
/// memberships of its tokens that fall on its m most frequent layer-j experts, weighted by its
/// tokens: `sum_a top_m(c[a][.]) / (k n)` with `c[a][e]` the sampled tokens with top-1 a at l and
/// e in their set at j. 1 when a's layer-j set is always the same; near `m / E`-ish plus sampling
/// noise when j ignores l, which the permuted value shows.
///
/// ```swift
/// var work = SampledPairFigures.Scratch(experts: 256)
/// let f = SampledPairFigures.compute(sample, l: 0, j: 9, experts: 256, replicates: 20, seed: s, scratch: &work)
/// ```
struct SampledPairFigures {
    /// Sampled tokens present at both layers.
    var tokens = 0
    /// Plug-in MI of the sampled top-1 pairs, bits.
    var mi = 0.0
    /// Its permutation null.
    var null = ContingencyTable.NullDistribution(mean: 0, standardDeviation: 0, replicates: 0)
    /// Top-m affinity mass (nil without tokens) and its value with layer j permuted.
    var affinityMass: Double?, affinityMassPermuted: Double?

    /// Reusable buffers (a dense E x E count table and per-expert member counts, each left
    /// all zero after use).
    struct Scratch {
        var cells: [UInt32]
        var rowTotals: [Int]
        var columnTotals: [Int]
        var members: [UInt32]
        /// `x log2 x` for x = 0 ... the largest n seen.
        var xLogX: [Double] = [0]
        init(experts: Int) {
            cells = [UInt32](repeating: 0, count: experts * experts)
            rowTotals = [Int](repeating: 0, count: experts)
            columnTotals = [Int](repeating: 0, count: experts)
            members = [UInt32](repeating: 0, count: experts)
        }
    }

    /// The figures of pair (l, j).
    ///
    /// - Complexity: O(n x (replicates + k log k)) for n sampled tokens at both layers.
    static func compute(
        _ sample: TokenSample,
        l: Int,
        j: Int,
        experts E: Int,
        replicates: Int,
        seed: UInt64,
        scratch s: inout Scratch
    ) -> SampledPairFigures {
        let k = sample.topK
        let L = sample.layers
        var rows: [Int] = []
        var tokenIndex: [Int] = []
        for i in 0..<sample.count {
            guard let a = sample.top1(i, l), sample.top1(i, j) != nil else { continue }
            rows.append(a)
            tokenIndex.append(i)
        }
        var out = SampledPairFigures()
        let n = rows.count
        out.tokens = n
        guard n > 0 else { return out }
        // Group tokens by their layer-l top-1 (a stable counting sort), so each expert's tokens
        // are one run (for the mass).
        var starts = [Int](repeating: 0, count: E + 1)
        for a in rows { starts[a + 1] += 1 }
        for e in 0..<E { starts[e + 1] += starts[e] }
        var groupedRows = [Int](repeating: 0, count: n)
        var groupedTokens = [Int](repeating: 0, count: n)
        for x in 0..<n {
            let a = rows[x]
            groupedRows[starts[a]] = a
            groupedTokens[starts[a]] = tokenIndex[x]
            starts[a] += 1
        }
        rows = groupedRows
        tokenIndex = groupedTokens
        // The layer-j routing of the grouped tokens, gathered once into contiguous arrays (the
        // sample holds L x k ids per token, so reading them through token indices in every
        // replicate missed the cache on nearly every token). A permutation is applied to
        // positions 0 ..< n of these arrays, which gives the same figures as permuting the
        // token indices themselves.
        let ids = sample.ids
        var column = [Int32](repeating: 0, count: n)
        var targetSets = [UInt16](repeating: 0, count: n * k)
        for x in 0..<n {
            let base = (tokenIndex[x] * L + j) * k
            column[x] = Int32(ids[base])
            for q in 0..<k { targetSets[x * k + q] = ids[base + q] }
        }
        // MI = (sum_cells c log c - sum_rows r log r - sum_columns c log c + n log n) / n; a
        // permutation keeps both margins, so only the cell term changes between replicates.
        if s.xLogX.count <= n {
            s.xLogX = (0...n).map { $0 == 0 ? 0 : Double($0) * log2(Double($0)) }
        }
        for e in 0..<E {
            s.rowTotals[e] = 0
            s.columnTotals[e] = 0
        }
        for x in 0..<n {
            s.rowTotals[rows[x]] += 1
            s.columnTotals[Int(column[x])] += 1
        }
        var marginTerm = s.xLogX[n]
        for e in 0..<E { marginTerm -= s.xLogX[s.rowTotals[e]] + s.xLogX[s.columnTotals[e]] }
        let dn = Double(n)
        let rowBase = rows.map { Int32(truncatingIfNeeded: $0 &* E) }
        // Where each expert's run of grouped tokens ends (experts without tokens left out).
        var groupEnds: [Int] = []
        for x in 0..<n where x == n - 1 || rows[x + 1] != rows[x] { groupEnds.append(x + 1) }
        // The replicates run on raw buffers: the scratch's cell table and member counts (moved
        // out, no copy), one touched list (cells of a table, or experts of a row), the k
        // largest counts of a row and the permutation of positions.
        var cells = s.cells
        var members = s.members
        s.cells = []
        s.members = []
        let touched = UnsafeMutablePointer<Int32>.allocate(capacity: max(n, E))
        let top = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, k))
        let permuted = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer {
            touched.deallocate()
            top.deallocate()
            permuted.deallocate()
        }
        for x in 0..<n { permuted[x] = Int32(truncatingIfNeeded: x) }
        var rng = SeededRandom(seed: seed)
        var values: [Double] = []
        cells.withUnsafeMutableBufferPointer { table in
            members.withUnsafeMutableBufferPointer { count in
                rowBase.withUnsafeBufferPointer { rb in
                    column.withUnsafeBufferPointer { col in
                        targetSets.withUnsafeBufferPointer { sets in
                            s.xLogX.withUnsafeBufferPointer { xLogX in
                                /// MI with token x's layer-l routing paired with the layer-j
                                /// top-1 `labels[x]` (x a position in the grouped arrays), the
                                /// cells added in the order they were first filled.
                                func mi(labels: UnsafePointer<Int32>) -> Double {
                                    var filled = 0
                                    for x in 0..<n {
                                        let c = Int(rb[x]) &+ Int(labels[x])
                                        if table[c] == 0 {
                                            touched[filled] = Int32(truncatingIfNeeded: c)
                                            filled &+= 1
                                        }
                                        table[c] &+= 1
                                    }
                                    var sum = marginTerm
                                    for u in 0..<filled {
                                        let c = Int(touched[u])
                                        sum += xLogX[Int(table[c])]
                                        table[c] = 0
                                    }
                                    return max(0, sum / dn)
                                }
                                /// The top-m affinity mass with the same pairing.
                                func mass(_ partner: UnsafePointer<Int32>) -> Double {
                                    var captured = 0
                                    var start = 0
                                    for end in groupEnds {
                                        var filled = 0
                                        for x in start..<end {
                                            let base = Int(partner[x]) &* k
                                            for q in 0..<k {
                                                let e = Int(sets[base &+ q])
                                                if count[e] == 0 {
                                                    touched[filled] = Int32(truncatingIfNeeded: e)
                                                    filled &+= 1
                                                }
                                                count[e] &+= 1
                                            }
                                        }
                                        // The k largest counts of this expert's row (zeros: fewer
                                        // than k partners); `low` is the first smallest kept.
                                        for q in 0..<k { top[q] = 0 }
                                        var low = 0
                                        for u in 0..<filled {
                                            let e = Int(touched[u])
                                            let c = count[e]
                                            count[e] = 0
                                            if c > top[low] {
                                                top[low] = c
                                                low = 0
                                                for q in 1..<k where top[q] < top[low] { low = q }
                                            }
                                        }
                                        for q in 0..<k { captured &+= Int(top[q]) }
                                        start = end
                                    }
                                    return Double(captured) / Double(n * k)
                                }
                                // The first replicate permutes the positions (the mass needs
                                // each token's whole set); later ones apply the same swaps to
                                // the layer-j top-1 labels themselves, which gives the same
                                // pairing without the indirection.
                                let labels = UnsafeMutablePointer<Int32>.allocate(capacity: n)
                                defer { labels.deallocate() }
                                for x in 0..<n { labels[x] = col[x] }
                                out.mi = mi(labels: labels)
                                out.affinityMass = mass(permuted)
                                /// One Fisher–Yates shuffle of `a[0 ..< n]`.
                                func shuffle(_ a: UnsafeMutablePointer<Int32>) {
                                    for x in stride(from: n - 1, to: 0, by: -1) {
                                        let y = rng.nextIndex(below: x + 1)
                                        let swapped = a[x]
                                        a[x] = a[y]
                                        a[y] = swapped
                                    }
                                }
                                for r in 0..<max(0, replicates) {
                                    if r == 0 {
                                        shuffle(permuted)
                                        for x in 0..<n { labels[x] = col[Int(permuted[x])] }
                                    } else {
                                        shuffle(labels)
                                    }
                                    values.append(mi(labels: labels))
                                    if r == 0 { out.affinityMassPermuted = mass(permuted) }
                                }
                            }
                        }
                    }
                }
            }
        }
        out.null = summarize(values)
        s.cells = cells
        s.members = members
        return out
    }

    /// Mean and sample standard deviation.
    static func summarize(_ values: [Double]) -> ContingencyTable.NullDistribution {
        guard !values.isEmpty else { return .init(mean: 0, standardDeviation: 0, replicates: 0) }
        let mean = values.reduce(0, +) / Double(values.count)
        let ss = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let sd = values.count > 1 ? (ss / Double(values.count - 1)).squareRoot() : 0
        return .init(mean: mean, standardDeviation: sd, replicates: values.count)
    }
}
