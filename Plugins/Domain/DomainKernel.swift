// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainKernel: the domain analyzer's hot loop over one block, on the pointers of its storage,
// with its top-2 fast path and the switch that turns it off for tests.

import CAnalysisKernels

/// The domain counting kernel: its inputs (``Geometry``, ``Pointers``) and the loop
/// (``count(ids:present:slots:into:)``), which takes a top-2 fast path unless told otherwise.
///
/// ```swift
/// DomainKernel.count(ids: ids, present: present, slots: slots, into: storage.pointers(geometry))
/// ```
enum DomainKernel {
    /// Sizes and switches of the run.
    struct Geometry {
        var layers: Int
        var experts: Int
        var topK: Int
        var pairCells: Int
        var transitions: Bool
        /// Every problem has its own matrix: count there only (folds are summed at finish).
        var foldsFromProblems: Bool
        /// Whether top-2 blocks take the specialised loop (tests turn it off to compare).
        var top2FastPath: Bool
    }

    /// Pointers into the analyzer's ``DomainStorage``, indexed by problem slot or domain.
    struct Pointers {
        var geometry: Geometry
        var problemDomain: UnsafePointer<Int>
        var problemFold: UnsafePointer<Int>
        var problemSmall: UnsafePointer<Int>
        var tokens: UnsafeMutablePointer<Int>
        var records: UnsafeMutablePointer<Int>
        var incomplete: UnsafeMutablePointer<Int>
        var usage: UnsafeMutablePointer<UInt32>
        var top1: UnsafeMutablePointer<UInt32>
        /// 16-bit per-domain counters: a block adds at most one to any of them per token.
        var affinity: UnsafeMutablePointer<UInt16>
        var foldPairs: UnsafeMutablePointer<UInt16>
        var small: UnsafeMutablePointer<UInt32>
    }

    /// Adds every present cell of a block to the per-problem and per-domain counts; `slots`
    /// holds each token's problem slot. For top-2 (the common Mixtral shape) both ids of a cell
    /// are read once and the previous layer's pair is carried in registers; the counts it adds
    /// are identical to the general loop's.
    ///
    /// - Complexity: O(T L k^2); no allocation, no look-up.
    @inline(__always)
    static func count<ID: FixedWidthInteger>(
        ids: UnsafeBufferPointer<ID>,
        present: UnsafeBufferPointer<Bool>,
        slots: UnsafeBufferPointer<Int>,
        into p: Pointers
    ) {
        guard let idBase = ids.baseAddress, let presentBase = present.baseAddress else { return }
        let g = p.geometry
        let L = g.layers
        let E = g.experts
        let k = g.topK
        let LE = L * E
        let EE = E * E
        let cells = g.pairCells
        let transitions = g.transitions
        let foldsFromProblems = g.foldsFromProblems
        let folds = DomainAnalyzer.crossValidationFolds
        // The pointers as locals, so the loops keep them in registers.
        let problemDomain = p.problemDomain
        let problemFold = p.problemFold
        let problemSmall = p.problemSmall
        let tokens = p.tokens
        let records = p.records
        let incomplete = p.incomplete
        let usage = p.usage
        let top1 = p.top1
        let affinity = p.affinity
        let foldPairs = p.foldPairs
        let small = p.small
        if k == 2 && g.top2FastPath {
            for tok in 0..<slots.count {
                let s = slots[tok]
                let d = problemDomain[s]
                let urow = usage + s * LE
                let trow = top1 + s * LE
                let cellBase = tok * L
                let presentRow = presentBase + cellBase
                let idRow = idBase + cellBase * 2
                var n = 0
                if transitions {
                    let aff = affinity + d * cells
                    let fold = foldPairs + (d * folds + problemFold[s]) * cells
                    let sb = problemSmall[s]
                    let smallRow: UnsafeMutablePointer<UInt32>? = sb >= 0 ? small + sb : nil
                    var prevPresent = false
                    var p0 = 0
                    var p1 = 0
                    for l in 0..<L {
                        guard presentRow[l] else {
                            prevPresent = false
                            continue
                        }
                        n &+= 1
                        let c0 = Int(idRow[2 &* l])
                        let c1 = Int(idRow[2 &* l &+ 1])
                        let row = l &* E
                        trow[row &+ c0] &+= 1
                        urow[row &+ c0] &+= 1
                        urow[row &+ c1] &+= 1
                        if prevPresent {
                            let lb = (l &- 1) &* EE
                            let pc = lb &+ p0 &* E &+ c0
                            if let smallRow {
                                smallRow[pc] &+= 1
                                if !foldsFromProblems { fold[pc] &+= 1 }
                            } else {
                                fold[pc] &+= 1
                            }
                            let a0 = lb &+ p0 &* E
                            let a1 = lb &+ p1 &* E
                            aff[a0 &+ c0] &+= 1
                            aff[a0 &+ c1] &+= 1
                            aff[a1 &+ c0] &+= 1
                            aff[a1 &+ c1] &+= 1
                        }
                        prevPresent = true
                        p0 = c0
                        p1 = c1
                    }
                } else {
                    for l in 0..<L where presentRow[l] {
                        n &+= 1
                        let row = l &* E
                        let c0 = Int(idRow[2 &* l])
                        trow[row &+ c0] &+= 1
                        urow[row &+ c0] &+= 1
                        urow[row &+ Int(idRow[2 &* l &+ 1])] &+= 1
                    }
                }
                tokens[s] &+= 1
                records[s] &+= n
                if n < L { incomplete[s] &+= 1 }
            }
            return
        }
        // The general loop: any k. Chunks of `chunkTokens` tokens are taken layer by layer, so
        // that one layer pair's `[E][E]` affinity block stays in cache while the chunk's tokens add
        // their k x k pairs to it (token by token they would touch all L-1 blocks in turn).
        var t0 = 0
        while t0 < slots.count {
            let t1 = Swift.min(slots.count, t0 &+ chunkTokens)
            for tok in t0..<t1 {
                let s = slots[tok]
                let presentRow = presentBase + tok &* L
                var n = 0
                for l in 0..<L where presentRow[l] { n &+= 1 }
                tokens[s] &+= 1
                records[s] &+= n
                if n < L { incomplete[s] &+= 1 }
            }
            for l in 0..<L {
                let pairBase = (l &- 1) &* EE
                for tok in t0..<t1 {
                    let ahead = tok &+ prefetchDistance
                    if transitions, l > 0, ahead < t1 {
                        // A later token's affinity rows and fold cell are mostly out of cache: ask
                        // for them now (a missing cell's ids are zeros, so they are in range).
                        let s = slots[ahead]
                        let cur = idBase + (ahead &* L &+ l) &* k
                        let prev = cur - k
                        let pc = pairBase &+ Int(prev[0]) &* E &+ Int(cur[0])
                        if !foldsFromProblems {
                            moe_prefetch_for_write(
                                foldPairs + ((problemDomain[s] &* folds &+ problemFold[s]) &* cells &+ pc)
                            )
                        }
                        // The affinity's k rows (one per previous member).
                        let arow = affinity + (problemDomain[s] &* cells &+ pairBase)
                        for a in 0..<k { moe_prefetch_for_write(arow + Int(prev[a]) &* E) }
                    }
                    let cell = tok &* L &+ l
                    guard presentBase[cell] else { continue }
                    let s = slots[tok]
                    let cur = idBase + cell &* k
                    let row = s &* LE &+ l &* E
                    let top = Int(cur[0])
                    top1[row &+ top] &+= 1
                    for j in 0..<k { usage[row &+ Int(cur[j])] &+= 1 }
                    guard transitions, l > 0, presentBase[cell &- 1] else { continue }
                    let d = problemDomain[s]
                    let prev = cur - k
                    let pc = pairBase &+ Int(prev[0]) &* E &+ top
                    let sb = problemSmall[s]
                    if sb >= 0 { small[sb &+ pc] &+= 1 }
                    if !foldsFromProblems { foldPairs[(d &* folds &+ problemFold[s]) &* cells &+ pc] &+= 1 }
                    let arow = affinity + (d &* cells &+ pairBase)
                    for a in 0..<k {
                        let ia = arow + Int(prev[a]) &* E
                        for b in 0..<k { ia[Int(cur[b])] &+= 1 }
                    }
                }
            }
            t0 = t1
        }
    }

    /// Tokens per chunk of the general loop: as for transition's, a layer pair's affinity block
    /// comes back into cache once per chunk. 4096 was about 20% faster than 512 at Qwen3-30B-A3B's
    /// shape on a 1 MiB-L2 AMD EPYC; the counts do not depend on it.
    static let chunkTokens = 4096

    /// Tokens ahead of the one being counted whose affinity and fold cells the general loop
    /// prefetches.
    static let prefetchDistance = 16
}
