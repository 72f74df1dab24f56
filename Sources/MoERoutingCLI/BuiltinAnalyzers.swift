// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import DomainAnalyzer
import MoERouting
import MoERoutingPlugins
import MultiHopAnalyzer
import TransitionAnalyzer

/// The analyzers that ship with the tool, and those loaded with `--plugin`.
enum BuiltinAnalyzers {
    /// The default set for `analyze`.
    static let defaultNames = ["transition", "multihop", "domain"]

    /// A registry with the built-ins and every plugin library given.
    static func registry(plugins: [String]) throws -> AnalyzerRegistry {
        var r = AnalyzerRegistry()
        try r.register("transition", summary: "single-hop layer l -> l+1: same-id rates vs chance, affinity matrices, MI, out-of-sample prediction") { TransitionAnalyzer() }
        try r.register("multihop", summary: "distances 1..L-1: same-id rates, MI matrix, d-hop and path predictors, frequent paths") { MultiHopAnalyzer() }
        try r.register("domain", summary: "domain comparator: per-layer JS divergence with problem-level permutation p-values, transfer") { DomainAnalyzer() }
        try r.register("summary", summary: "tokens, records, journeys, domains, problems, phases") { TraceSummaryAnalyzer() }
        _ = try PluginLibrary.registerAll(paths: plugins, into: &r)
        return r
    }
}
