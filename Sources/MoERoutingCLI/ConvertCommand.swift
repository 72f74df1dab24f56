// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERouting
import MoERoutingTraces

extension TraceFormat: ExpressibleByArgument {}

extension MoERoutingCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert traces between seed JSONL, the binary .moetrace format and NumPy .npz.",
            discussion: """
                The output format follows OUT's extension (.jsonl, .moetrace, .npz) unless --format says. \
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

        @Flag(name: .customLong("allow-empty"), help: "Write the output even when the inputs hold no routing records.")
        var allowEmpty = false

        @OptionGroup var read: ReadOptions

        func validate() throws {
            guard paths.count >= 2 else { throw ValidationError("give at least one input and an output path") }
        }

        func run() throws {
            let output = paths.last!
            guard let outFormat = format ?? TraceFormat(path: output) else {
                throw CLIError("cannot tell the output format of \(output): name it .jsonl, .moetrace or .npz, or give --format")
            }
            let inputPaths = Array(paths.dropLast())
            try OutputPreflight.check(files: [output], inputs: inputPaths)
            let inputs = try TraceInputs(paths: inputPaths, options: try read.traceOptions())
            let sink = try openTraceSink(path: output, format: outFormat, shape: inputs.shape, settings: inputs.settings)
            let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [sink])
            try drain(dispatcher, source: inputs.source, context: AnalysisContext(shape: inputs.shape)) {
                for w in inputs.warnings { Console.warn(w) }
                try EmptyTraceCheck.require(
                    records: dispatcher.statistics.records, in: inputPaths,
                    skipped: inputs.skipped.values.reduce(0, +), allowEmpty: allowEmpty)
            }
            let s = dispatcher.statistics
            print("wrote \(output) (\(outFormat.rawValue)): \(s.tokens) tokens, \(s.records) token-layer records, shape \(inputs.shape)")
        }
    }
}
