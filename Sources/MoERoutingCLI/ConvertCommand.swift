// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import ArgumentParser
import MoERouting
import MoERoutingPipeline
public import MoERoutingTraces

extension TraceFormat: ExpressibleByArgument {}

extension MoERoutingCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert traces between seed JSONL, the binary .moetrace format and NumPy .npz.",
            discussion: """
                The output format follows OUT's extension (.jsonl, .moetrace, .npz) unless --format says. \
                Inputs may be .jsonl, .moetrace or .npz. Layer timings, capture settings, the \
                model shape and name, and declared domains are carried into .moetrace and .npz; \
                JSONL cannot hold them, and standard error lists what was left behind. \
                OUT is written under a temporary name beside it and renamed into place when complete: \
                a failure leaves an existing OUT as it was. An OUT that is one of the inputs is refused, \
                and so is an input with no routing records (unless --allow-empty).

                Examples:
                  moe-routing convert routing.jsonl routing.moetrace
                  moe-routing convert a.jsonl b.jsonl both.npz --shape mixtral-8x7b
                """
        )

        @Argument(help: "Input traces, then the output path (last).")
        var paths: [String]

        @Option(help: "Output format: jsonl, binary or npz.")
        var format: TraceFormat?

        @Flag(help: "Write the output even when the inputs hold no routing records.")
        var allowEmpty = false

        @OptionGroup var read: ReadOptions

        func validate() throws {
            guard paths.count >= 2 else { throw ValidationError("give at least one input and an output path") }
        }

        func run() throws {
            let conversion = TraceConversion(
                inputs: Array(paths.dropLast()),
                output: paths.last!,
                format: format,
                readOptions: try read.traceOptions(),
                allowEmpty: allowEmpty
            )
            let written = try conversion.run()
            let s = written.statistics
            print(
                "wrote \(conversion.output) (\(written.format.rawValue)): \(s.tokens) tokens, \(s.records) token-layer records, shape \(written.shape)"
            )
        }
    }
}
