// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERouting
import MoERoutingTestKit

/// Synthetic analysis results for the report tests, shaped like a real run on a 32-layer,
/// 8-expert model: 31 per-layer-pair 8 × 8 heatmaps and a pooled one, a 32 × 32 heatmap, per-layer
/// usage heatmaps, line charts with dashed chance lines, bar charts with highlighted bars and
/// long path labels, tables, headlines, notes, a failure, and a plugin with a hostile name.
enum ReportFixtures {
    static let hostile = #"<script>&"'x"#

    /// A row-normalised random matrix.
    static func matrix(rows: Int, columns: Int, rng: inout SeededRandom) -> [[Double]] {
        (0..<rows).map { _ in
            let raw = (0..<columns).map { _ in Double(rng.next() % 1000) + 1 }
            let sum = raw.reduce(0, +)
            return raw.map { $0 / sum }
        }
    }

    /// The full-size result (32 layers, 8 experts).
    static func mixtralSized(layers L: Int = 32, experts E: Int = 8) -> AnalysisResult {
        var rng = SeededRandom(seed: 42)
        let labels = (0..<E).map(String.init)
        let pairs = L - 1
        var transitionFigures: [ReportFigure] = (0..<pairs).map { l in
            .heatmap(
                .init(
                    title: "top-1 layer \(l) -> \(l + 1): P(top1_\(l + 1) = j | top1_\(l) = i)",
                    xLabel: "top-1 expert at layer \(l + 1)",
                    yLabel: "top-1 expert at layer \(l)",
                    rowLabels: labels,
                    columnLabels: labels,
                    values: matrix(rows: E, columns: E, rng: &rng)
                )
            )
        }
        transitionFigures.append(
            .heatmap(
                .init(
                    title: "Pooled affinity P(j in S_l+1 | i in S_l), all layer pairs",
                    xLabel: "expert j at layer l+1",
                    yLabel: "expert i at layer l",
                    rowLabels: labels,
                    columnLabels: labels,
                    values: matrix(rows: E, columns: E, rng: &rng)
                )
            )
        )
        let xs = (0..<pairs).map(Double.init)
        let rate = xs.map { _ in 0.1 + Double(rng.next() % 100) / 1000 }
        transitionFigures.append(
            .lines(
                .init(
                    title: "Same-id rates by layer pair, with chance",
                    xLabel: "layer l (pair l -> l+1)",
                    yLabel: "rate",
                    x: xs,
                    series: [
                        .init(name: "top-1 same", values: rate),
                        .init(name: "top-1 same, chance", values: xs.map { _ in 0.125 }, dashed: true),
                        .init(name: "overlap fraction", values: rate.map { $0 + 0.12 }),
                        .init(name: "overlap fraction, chance", values: xs.map { _ in 0.25 }, dashed: true),
                    ]
                )
            )
        )
        transitionFigures.append(
            .lines(
                .init(
                    title: "Mutual information between consecutive top-1 choices, with the shuffled null",
                    xLabel: "layer l",
                    yLabel: "bits",
                    x: xs,
                    series: [
                        .init(name: "MI", values: xs.map { 0.05 + 0.002 * $0 }),
                        .init(name: "shuffled null", values: xs.map { _ in 0.012 }, dashed: true),
                    ]
                )
            )
        )
        let transition = AnalyzerReport(
            analyzer: "transition",
            title: "Layer-to-layer transitions",
            json: ["pairs": .int(pairs)],
            tables: [
                ReportTable(
                    title: "Per layer pair",
                    columns: ["pair", "top-1 same", "chance", "MI (bits)", "null", "p"],
                    rows: (0..<pairs).map { l in ["\(l)->\(l + 1)", "0.131", "0.125", "0.061", "0.012", "0.001"] }
                )
            ],
            figures: transitionFigures,
            headlines: [
                .init(label: "top-1 same id, next layer", value: "0.131", reference: "chance 0.125"),
                .init(label: "MI, next layer", value: "0.061 bits", reference: "shuffled null 0.012 bits"),
            ],
            notes: ["Expert ids are not shared across layers; same-id rates sit at chance."]
        )

        let distance: [[Double]] = (0..<L).map { (i: Int) -> [Double] in
            (0..<L).map { (j: Int) -> Double in i == j ? .nan : 1 / Double(abs(i - j) + 1) }
        }
        let paths: [String] = (0..<20).map { (i: Int) -> String in
            let a = i % 8
            let b = (i * 3) % 8
            let c = (i * 5 + 1) % 8
            return "\(a)→\(b)→\(c)"
        }
        let multihop = AnalyzerReport(
            analyzer: "multihop",
            title: "Multi-hop predictability",
            json: [:],
            figures: [
                .heatmap(
                    .init(
                        title: "Top-1 agreement between layers",
                        xLabel: "layer",
                        yLabel: "layer",
                        rowLabels: (0..<L).map(String.init),
                        columnLabels: (0..<L).map(String.init),
                        values: distance
                    )
                ),
                .bars(
                    .init(
                        title: "Most frequent expert paths over three layers",
                        xLabel: "expert path",
                        yLabel: "tokens",
                        labels: paths,
                        values: (0..<20).map { Double(200 - 7 * $0) }
                    )
                ),
            ],
            headlines: [.init(label: "best hop-2 accuracy", value: "0.210", reference: "random 0.125")]
        )

        let usage = { (name: String) -> ReportFigure in
            .heatmap(
                .init(
                    title: "Expert usage share per layer: \(name)",
                    xLabel: "expert",
                    yLabel: "layer",
                    rowLabels: (0..<L).map(String.init),
                    columnLabels: labels,
                    values: matrix(rows: L, columns: E, rng: &rng)
                )
            )
        }
        let domain = AnalyzerReport(
            analyzer: "domain",
            title: "Code versus math",
            json: [:],
            tables: [
                ReportTable(
                    title: "Domains",
                    columns: ["domain", "problems", "tokens"],
                    rows: [["humaneval", "2", "512"], ["gsm8k", "2", "420"]]
                )
            ],
            figures: [
                usage("humaneval"), usage("gsm8k"),
                .bars(
                    .init(
                        title: "JS divergence of expert usage per layer (highlighted: p < 0.05)",
                        xLabel: "layer",
                        yLabel: "JS divergence (bits)",
                        labels: (0..<L).map(String.init),
                        values: (0..<L).map { 0.01 + Double($0 % 7) / 100 },
                        highlighted: (0..<L).map { $0 % 7 >= 5 }
                    )
                ),
            ],
            headlines: [.init(label: "max JS divergence", value: "0.070 (layer 5)", reference: "permutation p < 0.05")]
        )

        let plugin = AnalyzerReport(
            analyzer: "expert_load",
            title: "Expert load \(hostile)",
            json: [:],
            tables: [
                ReportTable(
                    title: "Load \(hostile)",
                    columns: ["layer", hostile],
                    rows: [["0", hostile], ["1", "1.250"]]
                )
            ],
            figures: [
                .heatmap(
                    .init(
                        title: "Expert load share by layer \(hostile)",
                        xLabel: "expert \(hostile)",
                        yLabel: "layer",
                        rowLabels: (0..<L).map(String.init),
                        columnLabels: labels.map { $0 + hostile },
                        values: matrix(rows: L, columns: E, rng: &rng)
                    )
                )
            ],
            headlines: [
                .init(label: "most imbalanced layer \(hostile)", value: "layer 3: 1.412", reference: "even load 1.000")
            ],
            notes: ["every slot counts \(hostile)"]
        )

        var statistics = StreamStatistics()
        statistics.tokens = 932
        statistics.records = 932 * L - 40
        statistics.completeJourneys = 927
        statistics.blocks = 4
        return AnalysisResult(
            reports: [transition, multihop, domain, plugin],
            failures: [AnalyzerFailure(analyzer: "broken", stage: "finish", message: "division by zero \(hostile)")],
            statistics: statistics,
            run: [
                "inputs": [
                    "../shared/data/mixtral_humaneval_2problems_routing.jsonl",
                    "../shared/data/mixtral_gsm8k_2problems_routing.jsonl",
                ],
                "shape": ["layers": .int(L), "experts": .int(E), "top_k": 2],
                "skipped_records": [:],
                "seed": 24301,
                "tokens": 932,
            ]
        )
    }

    /// How many heatmap cells ``mixtralSized(layers:experts:)`` draws.
    static func heatmapCells(layers L: Int = 32, experts E: Int = 8) -> Int {
        (L - 1) * E * E + E * E + L * L + 2 * L * E + L * E
    }
}
