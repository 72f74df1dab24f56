// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
public import MoERouting

/// Generates routing traces with known structure, for tests and benchmarks, without Python.
///
/// Each token's top-1 expert at layer l+1 follows a fixed random permutation of its top-1 at
/// layer l with probability `dependence`, and is uniform otherwise; the other k-1 experts are
/// distinct uniform picks. Weights are random and ordered highest first. Each domain shifts the
/// permutation, so domains differ. `missingRate` drops (token, layer) cells at random.
///
/// ```swift
/// var gen = SyntheticRouting(shape: .mixtral8x7B, seed: 7)
/// let block = gen.makeBlock(problems: 4, tokensPerProblem: 100, domain: "humaneval")
/// ```
public struct SyntheticRouting: Sendable {
    /// The shape of generated blocks.
    public let shape: ModelShape
    /// Probability that the next layer's top-1 follows the permutation of this layer's top-1.
    public var dependence: Double
    /// Probability that a (token, layer) cell is missing.
    public var missingRate: Double
    private var rng: SeededRandom
    private var builder: RoutingBlockBuilder
    private var nextProblem: Int64 = 0
    private let permutations: [[Int]]

    /// Creates a generator.
    public init(shape: ModelShape, seed: UInt64, dependence: Double = 0.5, missingRate: Double = 0) {
        self.shape = shape
        self.dependence = dependence
        self.missingRate = missingRate
        var r = SeededRandom(seed: seed)
        self.permutations = (0..<shape.layers).map { _ in Array(0..<shape.experts).shuffled(using: &r) }
        self.rng = r
        self.builder = RoutingBlockBuilder(shape: shape)
    }

    /// Makes a block of `problems` problems of `tokensPerProblem` decode tokens each.
    public mutating func makeBlock(problems: Int, tokensPerProblem: Int, domain: String) -> RoutingBlock {
        let domainShift = Int(truncatingIfNeeded: (try? builder.domainIndex(of: domain)) ?? 0)
        let E = shape.experts
        let k = shape.topK
        var experts = [Int](repeating: 0, count: k)
        var weights = [Float](repeating: 0, count: k)
        for _ in 0..<problems {
            let p = nextProblem
            nextProblem += 1
            for pos in 0..<tokensPerProblem {
                let t = builder.appendToken(
                    domainIndex: UInt16(domainShift),
                    problemID: p,
                    position: Int32(pos),
                    phase: .decode,
                    tokenID: Int32(Int(rng.next() % 1024))
                )
                var top1 = Int(rng.next() % UInt64(E))
                for l in 0..<shape.layers {
                    if l > 0 {
                        if Double(rng.next() >> 11) / Double(1 << 53) < dependence {
                            top1 = permutations[l][(top1 + domainShift) % E]
                        } else {
                            top1 = Int(rng.next() % UInt64(E))
                        }
                    }
                    if missingRate > 0, Double(rng.next() >> 11) / Double(1 << 53) < missingRate { continue }
                    experts[0] = top1
                    var j = 1
                    while j < k {
                        let e = Int(rng.next() % UInt64(E))
                        if !experts[0..<j].contains(e) {
                            experts[j] = e
                            j += 1
                        }
                    }
                    var total: Float = 0
                    for j in 0..<k {
                        weights[j] = Float(rng.next() % 1000 + 1) / 1000
                        total += weights[j]
                    }
                    weights.sort(by: >)
                    if k > 1, weights[0] == weights[1] { weights[0] += 0.001 }
                    for j in 0..<k { weights[j] /= total }
                    try! builder.setCell(token: t, layer: l, experts: experts, weights: weights)
                }
            }
        }
        return builder.makeBlock()
    }
}
