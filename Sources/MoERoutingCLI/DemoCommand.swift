// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingPipeline
import MoERoutingTestKit
import MoERoutingTraces

extension MoERoutingCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a synthetic two-domain trace, write it, analyze it and write a report.",
            discussion: """
                Needs no model and no Python: a seeded generator makes routing with known \
                structure (each layer's top-1 follows a fixed permutation of the previous one with \
                probability --dependence; the two domains use different permutations). Writes \
                under --output: the trace (demo.moetrace), the report (report.html, report.json, \
                report.md, report.txt) and run.json.

                Example:
                  moe-routing demo --output out/demo
                """
        )

        @Option(help: ArgumentHelp("Directory for the trace and the report.", valueName: "dir"))
        var output = "out/demo"

        @Option(help: "Problems per domain.")
        var problems = 12

        @Option(help: "Tokens per problem.")
        var tokens = 200

        @Option(help: "Probability that a layer's top-1 follows the previous layer's (0...1).")
        var dependence = 0.3

        @Option(help: "The generator's seed.")
        var seed: UInt64 = 7

        @Option(help: "Seed for shuffled nulls, permutation tests and bootstraps (default: --seed).")
        var analysisSeed: UInt64?

        @OptionGroup var shape: ShapeOptions

        @OptionGroup var multihopPairs: PairsOption

        func validate() throws {
            guard (0...1).contains(dependence) else { throw ValidationError("--dependence must be within 0...1") }
            guard problems > 0, tokens > 0 else { throw ValidationError("--problems and --tokens must be positive") }
        }

        func run() throws {
            let shape = try self.shape.statedShape() ?? .mixtral8x7B
            try multihopPairs.check(layers: shape.layers)
            let tracePath = (output as NSString).appendingPathComponent("demo.moetrace")
            try OutputPreflight.check(files: [tracePath] + ReportFiles.paths(in: output), directories: [output])
            var generator = SyntheticRouting(shape: shape, seed: seed, dependence: dependence, missingRate: 0.002)
            let blocks = ["humaneval-like", "gsm8k-like"].map {
                generator.makeBlock(problems: problems, tokensPerProblem: tokens, domain: $0)
            }
            let settings = ["generator": "SyntheticRouting", "dependence": "\(dependence)", "seed": "\(seed)"]
            let writer = try BinaryTraceWriter(path: tracePath, shape: shape, settings: settings)
            do {
                for b in blocks { try writer.write(b) }
                try writer.close()
            } catch {
                writer.discard()
                throw error
            }
            let result = try AnalysisRunner.run(
                source: try BinaryTraceReader(path: tracePath, options: TraceReadOptions()),
                analyzers: try BuiltinAnalyzers.make(
                    ["summary"] + BuiltinAnalyzers.defaultNames,
                    multihopPairs: try multihopPairs.layerPairs()
                ),
                context: AnalysisContext(shape: shape, settings: settings, seed: analysisSeed ?? seed)
            ) {
                var facts = RunFacts([.init("inputs", [.string(tracePath)])])
                facts.appendSettings(settings, key: "generator")
                return facts
            }
            try emit(result, format: .text, output: output)
            Console.warn("trace: \(tracePath)")
        }
    }
}
