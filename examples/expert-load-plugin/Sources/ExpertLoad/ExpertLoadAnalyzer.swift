// speculative-moe example plugin
// SPDX-License-Identifier: Apache-2.0

// A complete third-party analyzer: per-layer expert load (how many top-k selections each expert
// receives) and its imbalance, the figure an expert-parallel engine sizes its capacity by.
// It depends on two library products: MoERouting (the analyzer protocol and the report) and
// AnalysisSupport (the statistics and number formatting the built-in analyzers share).

import AnalysisSupport
public import MoERouting

/// Counts, per MoE layer, how many of the token-slot selections each expert receives, and
/// reports each layer's load shares and imbalance (max load / mean load; 1.0 is perfectly even).
///
/// ```swift
/// var registry = AnalyzerRegistry()
/// try registry.register("expert-load", summary: ExpertLoadAnalyzer.summary) { ExpertLoadAnalyzer() }
/// ```
public final class ExpertLoadAnalyzer: RoutingAnalyzer {
    /// One line for registries.
    public static let summary = "per-layer expert load shares and imbalance (max/mean)"

    public let name = "expert-load"
    private var shape: ModelShape?
    /// counts[l * E + e]: selections of expert e at layer l (every slot of the top-k set).
    private var counts: [Int] = []
    private var tokens = 0

    public init() {}

    public func begin(_ context: AnalysisContext) throws {
        shape = context.shape
        counts = Array(repeating: 0, count: context.shape.layers * context.shape.experts)
    }

    public func consume(_ block: RoutingBlock) throws {
        guard let shape, block.shape.layers == shape.layers, block.shape.experts == shape.experts else {
            throw RoutingError.invalidShape("block shape \(block.shape) differs from the run's")
        }
        let L = shape.layers
        let E = shape.experts
        let k = block.shape.topK
        tokens += block.tokenCount
        for t in 0..<block.tokenCount {
            for l in 0..<L where block.isPresent(token: t, layer: l) {
                for j in 0..<k { counts[l * E + block.expert(token: t, layer: l, slot: j)] += 1 }
            }
        }
    }

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        guard o.counts.count == counts.count else { throw RoutingError.incompatibleMerge("different shapes") }
        for i in counts.indices { counts[i] += o.counts[i] }
        tokens += o.tokens
    }

    public func finish() throws -> AnalyzerReport {
        guard let shape else { throw RoutingError.analyzerFailed(name: name, message: "finish before begin") }
        let L = shape.layers
        let E = shape.experts
        var shares: [[Double]] = []
        var imbalance: [Double] = []
        for l in 0..<L {
            let row = counts[(l * E)..<((l + 1) * E)]
            let total = row.reduce(0, +)
            shares.append(row.map { total > 0 ? Double($0) / Double(total) : 0 })
            let mean = Double(total) / Double(E)
            imbalance.append(total > 0 ? Double(row.max() ?? 0) / mean : .nan)
        }
        let layers: [ReportValue] = (0..<L).map { l in
            ["layer": .int(l), "shares": .array(shares[l].map { .number($0) }), "imbalance": .number(imbalance[l])]
        }
        let worst = imbalance.indices.filter { imbalance[$0].isFinite }.max { imbalance[$0] < imbalance[$1] }
        // Three decimals, "-" where a layer received no selections (as in the built-in analyzers).
        func f(_ x: Double) -> String { ReportFormat.fixed(x, 3) }
        return AnalyzerReport(
            analyzer: name,
            title: "Expert load (example plugin)",
            json: ["shape": ReportFormat.shape(shape), "tokens": .int(tokens), "layers": .array(layers)],
            tables: [
                ReportTable(
                    title: "Load imbalance per layer (max / mean selections; 1.000 = even)",
                    columns: ["layer", "imbalance", "busiest expert", "its share"],
                    rows: (0..<L).map { l in
                        let busiest = shares[l].indices.max { shares[l][$0] < shares[l][$1] } ?? 0
                        return ["\(l)", f(imbalance[l]), "\(busiest)", f(shares[l][busiest])]
                    }
                )
            ],
            figures: [
                .heatmap(
                    .init(
                        title: "Expert load share by layer",
                        xLabel: "expert",
                        yLabel: "layer",
                        rowLabels: (0..<L).map(String.init),
                        columnLabels: (0..<E).map(String.init),
                        values: shares
                    )
                )
            ],
            headlines: worst.map {
                [
                    AnalyzerReport.Headline(
                        label: "most imbalanced layer",
                        value: "layer \($0): \(f(imbalance[$0]))",
                        reference: "even load \(f(1))"
                    )
                ]
            } ?? [],
            notes: ["every slot of the top-\(shape.topK) set counts as one selection"]
        )
    }
}
