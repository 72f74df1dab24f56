// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting
public import MoERoutingTraces

/// What `moe-routing convert` does: reads traces as one stream and writes it in another format
/// (`.jsonl`, `.moetrace`, `.npz`), carrying layer timings, capture settings, the model shape
/// and name and the declared domains where the output can hold them, and saying what it cannot.
/// The output is written under a temporary name and renamed into place when complete: a failure
/// leaves an existing file as it was. An output that is one of the inputs is refused, and so is
/// an input with no routing records (unless ``allowEmpty``).
///
/// ```swift
/// let converted = try TraceConversion(inputs: ["routing.jsonl"], output: "routing.moetrace").run()
/// print(converted.statistics.tokens)
/// ```
public struct TraceConversion {
    /// The input traces.
    public var inputs: [String]
    /// The output path.
    public var output: String
    /// The output format; `nil` takes it from the output's extension.
    public var format: TraceFormat?
    /// How the inputs are read.
    public var readOptions: TraceReadOptions
    /// Write the output even when the inputs hold no routing records.
    public var allowEmpty: Bool
    /// Where warnings go (the readers', and what the output format cannot hold).
    public var log: PipelineLog

    /// A conversion of `inputs` into `output` with strict reading.
    public init(
        inputs: [String],
        output: String,
        format: TraceFormat? = nil,
        readOptions: TraceReadOptions = TraceReadOptions(),
        allowEmpty: Bool = false,
        log: PipelineLog = .standardError
    ) {
        self.inputs = inputs
        self.output = output
        self.format = format
        self.readOptions = readOptions
        self.allowEmpty = allowEmpty
        self.log = log
    }

    /// What was written.
    public struct Written: Sendable {
        /// The output's format.
        public var format: TraceFormat
        /// What the stream held.
        public var statistics: StreamStatistics
        /// The stream's shape.
        public var shape: ModelShape
    }

    /// Converts.
    ///
    /// - Throws: ``PipelineError`` when the output's format cannot be told or the inputs hold no
    ///   routing records; the readers' and writer's errors.
    public func run() throws -> Written {
        guard let outFormat = format ?? TraceFormat(path: output) else {
            throw PipelineError(
                "cannot tell the output format of \(output): name it .jsonl, .moetrace or .npz, or give --format"
            )
        }
        try OutputPreflight.check(files: [output], inputs: inputs)
        let traces = try TraceInputs(paths: inputs, options: readOptions, collectTimings: true)
        let sink = try openTraceSink(
            path: output,
            format: outFormat,
            shape: traces.shape,
            domains: traces.declaredDomains,
            settings: traces.settings
        )
        let carrier = TimingCarrier(inputs: traces, sink: sink)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [sink])
        // The timing chunks read on the way to each block are written before it; nothing
        // half-written goes in place, and an existing output stays as it was on failure.
        try dispatcher.drain(traces.source, context: AnalysisContext(shape: traces.shape), eachBlock: carrier.carry) {
            for w in traces.warnings { log(w) }
            try EmptyTraceCheck.require(
                records: dispatcher.statistics.records,
                in: inputs,
                skipped: traces.skipped.values.reduce(0, +),
                allowEmpty: allowEmpty
            )
        }
        let left = carrier.leftBehind(format: outFormat)
        if !left.isEmpty { log("\(output): the target format cannot hold: \(left.joined(separator: ", "))") }
        return Written(format: outFormat, statistics: dispatcher.statistics, shape: traces.shape)
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
        if !inputs.settings.isEmpty {
            out.append("capture settings (\(inputs.settings.count) key\(inputs.settings.count == 1 ? "" : "s"))")
        }
        guard inputs.shapeFromFile else { return out }  // inferred or stated: nothing is lost
        if let name = inputs.shape.name { out.append("the model name (\(name))") }
        out.append(
            "the model shape (\(inputs.shape); state it with --layers \(inputs.shape.layers) --experts \(inputs.shape.experts) --top-k \(inputs.shape.topK) when reading it back)"
        )
        return out
    }
}
