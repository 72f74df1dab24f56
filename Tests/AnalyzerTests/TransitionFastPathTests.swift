// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import MoERoutingTestKit
import Testing
import TransitionAnalyzer

/// The top-2, E <= 8 fast path of `transition` must count exactly what the general loop counts.
/// The same routing is fed once with E = 8 (fast path) and once declared with E = 9 (general
/// loop; the ninth expert is never used), and every figure that does not depend on E must agree.
struct TransitionFastPathTests {
    private func report(_ blocks: [RoutingBlock], shape: ModelShape) throws -> ReportValue {
        let a = TransitionAnalyzer()
        try a.begin(AnalysisContext(shape: shape, seed: 3))
        for b in blocks { try a.consume(b) }
        return try a.finish().json
    }

    /// Re-declares a block under another expert count, cell by cell.
    private func widened(_ block: RoutingBlock, to shape: ModelShape) throws -> RoutingBlock {
        var builder = RoutingBlockBuilder(shape: shape, domains: block.domains)
        for t in 0..<block.tokenCount {
            let tok = builder.appendToken(
                domainIndex: block.domain[t],
                problemID: block.problemID[t],
                position: block.position[t],
                phase: block.phase[t],
                tokenID: block.tokenID[t]
            )
            for l in 0..<shape.layers where block.isPresent(token: t, layer: l) {
                try builder.setCell(
                    token: tok,
                    layer: l,
                    experts: (0..<shape.topK).map { block.expert(token: t, layer: l, slot: $0) },
                    weights: (0..<shape.topK).map { block.weight(token: t, layer: l, slot: $0) }
                )
            }
        }
        return builder.makeBlock()
    }

    @Test func fastPathCountsWhatTheGeneralLoopCounts() throws {
        let fast = try ModelShape(layers: 6, experts: 8, topK: 2)
        let general = try ModelShape(layers: 6, experts: 9, topK: 2)
        var gen = SyntheticRouting(shape: fast, seed: 21, dependence: 0.6, missingRate: 0.05)
        let blocks = (0..<3).map { gen.makeBlock(problems: 4, tokensPerProblem: 50, domain: $0 == 0 ? "a" : "b") }
        let a = try report(blocks, shape: fast)
        let b = try report(try blocks.map { try widened($0, to: general) }, shape: general)
        let keys = [
            "pairs", "skipped_pairs", "top1_same", "overlap_fraction", "any_overlap", "set_same",
            "mutual_information_bits", "conditional_entropy_bits",
        ]
        for i in 0..<(fast.layers - 1) {
            for k in keys {
                #expect(a["layers"]?[i]?[k] == b["layers"]?[i]?[k], "layer \(i) \(k)")
            }
            // The E x E affinity and top-1 count matrices agree on the shared 8 x 8 block.
            for m in ["matrix", "top1_counts"] {
                let x = a["layers"]?[i]?[m]?.arrayValue ?? []
                let y = b["layers"]?[i]?[m]?.arrayValue ?? []
                #expect(x.count == 8 && y.count == 9)
                for r in 0..<min(8, x.count) {
                    #expect(x[r].arrayValue == Array((y[r].arrayValue ?? []).prefix(8)), "layer \(i) \(m) row \(r)")
                }
            }
        }
        for k in keys { #expect(a["pooled"]?[k] == b["pooled"]?[k], "pooled \(k)") }
        #expect(a["pooled"]?["top1_same"]?.doubleValue ?? 0 > 0)
    }

    /// Above 64 experts the overlap of two top-k sets is counted with per-expert stamps instead
    /// of 64-bit masks: the same top-8 routing declared with E = 64 (masks) and E = 130 (stamps;
    /// experts 64 and up never used) must give the same overlap figures and top-1 counts.
    @Test func stampOverlapCountsWhatTheMaskCounts() throws {
        let masks = try ModelShape(layers: 5, experts: 64, topK: 8)
        let stamps = try ModelShape(layers: 5, experts: 130, topK: 8)
        var gen = SyntheticRouting(shape: masks, seed: 5, dependence: 0.7, missingRate: 0.05)
        let blocks = (0..<2).map { gen.makeBlock(problems: 3, tokensPerProblem: 40, domain: $0 == 0 ? "a" : "b") }
        let a = try report(blocks, shape: masks)
        let b = try report(try blocks.map { try widened($0, to: stamps) }, shape: stamps)
        let keys = ["pairs", "skipped_pairs", "top1_same", "overlap_fraction", "any_overlap", "set_same"]
        for i in 0..<(masks.layers - 1) {
            for k in keys { #expect(a["layers"]?[i]?[k] == b["layers"]?[i]?[k], "layer \(i) \(k)") }
            let x = a["layers"]?[i]?["top1_counts"]?.arrayValue ?? []
            let y = b["layers"]?[i]?["top1_counts"]?.arrayValue ?? []
            #expect(x.count == 64 && y.count == 130)
            for r in 0..<min(64, x.count) {
                #expect(x[r].arrayValue == Array((y[r].arrayValue ?? []).prefix(64)), "layer \(i) row \(r)")
            }
        }
        for k in keys { #expect(a["pooled"]?[k] == b["pooled"]?[k], "pooled \(k)") }
        // The ids are independent draws apart from the permuted top-1: overlap near chance, k/E = 1/8.
        let fraction = a["pooled"]?["overlap_fraction"]?.doubleValue ?? 0
        #expect(fraction > 0.08 && fraction < 0.17)
    }
}
