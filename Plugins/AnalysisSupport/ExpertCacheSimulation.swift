// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// ExpertCacheSimulation: a device cache of one MoE layer's experts, simulated over that layer's
// demand accesses for every capacity at once: the core of issue 14's `cache` analyzer (offloading
// with experts fetched from host memory on a miss).

/// Which expert a full cache evicts on a miss.
public enum ExpertCachePolicy: String, Sendable, CaseIterable {
    /// The least recently accessed.
    case lru
    /// The least frequently accessed over the whole sequence so far (counts survive eviction),
    /// ties broken by least recent access.
    case lfu
    /// Belady's optimal (MIN): the one whose next access is furthest in the future, or never. The
    /// upper bound of every demand-fetching policy; it needs the future, which a trace has.
    case belady
}

/// Demand hits of a cache of C experts for every C in `1...experts`, over one layer's accesses in
/// order (a token's k experts one after another, in descending weight order, each one demand
/// access). Every miss fetches the expert into the cache (evicting one when full); nothing is
/// prefetched.
///
/// ```swift
/// let hits = ExpertCacheSimulation.hits(accesses: [0, 1, 2, 0, 1, 3, 0, 3, 1, 2], experts: 4, policy: .lru)
/// // [0, 1, 5, 6]: hits with 1, 2, 3 and 4 cached experts
/// ```
public enum ExpertCacheSimulation {
    /// Hits for capacities 1...experts (element c - 1 for capacity c). Ids outside
    /// `0..<experts` are skipped (counted neither as hits nor as accesses).
    ///
    /// - Complexity: LRU O(n x d) for n accesses and mean stack depth d (at most `experts`), one
    ///   pass for every capacity (LRU is a stack algorithm: Mattson's stack distances); LFU and
    ///   Belady O(n x C) per capacity C, so O(n x E^2) in all.
    public static func hits(accesses: [UInt16], experts: Int, policy: ExpertCachePolicy) -> [Int] {
        guard experts > 0 else { return [] }
        let valid = accesses.filter { Int($0) < experts }
        switch policy {
        case .lru: return lruHits(valid, experts: experts)
        case .lfu, .belady:
            let next = policy == .belady ? nextUses(valid, experts: experts) : []
            return (1...experts).map { simulate(valid, experts: experts, capacity: $0, policy: policy, next: next) }
        }
    }

    /// Stack distances: an access at depth d of the recency stack (0: the most recent) hits in
    /// every cache larger than d.
    private static func lruHits(_ accesses: [UInt16], experts: Int) -> [Int] {
        var stack: [UInt16] = []
        stack.reserveCapacity(experts)
        var atDepth = [Int](repeating: 0, count: experts)
        for a in accesses {
            if let d = stack.firstIndex(of: a) {
                atDepth[d] += 1
                stack.remove(at: d)
            }
            stack.insert(a, at: 0)
        }
        var hits = [Int](repeating: 0, count: experts)
        var running = 0
        for c in 0..<experts {
            running += atDepth[c]
            hits[c] = running
        }
        return hits
    }

    /// For each access, the index of the next access of the same expert (`Int.max`: none).
    private static func nextUses(_ accesses: [UInt16], experts: Int) -> [Int] {
        var next = [Int](repeating: Int.max, count: accesses.count)
        var seen = [Int](repeating: Int.max, count: experts)
        for i in stride(from: accesses.count - 1, through: 0, by: -1) {
            let a = Int(accesses[i])
            next[i] = seen[a]
            seen[a] = i
        }
        return next
    }

    /// One capacity of LFU or Belady.
    private static func simulate(
        _ accesses: [UInt16],
        experts: Int,
        capacity: Int,
        policy: ExpertCachePolicy,
        next: [Int]
    ) -> Int {
        var cached: [Int] = []
        cached.reserveCapacity(capacity)
        var inCache = [Bool](repeating: false, count: experts)
        var frequency = [Int](repeating: 0, count: experts)
        var lastUse = [Int](repeating: -1, count: experts)
        var nextUse = [Int](repeating: Int.max, count: experts)
        var hits = 0
        for (i, access) in accesses.enumerated() {
            let a = Int(access)
            frequency[a] += 1
            if inCache[a] {
                hits += 1
            } else {
                if cached.count == capacity {
                    var victim = 0
                    for slot in 1..<cached.count {
                        let e = cached[slot]
                        let v = cached[victim]
                        let better: Bool
                        if policy == .belady {
                            better = nextUse[e] > nextUse[v]
                        } else {
                            better =
                                frequency[e] < frequency[v] || (frequency[e] == frequency[v] && lastUse[e] < lastUse[v])
                        }
                        if better { victim = slot }
                    }
                    inCache[cached[victim]] = false
                    cached[victim] = a
                } else {
                    cached.append(a)
                }
                inCache[a] = true
            }
            lastUse[a] = i
            if policy == .belady { nextUse[a] = next[i] }
        }
        return hits
    }
}
