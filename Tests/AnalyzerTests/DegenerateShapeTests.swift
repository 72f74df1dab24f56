// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import DomainAnalyzer
import MoERouting
import MoERoutingReport
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

/// Degenerate but valid inputs: every built-in analyzer must finish (a trap would kill the test
/// process), merge exactly, render, and write valid JSON in which statistics that cannot be
/// computed are `null` with an `"insufficient"` reason.
struct DegenerateShapeTests {
    /// One generated trace: its shape and its tokens, cut into blocks.
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var shape: ModelShape
        /// (domain, problems, tokens per problem) groups.
        var groups: [(domain: String, problems: Int, tokens: Int)]
        var phase: RoutingPhase = .decode
        /// Whether (token, layer) is present.
        var present: @Sendable (_ token: Int, _ layer: Int) -> Bool = { _, _ in true }
        var description: String { name }

        /// The trace as blocks of at most `perBlock` tokens. Experts are distinct
        /// pseudo-random picks, so the shape alone decides the degenerate case.
        func blocks(perBlock: Int = 7) throws -> [RoutingBlock] {
            var builder = RoutingBlockBuilder(shape: shape)
            var rng = SeededRandom(seed: 11)
            var out: [RoutingBlock] = []
            var token = 0
            var problem: Int64 = 0
            for g in groups {
                for _ in 0..<g.problems {
                    for pos in 0..<g.tokens {
                        let t = try builder.appendToken(
                            TokenMetadata(domain: g.domain, problemID: problem, position: Int32(pos), phase: phase)
                        )
                        for l in 0..<shape.layers where present(token, l) {
                            var ids: [Int] = []
                            while ids.count < shape.topK {
                                let e = Int(rng.next() % UInt64(shape.experts))
                                if !ids.contains(e) { ids.append(e) }
                            }
                            let w = (0..<shape.topK).map { 1.0 - 0.1 * Double($0) / Double(shape.topK) }
                            try builder.setCell(token: t, layer: l, experts: ids, weights: w)
                        }
                        token += 1
                        if builder.tokenCount >= perBlock { out.append(builder.makeBlock()) }
                    }
                    problem += 1
                }
            }
            if builder.tokenCount > 0 { out.append(builder.makeBlock()) }
            return out
        }
    }

    static let two = [(domain: "a", problems: 3, tokens: 4), (domain: "b", problems: 3, tokens: 4)]

    static let cases: [Case] = [
        Case(name: "L=1", shape: try! ModelShape(layers: 1, experts: 4, topK: 2), groups: two),
        Case(name: "L=2 (top-2 fast paths)", shape: try! ModelShape(layers: 2, experts: 8, topK: 2), groups: two),
        Case(name: "L=2 general paths", shape: try! ModelShape(layers: 2, experts: 12, topK: 3), groups: two),
        Case(
            name: "L=2 wide ids (E=300, sparse windows)",
            shape: try! ModelShape(layers: 2, experts: 300, topK: 3),
            groups: two
        ),
        Case(name: "L=3", shape: try! ModelShape(layers: 3, experts: 8, topK: 2), groups: two),
        Case(name: "k=1", shape: try! ModelShape(layers: 4, experts: 4, topK: 1), groups: two),
        Case(name: "k=E", shape: try! ModelShape(layers: 4, experts: 4, topK: 4), groups: two),
        Case(name: "E=1", shape: try! ModelShape(layers: 3, experts: 1, topK: 1), groups: two),
        Case(name: "E=1 L=1", shape: try! ModelShape(layers: 1, experts: 1, topK: 1), groups: two),
        Case(name: "one token", shape: .tinyMixtral, groups: [("a", 1, 1)]),
        Case(name: "one token L=2", shape: try! ModelShape(layers: 2, experts: 8, topK: 2), groups: [("a", 1, 1)]),
        Case(name: "one problem", shape: .tinyMixtral, groups: [("a", 1, 20)]),
        Case(name: "one domain", shape: .tinyMixtral, groups: [("a", 6, 5)]),
        Case(name: "two domains, one problem each", shape: .tinyMixtral, groups: [("a", 1, 6), ("b", 1, 6)]),
        Case(name: "a layer with no rows", shape: .tinyMixtral, groups: two, present: { _, l in l != 2 }),
        Case(name: "only one layer has rows", shape: .tinyMixtral, groups: two, present: { _, l in l == 1 }),
        Case(name: "no rows at all", shape: .tinyMixtral, groups: two, present: { _, _ in false }),
        Case(name: "prefill only", shape: .tinyMixtral, groups: two, phase: .prefill),
        Case(name: "Mixtral depth, one token", shape: .mixtral8x7B, groups: [("a", 1, 1)]),
        Case(name: "no tokens", shape: .tinyMixtral, groups: []),
        Case(name: "no tokens L=2", shape: try! ModelShape(layers: 2, experts: 8, topK: 2), groups: []),
    ]

    static let makers: [(String, @Sendable () -> any RoutingAnalyzer)] = [
        ("summary", { TraceSummaryAnalyzer() }),
        ("transition", { TransitionAnalyzer() }),
        ("multihop", { MultiHopAnalyzer() }),
        ("domain", { DomainAnalyzer() }),
    ]

    /// Every number in a JSON value is finite (ReportValue writes NaN and infinities as null,
    /// but a `.double(.nan)` in the tree means a statistic that should have been null).
    static func nonFinitePaths(_ v: ReportValue, _ path: String = "$") -> [String] {
        switch v {
        case .double(let d): return d.isFinite ? [] : [path]
        case .array(let a): return a.enumerated().flatMap { nonFinitePaths($0.element, "\(path)[\($0.offset)]") }
        case .object(let m): return m.flatMap { nonFinitePaths($0.value, "\(path).\($0.key)") }
        default: return []
        }
    }

    /// Paths of prediction objects (`prediction`, `path_predictor`) whose accuracy is null but
    /// that do not say why.
    static func unexplainedNulls(_ v: ReportValue, _ path: String = "$") -> [String] {
        switch v {
        case .array(let a): return a.enumerated().flatMap { unexplainedNulls($0.element, "\(path)[\($0.offset)]") }
        case .object(let m):
            var out: [String] = []
            for member in m {
                if ["prediction", "path_predictor"].contains(member.key), let value = member.value.objectMembers {
                    let accuracy = value.first { $0.key == "top1_accuracy" || $0.key == "accuracy" }?.value
                    if accuracy == .null, !value.contains(where: { $0.key == Insufficient.key }) {
                        out.append("\(path).\(member.key)")
                    }
                }
                out += unexplainedNulls(member.value, "\(path).\(member.key)")
            }
            return out
        default: return []
        }
    }

    static func run(
        _ make: () -> any RoutingAnalyzer,
        _ shape: ModelShape,
        _ blocks: [RoutingBlock]
    ) throws -> AnalyzerReport {
        let a = make()
        try a.begin(AnalysisContext(shape: shape, seed: 5))
        for b in blocks { try a.consume(b) }
        return try a.finish()
    }

    @Test(arguments: cases)
    func everyAnalyzerFinishesMergesAndRenders(_ c: Case) throws {
        let blocks = try c.blocks()
        var reports: [AnalyzerReport] = []
        for (name, make) in Self.makers {
            let report = try Self.run(make, c.shape, blocks)
            // Merge of two halves (alternate blocks) equals one pass, byte for byte.
            let context = AnalysisContext(shape: c.shape, seed: 5)
            let x = make()
            let y = make()
            try x.begin(context)
            try y.begin(context)
            for (i, b) in blocks.enumerated() { try (i % 2 == 0 ? x : y).consume(b) }
            try x.merge(y)
            let merged = try x.finish()
            #expect(merged.json.jsonString() == report.json.jsonString(), "\(c): \(name) merge")
            // Valid JSON, every number finite.
            let text = report.json.jsonString(indent: 1)
            #expect((try? ReportValue.parse(json: text)) != nil, "\(c): \(name) JSON does not parse")
            #expect(
                Self.nonFinitePaths(report.json).isEmpty,
                "\(c): \(name) non-finite numbers at \(Self.nonFinitePaths(report.json))"
            )
            // The whole report survives the plugin round trip.
            #expect((try? AnalyzerReport(reportValue: report.reportValue)) != nil, "\(c): \(name)")
            #expect(
                Self.unexplainedNulls(report.json).isEmpty,
                "\(c): \(name) null predictions without a reason at \(Self.unexplainedNulls(report.json))"
            )
            // The report says "not computed" rather than printing an empty table.
            #expect(report.tables.allSatisfy { !$0.rows.isEmpty }, "\(c): \(name) has an empty table")
            reports.append(report)
        }
        // What a shallow model cannot have is null with the reason.
        let multihop = reports[2].json
        let transition = reports[1].json
        let L = c.shape.layers
        if L <= 2 {
            #expect(
                multihop["insufficient"]?["distances_2_and_more"]?.stringValue == "needs at least 3 MoE layers",
                "\(c)"
            )
            let w3 = multihop["paths"]?["windows"]?.arrayValue?.first { $0["length"]?.intValue == 3 }
            #expect(w3?["top"] == .null && w3?["windows"] == .null, "\(c)")
            #expect(w3?["insufficient"]?.stringValue == "needs at least 3 MoE layers", "\(c)")
            #expect(reports[2].headlines.contains { $0.value == "not computed (needs at least 3 MoE layers)" }, "\(c)")
            let needs = L == 2 ? "needs at least 3 MoE layers" : "needs at least 2 MoE layers"
            #expect(reports[2].notes.contains { $0.hasPrefix("not computed:") && $0.contains(needs) }, "\(c)")
        }
        if L == 1 {
            #expect(multihop["insufficient"]?["distances"]?.stringValue == "needs at least 2 MoE layers", "\(c)")
            #expect(multihop["path_predictor"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers", "\(c)")
            #expect(transition["pooled"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers", "\(c)")
            #expect(
                transition["pooled"]?["prediction"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers",
                "\(c)"
            )
        }
        if L >= 4 { #expect(multihop["insufficient"] == nil, "\(c)") }
        let result = AnalysisResult(reports: reports, failures: [], statistics: StreamStatistics())
        #expect(!result.renderText().isEmpty)
        #expect(!result.renderMarkdown().isEmpty)
        #expect(HTMLReport.render(result).contains("</html>"))
    }
}
