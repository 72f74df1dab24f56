// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import DomainAnalyzer
public import MoERouting
import MoERoutingPlugins
import MultiHopAnalyzer
import TransitionAnalyzer

/// The analyzers that ship with the tool, and those loaded with `--plugin`.
public enum BuiltinAnalyzers {
    /// The default set for `analyze`.
    public static let defaultNames = ["transition", "multihop", "domain"]

    /// A registry with the built-ins (`transition`, `multihop`, `domain`, `summary`) and every
    /// plugin library given.
    ///
    /// ```swift
    /// let registry = try BuiltinAnalyzers.registry(plugins: ["./libExpertLoadPlugin.so"])
    /// let analyzer = try registry.make("expert-load")
    /// ```
    public static func registry(plugins: [String] = []) throws -> AnalyzerRegistry {
        try registry(plugins: plugins, multihopPairs: [])
    }

    /// A registry whose `multihop` keeps the given layer pairs `(l, j)` in full beside the
    /// adjacent ones (`--pairs`; see ``parseLayerPairs(_:)``).
    public static func registry(
        plugins: [String] = [],
        multihopPairs: [(earlier: Int, later: Int)]
    ) throws -> AnalyzerRegistry {
        let detail = multihopPairs.map { LayerPair($0.earlier, $0.later) }
        var r = AnalyzerRegistry()
        try r.register(
            "transition",
            summary:
                "single-hop layer l -> l+1: same-id rates vs chance, affinity matrices, MI, out-of-sample prediction"
        ) { TransitionAnalyzer() }
        try r.register(
            "multihop",
            summary: "distances 1..L-1: same-id rates, MI matrix, d-hop and path predictors, frequent paths"
        ) { MultiHopAnalyzer(detailPairs: detail) }
        try r.register(
            "domain",
            summary: "domain comparator: per-layer JS divergence with problem-level permutation p-values, transfer"
        ) { DomainAnalyzer() }
        try r.register("summary", summary: "tokens, records, journeys, domains, problems, phases") {
            TraceSummaryAnalyzer()
        }
        _ = try PluginLibrary.registerAll(paths: plugins, into: &r)
        return r
    }

    /// New instances of the analyzers named (built-ins, or those of the `plugins` libraries).
    ///
    /// ```swift
    /// let analyzers = try BuiltinAnalyzers.make(["summary"] + BuiltinAnalyzers.defaultNames)
    /// ```
    ///
    /// - Throws: The registry's error for an unknown name, or a plugin's loading error.
    public static func make(
        _ names: [String],
        plugins: [String] = [],
        multihopPairs: [(earlier: Int, later: Int)] = []
    ) throws -> [any RoutingAnalyzer] {
        let registry = try registry(plugins: plugins, multihopPairs: multihopPairs)
        return try names.map { try registry.make($0) }
    }

    /// Parses a `--pairs` value, `l:j[,l:j...]` (0-based MoE layers, l < j).
    ///
    /// ```swift
    /// let pairs = try BuiltinAnalyzers.parseLayerPairs("0:5,3:10")   // [(0, 5), (3, 10)]
    /// ```
    ///
    /// - Throws: an error whose description is one line naming the bad entry and the fix.
    public static func parseLayerPairs(_ text: String) throws -> [(earlier: Int, later: Int)] {
        try LayerPair.parseList(text).map { ($0.earlier, $0.later) }
    }
}
