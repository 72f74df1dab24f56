// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERouting
import MoERoutingPipeline

extension MoERoutingCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe traces: shape, records, tokens, journeys, domains, problems, phases.",
            discussion: """
                Examples:
                  moe-routing inspect ../shared/data/mixtral_humaneval_2problems_routing.jsonl
                  moe-routing inspect run.moetrace --format json
                """
        )

        @Argument(help: "Trace files (.jsonl, .moetrace, .npz). Several are read as one stream.")
        var traces: [String]

        @OptionGroup var read: ReadOptions

        @OptionGroup var phase: PhaseOption

        @Option(help: "Output format: text, json or markdown.")
        var format: OutputFormat = .text

        func run() throws {
            let inspection = try TraceInspection(
                traces: traces,
                readOptions: try read.traceOptions(),
                phase: phase.phase
            )
            switch format {
            case .json: print(inspection.json.jsonString(indent: 2))
            case .text: print(inspection.report.renderText(), terminator: "")
            case .markdown: print(inspection.report.renderMarkdown(), terminator: "")
            }
        }
    }
}
