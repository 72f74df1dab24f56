// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

/// Merge equals one pass, in any split and any merge order, byte for byte; and the same input
/// gives the same bytes.
struct MergePropertyTests {
    static func blocks(shape: ModelShape, seed: UInt64, count: Int) -> [RoutingBlock] {
        var gen = SyntheticRouting(shape: shape, seed: seed, dependence: 0.6, missingRate: 0.05)
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { i in
            gen.makeBlock(
                problems: 1 + rng.nextIndex(below: 3),
                tokensPerProblem: 1 + rng.nextIndex(below: 40),
                domain: ["humaneval", "gsm8k", "mbpp"][i % 3]
            )
        }
    }

    static func render(_ r: AnalyzerReport) -> String {
        r.json.jsonString() + "\n" + r.renderText() + r.renderMarkdown()
    }

    /// Splits `blocks` across 2-4 instances at random, merges them in a random order, lets the
    /// merged instance consume one more block, and compares with a single pass (the test kit's
    /// ``MergeCheck``, which compares the whole report: JSON form, text and Markdown); then the
    /// same with the blocks split in two halves, merged either way round.
    static func checkMerge(
        make: () -> any RoutingAnalyzer,
        shape: ModelShape,
        blocks: [RoutingBlock],
        trials: Int
    ) throws {
        let context = AnalysisContext(shape: shape, seed: 99)
        let shards = try MergeCheck.assertShardsEqualOnePass(
            makeAnalyzer: make,
            context: context,
            blocks: blocks,
            trials: trials
        )
        let halves = try MergeCheck.assertHalvesEqualOnePass(makeAnalyzer: make, context: context, blocks: blocks)
        #expect(render(shards) == render(halves))
    }

    @Test func transitionMergeEqualsOnePass() throws {
        let shape = try ModelShape(layers: 5, experts: 8, topK: 2)
        try Self.checkMerge(
            make: { TransitionAnalyzer() },
            shape: shape,
            blocks: Self.blocks(shape: shape, seed: 3, count: 12),
            trials: 6
        )
    }

    @Test func multihopMergeEqualsOnePass() throws {
        let shape = try ModelShape(layers: 5, experts: 8, topK: 2)
        try Self.checkMerge(
            make: { MultiHopAnalyzer() },
            shape: shape,
            blocks: Self.blocks(shape: shape, seed: 4, count: 12),
            trials: 6
        )
    }

    @Test func mergeEqualsOnePassOnTheGeneralPaths() throws {
        // k = 3, E = 12: no top-2 kernel; E^k = 1728 > 64: no overlap lookup table.
        let shape = try ModelShape(layers: 4, experts: 12, topK: 3)
        let blocks = Self.blocks(shape: shape, seed: 5, count: 8)
        try Self.checkMerge(make: { MultiHopAnalyzer(maxOrder: 2) }, shape: shape, blocks: blocks, trials: 3)
        try Self.checkMerge(make: { TransitionAnalyzer() }, shape: shape, blocks: blocks, trials: 3)
    }

    @Test func mergingEmptyAndUnbegunInstances() throws {
        let shape = ModelShape.tinyMixtral
        let blocks = Self.blocks(shape: shape, seed: 6, count: 4)
        for make in [{ TransitionAnalyzer() as any RoutingAnalyzer }, { MultiHopAnalyzer() as any RoutingAnalyzer }] {
            let single = make()
            try single.begin(AnalysisContext(shape: shape))
            for b in blocks { try single.consume(b) }
            // An unbegun receiver takes the other's state; an unbegun or empty sender adds nothing.
            let receiver = make()
            let full = make()
            try full.begin(AnalysisContext(shape: shape))
            for b in blocks { try full.consume(b) }
            try receiver.merge(full)
            try receiver.merge(make())
            let empty = make()
            try empty.begin(AnalysisContext(shape: shape))
            try receiver.merge(empty)
            #expect(try receiver.finish().json.jsonString() == (try single.finish().json.jsonString()))
        }
    }

    @Test func mergeRejectsOtherTypesShapesAndItself() throws {
        let t = TransitionAnalyzer()
        try t.begin(AnalysisContext(shape: .tinyMixtral))
        #expect(throws: RoutingError.self) { try t.merge(MultiHopAnalyzer()) }
        #expect(throws: RoutingError.self) { try t.merge(t) }
        let other = TransitionAnalyzer()
        try other.begin(AnalysisContext(shape: .mixtral8x7B))
        #expect(throws: RoutingError.self) { try t.merge(other) }
        let m = MultiHopAnalyzer()
        try m.begin(AnalysisContext(shape: .tinyMixtral))
        let m2 = MultiHopAnalyzer()
        try m2.begin(AnalysisContext(shape: .mixtral8x7B))
        #expect(throws: RoutingError.self) { try m.merge(m2) }
    }

    @Test func sameInputGivesSameBytes() throws {
        let shape = ModelShape.tinyMixtral
        let blocks = Self.blocks(shape: shape, seed: 8, count: 6)
        for make in [{ TransitionAnalyzer() as any RoutingAnalyzer }, { MultiHopAnalyzer() as any RoutingAnalyzer }] {
            var outputs: [String] = []
            for _ in 0..<2 {
                let a = make()
                try a.begin(AnalysisContext(shape: shape, seed: 7))
                for b in blocks { try a.consume(b) }
                outputs.append(Self.render(try a.finish()))
            }
            #expect(outputs[0] == outputs[1])
            // A different seed changes only the shuffled null.
            let a = make()
            try a.begin(AnalysisContext(shape: shape, seed: 8))
            for b in blocks { try a.consume(b) }
            let other = try a.finish().json
            let first = try ReportValue.parse(json: outputs[0].split(separator: "\n").first.map(String.init) ?? "")
            #expect(other["tokens"] == first["tokens"])
        }
    }
}
