// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
public import MoERouting

/// Checks an analyzer's merge contract: instances that consumed parts of a stream, merged, report
/// exactly what one instance that consumed the whole stream reports, byte for byte, in any merge
/// order.
///
/// A report is compared whole: its JSON form (``AnalyzerReport/reportValue``: the `json`, tables,
/// figures, headlines and notes), its text and its Markdown. The checks use no test framework:
/// each returns the one-pass report when the contract holds and throws a ``Mismatch`` naming the
/// split and the first line that differs when it does not, so they work under Swift Testing,
/// XCTest or a plain executable alike. Errors the analyzer itself throws pass through unchanged.
///
/// ```swift
/// @Test func mergeEqualsOnePass() throws {
///     var generator = SyntheticRouting(shape: .tinyMixtral, seed: 1, missingRate: 0.05)
///     let blocks = (0..<6).map { _ in generator.makeBlock(problems: 2, tokensPerProblem: 30, domain: "gsm8k") }
///     let context = AnalysisContext(shape: .tinyMixtral, seed: 7)
///     try MergeCheck.assertHalvesEqualOnePass(makeAnalyzer: { ExpertLoadAnalyzer() }, context: context, blocks: blocks)
///     try MergeCheck.assertShardsEqualOnePass(makeAnalyzer: { ExpertLoadAnalyzer() }, context: context, blocks: blocks)
/// }
/// ```
public enum MergeCheck {
    /// A merged report that differs from the one-pass report.
    public struct Mismatch: Error, Sendable, CustomStringConvertible {
        /// The analyzer's name.
        public var analyzer: String
        /// How the blocks were split among instances and merged, e.g.
        /// `"blocks 0..<3 and 3..<6 in two instances, the second merged into the first"`.
        public var plan: String
        /// The one-pass report, rendered as ``MergeCheck/rendering(of:)`` renders it.
        public var onePass: String
        /// The merged report, rendered the same way.
        public var merged: String

        /// Creates a mismatch.
        public init(analyzer: String, plan: String, onePass: String, merged: String) {
            self.analyzer = analyzer
            self.plan = plan
            self.onePass = onePass
            self.merged = merged
        }

        /// One line: the analyzer, the split, and the first differing line of both renderings.
        public var description: String {
            let expected = onePass.split(separator: "\n", omittingEmptySubsequences: false)
            let actual = merged.split(separator: "\n", omittingEmptySubsequences: false)
            var line = 0
            while line < expected.count, line < actual.count, expected[line] == actual[line] { line += 1 }
            func shown(_ lines: [Substring]) -> String {
                guard line < lines.count else { return "(no such line)" }
                let text = lines[line]
                return text.count > 160 ? "`\(text.prefix(160))...`" : "`\(text)`"
            }
            return "'\(analyzer)': merging differs from one pass (\(plan)): first difference at line \(line + 1) "
                + "of the rendered report: one pass \(shown(expected)), merged \(shown(actual))"
        }
    }

    /// What the checks compare: the report's JSON form (pretty-printed, so a difference has a line
    /// number), then its text, then its Markdown.
    public static func rendering(of report: AnalyzerReport) -> String {
        report.reportValue.jsonString(indent: 1) + "\n" + report.renderText() + report.renderMarkdown()
    }

    /// Splits `blocks` in two halves at the middle and checks that two instances, one per half,
    /// merged either way round, report what one instance that consumed every block reports.
    ///
    /// - Parameters:
    ///   - makeAnalyzer: Makes a fresh instance (for example `{ try registry.make("expert-load") }`);
    ///     called five times.
    ///   - context: What every instance begins with.
    ///   - blocks: The stream, in order; the first half is `blocks[..<(blocks.count / 2)]`.
    /// - Returns: The one-pass report.
    /// - Throws: ``Mismatch`` when a merged report differs; any error the analyzer throws.
    @discardableResult
    public static func assertHalvesEqualOnePass(
        makeAnalyzer: () throws -> any RoutingAnalyzer,
        context: AnalysisContext,
        blocks: [RoutingBlock]
    ) throws -> AnalyzerReport {
        let middle = blocks.count / 2
        return try assertHalvesEqualOnePass(
            makeAnalyzer: makeAnalyzer,
            context: context,
            first: Array(blocks[..<middle]),
            second: Array(blocks[middle...])
        )
    }

    /// Checks that an instance that consumed `first` and one that consumed `second`, merged either
    /// way round, report what one instance that consumed `first` then `second` reports.
    ///
    /// - Parameters:
    ///   - makeAnalyzer: Makes a fresh instance (for example `{ try registry.make("expert-load") }`);
    ///     called five times.
    ///   - context: What every instance begins with.
    ///   - first: The blocks of the first half, in order.
    ///   - second: The blocks of the second half, in order.
    /// - Returns: The one-pass report.
    /// - Throws: ``Mismatch`` when a merged report differs; any error the analyzer throws.
    @discardableResult
    public static func assertHalvesEqualOnePass(
        makeAnalyzer: () throws -> any RoutingAnalyzer,
        context: AnalysisContext,
        first: [RoutingBlock],
        second: [RoutingBlock]
    ) throws -> AnalyzerReport {
        let (single, expected) = try onePass(makeAnalyzer, context, first + second)
        let halves = "\(first.count) and \(second.count) blocks in two instances"
        for (receiver, sender, plan) in [
            (0, 1, "the second merged into the first"), (1, 0, "the first merged into the second"),
        ] {
            let parts = [try makeAnalyzer(), try makeAnalyzer()]
            for (part, blocks) in zip(parts, [first, second]) {
                try part.begin(context)
                for block in blocks { try part.consume(block) }
            }
            try parts[receiver].merge(parts[sender])
            let merged = rendering(of: try parts[receiver].finish())
            guard merged == expected else {
                throw Mismatch(analyzer: single.analyzer, plan: "\(halves), \(plan)", onePass: expected, merged: merged)
            }
        }
        return single
    }

    /// Deals `blocks` (all but the last) at random among 2 to 4 instances, merges them in a random
    /// order, lets the merged instance consume the last block, and checks it reports what one
    /// instance that consumed every block reports; `trials` times, each with another deal.
    ///
    /// The deals are drawn from a ``SeededRandom`` seeded with `seed`, so a failure repeats.
    ///
    /// - Parameters:
    ///   - makeAnalyzer: Makes a fresh instance.
    ///   - context: What every instance begins with.
    ///   - blocks: The stream, in order.
    ///   - trials: How many random deals to check.
    ///   - seed: Seed of the deals.
    /// - Returns: The one-pass report.
    /// - Throws: ``Mismatch`` when a merged report differs (its plan gives the trial, the deal and
    ///   the merge order); any error the analyzer throws.
    @discardableResult
    public static func assertShardsEqualOnePass(
        makeAnalyzer: () throws -> any RoutingAnalyzer,
        context: AnalysisContext,
        blocks: [RoutingBlock],
        trials: Int = 6,
        seed: UInt64 = 1234
    ) throws -> AnalyzerReport {
        let (single, expected) = try onePass(makeAnalyzer, context, blocks)
        var rng = SeededRandom(seed: seed)
        for trial in 0..<trials {
            let n = 2 + rng.nextIndex(below: 3)
            let parts = try (0..<n).map { _ in try makeAnalyzer() }
            for part in parts { try part.begin(context) }
            var dealt = [[Int]](repeating: [], count: n)
            for (index, block) in blocks.dropLast().enumerated() {
                let part = rng.nextIndex(below: n)
                try parts[part].consume(block)
                dealt[part].append(index)
            }
            var order = Array(0..<n)
            order.shuffle(using: &rng)
            let target = parts[order[0]]
            for i in order.dropFirst() { try target.merge(parts[i]) }
            if let last = blocks.last { try target.consume(last) }
            let merged = rendering(of: try target.finish())
            guard merged == expected else {
                let deal = dealt.enumerated().map {
                    "instance \($0.offset): blocks [\($0.element.map(String.init).joined(separator: ", "))]"
                }
                let plan =
                    "trial \(trial + 1) of \(trials) (seed \(seed)): \(deal.joined(separator: "; ")); "
                    + "instances \(order.dropFirst().map(String.init).joined(separator: ", ")) merged into \(order[0]) in that order"
                    + (blocks.isEmpty ? "" : ", which then consumed block \(blocks.count - 1)")
                throw Mismatch(analyzer: single.analyzer, plan: plan, onePass: expected, merged: merged)
            }
        }
        return single
    }

    /// One instance over every block: its report and that report's rendering.
    private static func onePass(
        _ makeAnalyzer: () throws -> any RoutingAnalyzer,
        _ context: AnalysisContext,
        _ blocks: [RoutingBlock]
    ) throws -> (AnalyzerReport, String) {
        let single = try makeAnalyzer()
        try single.begin(context)
        for block in blocks { try single.consume(block) }
        let report = try single.finish()
        return (report, rendering(of: report))
    }
}
