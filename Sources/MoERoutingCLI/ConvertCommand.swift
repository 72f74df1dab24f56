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
            let inputs = try TraceInputs(paths: inputPaths, options: try read.traceOptions(), collectTimings: true)
            let sink = try openTraceSink(
                path: output, format: outFormat, shape: inputs.shape, domains: inputs.declaredDomains, settings: inputs.settings)
            let carrier = TimingCarrier(inputs: inputs, sink: sink)
            let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [sink])
            // The timing chunks read on the way to each block are written before it; nothing
            // half-written goes in place, and an existing OUT stays as it was on failure.
            try drain(dispatcher, source: inputs.source, context: AnalysisContext(shape: inputs.shape), eachBlock: carrier.carry) {
                for w in inputs.warnings { Console.warn(w) }
                try EmptyTraceCheck.require(
                    records: dispatcher.statistics.records, in: inputPaths,
                    skipped: inputs.skipped.values.reduce(0, +), allowEmpty: allowEmpty)
            }
            let left = carrier.leftBehind(format: outFormat)
            if !left.isEmpty { Console.warn("\(output): the target format cannot hold: \(left.joined(separator: ", "))") }
            let s = dispatcher.statistics
            print("wrote \(output) (\(outFormat.rawValue)): \(s.tokens) tokens, \(s.records) token-layer records, shape \(inputs.shape)")
        }
    }
}

/// Carries what a conversion copies besides blocks (layer timings) from the inputs into the
/// output, and says what the output's format cannot hold.
private final class TimingCarrier {
    let inputs: TraceInputs
    let sink: any RoutingBlockSink
    /// Timing records read but not written (the output cannot hold them).
    private(set) var droppedTimings = 0

    init(inputs: TraceInputs, sink: any RoutingBlockSink) {
        self.inputs = inputs
        self.sink = sink
    }

    /// Writes the timing records read since the last call, or counts them when the sink cannot.
    func carry() throws {
        let records = inputs.takeTimingRecords()
        guard !records.isEmpty else { return }
        if let timed = sink as? any LayerTimingSink {
            try timed.writeTimings(records)
        } else {
            droppedTimings += records.count
        }
    }

    /// What the inputs had that a file of `format` cannot hold, one phrase each.
    func leftBehind(format: TraceFormat) -> [String] {
        var out: [String] = []
        if droppedTimings > 0 { out.append("layer timings (\(droppedTimings) records)") }
        guard format == .jsonl else { return out }
        if !inputs.settings.isEmpty { out.append("capture settings (\(inputs.settings.count) key\(inputs.settings.count == 1 ? "" : "s"))") }
        guard inputs.shapeFromFile else { return out }  // inferred or stated: nothing is lost
        if let name = inputs.shape.name { out.append("the model name (\(name))") }
        out.append("the model shape (\(inputs.shape); state it with --layers \(inputs.shape.layers) --experts \(inputs.shape.experts) --top-k \(inputs.shape.topK) when reading it back)")
        return out
    }
}
