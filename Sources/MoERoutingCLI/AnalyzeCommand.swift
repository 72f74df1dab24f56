// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingPipeline

extension MoERoutingCommand {
    struct Analyze: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run analyzer plugins over traces and print or write their reports.",
            discussion: """
                With --format json, standard output is one JSON object keyed by analyzer name \
                (keys documented in docs/analyzers.md). With --output DIR, report.html (charts, \
                self-contained), report.json, report.md, report.txt and run.json are written there too \
                (DIR is checked before the analysis starts; each file is written under a temporary name \
                and renamed into place). An analyzer that fails is reported \
                on standard error and dropped; the others go on, and the exit code is 3. Inputs with no \
                routing records are refused (unless --allow-empty), and so is a file given twice or a \
                problem that two inputs hold (a trace and its converted copy): its counts would double.

                Examples:
                  moe-routing analyze ../shared/data/mixtral_*_routing.jsonl
                  moe-routing analyze run.moetrace --analyzer transition multihop --format json
                  moe-routing analyze trace.jsonl --domain humaneval --plugin ./libExpertLoadPlugin.so --analyzer expert-load
                  moe-routing analyze run.npz --phase decode
                  moe-routing analyze raw_capture.jsonl --positions by-order --interleaved
                  moe-routing analyze --list-analyzers

                With --lenient, bad records are skipped: standard error, run.json and the \
                "input" member of the JSON output count them by reason, and every report opens \
                with a notice saying so.
                """
        )

        @Argument(help: "Trace files (.jsonl, .moetrace, .npz). Several are read as one stream.")
        var traces: [String] = []

        @Option(parsing: .upToNextOption, help: "Analyzers to run (default: transition multihop domain).")
        var analyzer: [String] = []

        @Option(help: ArgumentHelp("A plugin shared library to load (repeatable).", valueName: "lib.so"))
        var plugin: [String] = []

        @Option(help: "Output format on standard output: text, json or markdown.")
        var format: OutputFormat = .text

        @Option(help: ArgumentHelp("Also write report files into this directory.", valueName: "dir"))
        var output: String?

        @Option(help: "Seed for shuffled nulls, permutation tests and bootstraps.")
        var analysisSeed: UInt64 = 0x5EED

        @Flag(help: "List the available analyzers (with plugins) and exit.")
        var listAnalyzers = false

        @Flag(help: "Analyze even when the traces hold no routing records (empty tables).")
        var allowEmpty = false

        @OptionGroup var read: ReadOptions

        @OptionGroup var phase: PhaseOption

        @OptionGroup var multihopPairs: PairsOption

        func validate() throws {
            if !listAnalyzers && traces.isEmpty { throw ValidationError("give at least one trace file") }
        }

        func run() throws {
            let registry = try BuiltinAnalyzers.registry(plugins: plugin, multihopPairs: try multihopPairs.layerPairs())
            if listAnalyzers {
                for e in registry.allEntries { print("\(e.name)\t\(e.summary)") }
                return
            }
            let instances = try (analyzer.isEmpty ? BuiltinAnalyzers.defaultNames : analyzer).map {
                try registry.make($0)
            }
            var analysis = TraceAnalysis(
                traces: traces,
                analyzers: instances,
                readOptions: try read.traceOptions(),
                phase: phase.phase,
                seed: analysisSeed
            )
            analysis.allowEmpty = allowEmpty
            analysis.reportDirectory = output
            let result = try analysis.run()
            try emit(
                result,
                format: format,
                output: output,
                subtitle: traces.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
            )
            if !result.failures.isEmpty { throw ExitCode(3) }
        }
    }
}
