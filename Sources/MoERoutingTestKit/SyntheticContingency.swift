// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import AnalysisSupport
import Foundation

/// Count tables with known structure, for the tests and benchmarks of the information figures.
public enum SyntheticContingency {
    /// An E x E table of `tokens` independent (row, column) draws whose row and column shares
    /// both fall as `1 / rank^skew` (rare experts, like routing), the columns in a shuffled order
    /// so the two margins do not line up. Deterministic for a seed.
    public static func independentTable(experts e: Int, tokens: Int, skew: Double, seed: UInt64) -> ContingencyTable {
        var rng = SeededRandom(seed: seed)
        let weights = (1...max(1, e)).map { 1 / pow(Double($0), skew) }
        let total = weights.reduce(0, +)
        var cumulative: [Double] = []
        var running = 0.0
        for w in weights {
            running += w / total
            cumulative.append(running)
        }
        let columnOrder = Array(0..<e).shuffled(using: &rng)
        func draw() -> Int {
            let u = rng.nextUnit()
            var lo = 0
            var hi = e - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if u < cumulative[mid] { hi = mid } else { lo = mid + 1 }
            }
            return lo
        }
        var t = ContingencyTable(rows: e, columns: e)
        for _ in 0..<max(0, tokens) { t[draw(), columnOrder[draw()]] += 1 }
        return t
    }
}
