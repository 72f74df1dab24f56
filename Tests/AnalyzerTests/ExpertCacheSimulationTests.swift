// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Testing

/// The expert cache simulator against worked answers and against straightforward reference
/// simulations (one capacity at a time, the future scanned by brute force).
struct ExpertCacheSimulationTests {
    /// 0 1 2 0 1 3 0 3 1 2 over 4 experts, worked out by hand (see each policy's comment).
    static let worked: [UInt16] = [0, 1, 2, 0, 1, 3, 0, 3, 1, 2]

    @Test func workedExample() {
        // LRU stack depths of the repeats: 2, 2, 2, 1, 2, 3 -> hits 0, 1, 5, 6.
        #expect(ExpertCacheSimulation.hits(accesses: Self.worked, experts: 4, policy: .lru) == [0, 1, 5, 6])
        // Belady with 2: evicts 1 at t2 (next use t4 after 0's t3), 2 at t4, 1 at t5: hits t3, t6, t7.
        #expect(ExpertCacheSimulation.hits(accesses: Self.worked, experts: 4, policy: .belady) == [0, 3, 5, 6])
        // LFU with 2 always evicts the expert needed next: no hit at all.
        #expect(ExpertCacheSimulation.hits(accesses: Self.worked, experts: 4, policy: .lfu) == [0, 0, 5, 6])
        // Ids outside the layer's experts are skipped; no experts, no capacities.
        #expect(ExpertCacheSimulation.hits(accesses: Self.worked + [9], experts: 4, policy: .lru) == [0, 1, 5, 6])
        #expect(ExpertCacheSimulation.hits(accesses: Self.worked, experts: 0, policy: .lru).isEmpty)
    }

    /// One capacity, the plain way: a recency list, or a cache whose victim is found by scanning
    /// the rest of the sequence (Belady) or by the lowest (count, last use) (LFU).
    static func reference(_ accesses: [UInt16], capacity: Int, policy: ExpertCachePolicy) -> Int {
        var cache: [UInt16] = []  // most recent first for LRU
        var count: [UInt16: Int] = [:]
        var last: [UInt16: Int] = [:]
        var hits = 0
        for (i, a) in accesses.enumerated() {
            count[a, default: 0] += 1
            if let at = cache.firstIndex(of: a) {
                hits += 1
                if policy == .lru {
                    cache.remove(at: at)
                } else {
                    last[a] = i
                    continue
                }
            } else if cache.count == capacity {
                switch policy {
                case .lru:
                    cache.removeLast()
                case .belady:
                    func nextAccess(_ e: UInt16) -> Int { accesses[(i + 1)...].firstIndex(of: e) ?? Int.max }
                    let victim = cache.indices.max { nextAccess(cache[$0]) < nextAccess(cache[$1]) }!
                    cache.remove(at: victim)
                case .lfu:
                    let victim = cache.indices.min {
                        (count[cache[$0]]!, last[cache[$0]]!) < (count[cache[$1]]!, last[cache[$1]]!)
                    }!
                    cache.remove(at: victim)
                }
            }
            if policy == .lru { cache.insert(a, at: 0) } else { cache.append(a) }
            last[a] = i
        }
        return hits
    }

    @Test(arguments: ExpertCachePolicy.allCases)
    func matchesTheReferenceOnRandomTraces(_ policy: ExpertCachePolicy) {
        var rng = SeededRandom(seed: 21)
        for trial in 0..<30 {
            let experts = 2 + trial % 9
            let length = 20 + rng.nextIndex(below: 200)
            // Skewed and bursty, like routing: repeat the last expert a third of the time.
            var accesses: [UInt16] = []
            for _ in 0..<length {
                if let last = accesses.last, rng.nextUnit() < 0.33 {
                    accesses.append(last)
                } else {
                    let u = rng.nextUnit()
                    accesses.append(UInt16(Int(u * u * Double(experts))))
                }
            }
            let hits = ExpertCacheSimulation.hits(accesses: accesses, experts: experts, policy: policy)
            let expected = (1...experts).map { Self.reference(accesses, capacity: $0, policy: policy) }
            #expect(hits == expected, "trial \(trial), \(experts) experts")
            // With every expert cached only first accesses miss.
            #expect(hits.last == accesses.count - Set(accesses).count)
        }
    }

    @Test func beladyBoundsTheOthersAndStackPoliciesGrowWithCapacity() {
        var rng = SeededRandom(seed: 5)
        let accesses = (0..<2_000).map { _ in UInt16(rng.nextIndex(below: 16) / (1 + rng.nextIndex(below: 3))) }
        let lru = ExpertCacheSimulation.hits(accesses: accesses, experts: 16, policy: .lru)
        let lfu = ExpertCacheSimulation.hits(accesses: accesses, experts: 16, policy: .lfu)
        let belady = ExpertCacheSimulation.hits(accesses: accesses, experts: 16, policy: .belady)
        for c in 0..<16 {
            #expect(belady[c] >= lru[c] && belady[c] >= lfu[c])
            if c > 0 { #expect(lru[c] >= lru[c - 1] && belady[c] >= belady[c - 1]) }
        }
        #expect(belady[3] > lru[3])  // a real gap to bound, not equal figures
    }
}
