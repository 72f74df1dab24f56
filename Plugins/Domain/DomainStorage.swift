// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainStorage: the raw columns behind one domain analyzer's counts, emptied in `begin`, grown as
// problems and domains are registered, and handed to the kernel as one struct of pointers.

import AnalysisSupport

/// The counts of one domain run: per problem and per domain, each one growable raw column
/// (``RawColumn``), emptied in `begin` and freed with the storage.
///
/// The analyzer registers problems and domains before it runs the kernel on a block, so the
/// pointers in ``pointers(_:)`` stay valid for the whole block.
///
/// ```swift
/// let storage = DomainStorage()
/// storage.addProblem(domain: 0, fold: 3, usageCells: L * E, pairCells: cells)
/// DomainKernel.count(ids: ids, present: present, slots: slots, into: storage.pointers(geometry))
/// ```
final class DomainStorage {
    // MARK: - Per domain

    /// Affinity counts [D][L-1][E][E]: i in S_l, j in S_{l+1}.
    let domainAffinity = RawColumn<Int>()
    /// Top-1 -> top-1 counts per fold [D][F][L-1][E][E] (see ``DomainAnalyzer/domainFoldPairs``).
    let domainFoldPairs = RawColumn<Int>()
    /// What the kernel increments instead of ``domainAffinity`` and ``domainFoldPairs``: 16-bit
    /// counters of the same layout (a layer pair's table is a quarter of the size, so it stays in
    /// cache), moved into those totals by ``spillSmallCounts()`` before they could overflow and
    /// before anything reads the totals.
    let smallAffinity = RawColumn<UInt16>()
    let smallFoldPairs = RawColumn<UInt16>()
    /// Increments any one 16-bit counter can still take.
    var smallHeadroom = Int(UInt16.max)

    // MARK: - Per problem

    /// Local domain of each problem.
    let problemDomain = RawColumn<Int>()
    let problemFold = RawColumn<Int>()
    let problemTokens = RawColumn<Int>()
    let problemRecords = RawColumn<Int>()
    let problemIncomplete = RawColumn<Int>()
    /// Selected-id counts [P][L][E] (every member of the top-k set).
    let problemUsage = RawColumn<UInt32>()
    /// Top-1 counts [P][L][E].
    let problemTop1 = RawColumn<UInt32>()
    /// Offset into ``smallPairs`` of a problem's own top-1 -> top-1 matrix, or -1.
    let problemSmallOffset = RawColumn<Int>()
    /// Per-problem top-1 -> top-1 matrices, [L-1][E][E] each.
    let smallPairs = RawColumn<UInt32>()

    /// Empties every column: a new run (``DomainAnalyzer/begin(_:)``).
    func removeAll() {
        for column in [
            domainAffinity, domainFoldPairs, problemDomain, problemFold, problemTokens, problemRecords,
            problemIncomplete, problemSmallOffset,
        ] {
            column.removeAll()
        }
        for column in [problemUsage, problemTop1, smallPairs] { column.removeAll() }
        smallAffinity.removeAll()
        smallFoldPairs.removeAll()
        smallHeadroom = Int(UInt16.max)
    }

    /// Adds the 16-bit counters into the per-domain totals and zeroes them.
    func spillSmallCounts() {
        for (small, total) in [(smallAffinity, domainAffinity), (smallFoldPairs, domainFoldPairs)] {
            let n = small.count
            guard n > 0 else { continue }
            let s = small.base
            let t = total.base
            for c in 0..<n {
                t[c] &+= Int(s[c])
                s[c] = 0
            }
        }
        smallHeadroom = Int(UInt16.max)
    }

    /// The kernel's view of every column, valid until the next registration.
    func pointers(_ geometry: DomainKernel.Geometry) -> DomainKernel.Pointers {
        DomainKernel.Pointers(
            geometry: geometry,
            problemDomain: UnsafePointer(problemDomain.base),
            problemFold: UnsafePointer(problemFold.base),
            problemSmall: UnsafePointer(problemSmallOffset.base),
            tokens: problemTokens.base,
            records: problemRecords.base,
            incomplete: problemIncomplete.base,
            usage: problemUsage.base,
            top1: problemTop1.base,
            affinity: smallAffinity.base,
            foldPairs: smallFoldPairs.base,
            small: smallPairs.base
        )
    }
}
