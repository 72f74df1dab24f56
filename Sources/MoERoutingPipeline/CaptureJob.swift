// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
public import MoERouting
import MoERoutingTraces
import PythonRuntime
public import VLLMCapture

/// One capture, start to end: Python and vLLM start-up (the tiny model generated when no model
/// is named), the datasets, the trace writers and live analyzers, the generation, and clean-up
/// that leaves a readable trace whatever happens. ``capture(to:jsonl:analyzers:analysisSeed:alsoWrites:)``
/// is what `moe-routing collect` does; ``run(in:analyzers:analysisSeed:jsonl:)`` adds the live
/// analysis, the run facts and the capture's report section (`moe-routing run`).
///
/// ```swift
/// var job = CaptureJob(datasets: DatasetSelection(numProblems: 2))
/// job.engine.maxTokens = 16
/// let run = try job.run(in: "out/run", analyzers: try BuiltinAnalyzers.make(["summary", "transition"]))
/// try ReportFiles.write(run.result, to: "out/run")
/// ```
public struct CaptureJob: Sendable {
    /// The model directory or cached hub id; `nil` for the tiny Mixtral-architecture model,
    /// generated under `models/tiny-mixtral` when absent (and run in float32 unless
    /// ``engine``'s dtype says otherwise).
    public var model: String?
    /// The architecture of the tiny default model when ``model`` is `nil` (one of
    /// ``CapturePythonPackage/tinyArchitectures``; `nil`: `mixtral`), generated under
    /// `models/tiny-<arch>` when absent. Naming one together with ``model`` is an error.
    public var tinyArchitecture: String?
    /// How the engine starts and decodes; its `model` is set from ``model`` when the job starts.
    public var engine: EngineConfiguration
    /// The datasets (default: the built-in samples of HumanEval and GSM8K).
    public var datasets: DatasetSelection
    /// Router logits and timing capture.
    public var options: CaptureOptions
    /// The Python venv (`nil`: `MOE_ROUTING_VENV`, else the project's `.venv`).
    public var venv: String?
    /// Show vLLM's INFO log.
    public var verbose: Bool
    /// Print progress lines while generating.
    public var showsProgress: Bool
    /// The progress lines' label (`run`, `collect`).
    public var label: String
    /// Where the job's messages go.
    public var log: PipelineLog

    /// A job with the defaults: the tiny model, the built-in samples, eager mode, greedy decoding.
    public init(
        model: String? = nil,
        datasets: DatasetSelection = DatasetSelection(),
        options: CaptureOptions = CaptureOptions(),
        label: String = "run",
        log: PipelineLog = .standardError
    ) {
        self.model = model
        self.tinyArchitecture = nil
        self.engine = EngineConfiguration(model: model ?? "")
        self.datasets = datasets
        self.options = options
        self.venv = nil
        self.verbose = false
        self.showsProgress = true
        self.label = label
        self.log = log
    }

    /// `MOE_ROUTING_TEST_SLOW_STOP_SECONDS`: a test hook that holds an interrupted capture this
    /// long before it closes its files, as a slow last engine step would (tests of the second
    /// signal use it); unset in normal use.
    static let testSlowStopSeconds: Double? = ProcessInfo.processInfo.environment["MOE_ROUTING_TEST_SLOW_STOP_SECONDS"]
        .flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }

    /// Checks the job before anything starts: the dataset values, the engine's numbers, that
    /// the model can be found locally, and that timing is not asked for under graph compilation.
    ///
    /// - Throws: ``CaptureError/invalidOption(_:)`` with a one-line message naming the option.
    public func validate() throws {
        _ = try datasets.specs(samples: { "\($0)_sample.jsonl" })
        var configuration = engine
        configuration.model = model ?? "tiny"
        try configuration.validate()
        if let arch = tinyArchitecture {
            if model != nil {
                throw CaptureError.invalidOption(
                    "--arch \(arch) picks a tiny default model, but --model names one: drop one of them"
                )
            }
            if !CapturePythonPackage.tinyArchitectures.contains(arch) {
                throw CaptureError.invalidOption(
                    "--arch \(arch) is not a tiny model architecture: use one of \(CapturePythonPackage.tinyArchitectures.joined(separator: ", "))"
                )
            }
        }
        if let model, let problem = EngineConfiguration.modelLocationProblem(model) {
            throw CaptureError.invalidOption(problem)
        }
        if !engine.enforceEager && options.timing {
            throw CaptureError.invalidOption(
                "--timing needs eager mode: under --compile the MoE layer is one compiled region; drop one of them"
            )
        }
    }

    /// Runs the capture into `files`, feeding `analyzers` live. Before anything starts (Python,
    /// vLLM), every output is checked (``OutputPreflight``): the capture's files and `alsoWrites`
    /// (the summary, the report files) must be writable and none may be a dataset file.
    ///
    /// From the first routed token on, the first SIGINT or SIGTERM stops the run after the
    /// engine step in flight (``CaptureInterruption``); the outcome then says so.
    ///
    /// - Returns: The outcome; a failure during generation is in ``CaptureOutcome/error`` (the
    ///   files are closed and readable).
    /// - Throws: Errors before generation starts (outputs, venv, model, datasets, engine).
    public func capture(
        to files: CaptureFiles,
        jsonl: Bool,
        analyzers: [any RoutingAnalyzer],
        analysisSeed: UInt64 = 0x5EED,
        alsoWrites: [String] = []
    ) throws -> CaptureOutcome {
        let captureFiles = files.captureFiles(jsonl: jsonl, timing: options.timing)
        let traceDirectory = (files.trace as NSString).deletingLastPathComponent
        try OutputPreflight.check(
            files: captureFiles + alsoWrites.filter { !captureFiles.contains($0) },
            directories: traceDirectory.isEmpty ? [] : [traceDirectory],
            inputs: datasets.inputFiles
        )
        let environment = try PythonEnvironment.locate(explicitPath: venv)
        try CapturePythonPackage.prepare(environment: environment, verbose: verbose)
        var configuration = engine
        if let model {
            configuration.model = model
        } else {
            // The tiny model is float32; bfloat16 is slower on CPUs without AMX and near ties
            // would differ from the reference.
            if configuration.dtype == "auto" { configuration.dtype = "float32" }
            let arch = tinyArchitecture ?? "mixtral"
            configuration.model = CapturePythonPackage.defaultTinyModelPath(architecture: arch)
            if try CapturePythonPackage.ensureTinyModel(at: configuration.model, architecture: arch) {
                log("generated the tiny \(arch) model at \(configuration.model)")
            }
        }
        let specs = try datasets.specs(samples: CapturePythonPackage.samplePath)
        var problems: [Problem] = []
        for spec in specs { problems += try CapturePythonPackage.loadProblems(spec) }
        guard !problems.isEmpty else {
            throw PipelineError("the datasets gave no problems (check --num-problems and --offset)")
        }

        log("starting vLLM on \(configuration.model) (\(problems.count) problems)...")
        let engine = try VLLMEngine(configuration: configuration, prompts: problems.map(\.prompt))
        let d = engine.description
        log(
            String(
                format: "vLLM %@ ready in %.1f s: %@, %d MoE layers, %d experts, top-%d",
                d.vllmVersion,
                d.importSeconds + d.startSeconds,
                d.architecture,
                d.shape.layers,
                d.shape.experts,
                d.shape.topK
            )
        )
        log(d.engineChoices)

        let settings = runSettings(engine: engine, specs: specs, problems: problems)
        if !traceDirectory.isEmpty {
            try FileManager.default.createDirectory(atPath: traceDirectory, withIntermediateDirectories: true)
        }
        let domains = problems.reduce(into: [String]()) { if !$0.contains($1.domain) { $0.append($1.domain) } }
        let writer = try BinaryTraceWriter(path: files.trace, shape: d.shape, domains: domains, settings: settings)
        var sinks: [any RoutingBlockSink] = [writer]
        let mux = MultiplexAnalyzer(analyzers)
        let dispatcher: AnalysisDispatcher
        let recorder: CaptureRecorder
        do {
            if jsonl { sinks.append(try JSONLTraceWriter(path: files.jsonl)) }
            dispatcher = AnalysisDispatcher(analyzers: mux, sinks: sinks)
            try dispatcher.begin(AnalysisContext(shape: d.shape, settings: settings, seed: analysisSeed))
            recorder = try CaptureRecorder(
                dispatcher: dispatcher,
                outputsPath: files.outputs,
                timingsPath: options.timing ? files.timings : nil,
                showsProgress: showsProgress,
                label: label
            )
        } catch {
            // Nothing was captured yet: leave no temporary files behind.
            for sink in sinks { sink.discard() }
            throw error
        }

        // From here on the first SIGINT or SIGTERM stops the run after the step in flight and
        // the outputs are still written; the handler stays until the process exits, so a first
        // signal during the report does not cut it short. (Before this point nothing was
        // captured, and a signal ends the process as usual.)
        CaptureInterruption.install(
            hardQuitNote:
                "the trace so far then stays readable in \(writer.temporaryPath) (in \(writer.path) once closed)"
        )
        var summary: CaptureSummary?
        var failure: (any Error)?
        do {
            summary = try engine.capture(problems, options: options, observer: recorder)
        } catch {
            failure = error
        }
        if summary?.interrupted == true, let linger = CaptureJob.testSlowStopSeconds {
            // Test hook: a stop whose last engine step takes long (a large model on a GPU), so
            // that a test can send the second signal while the files are still open.
            Thread.sleep(forTimeInterval: linger)
        }
        // Whatever happened, close the files so the trace is complete and readable; a run that
        // did not finish every problem closes its trace marked interrupted.
        for sink in sinks {
            do {
                if let writer = sink as? BinaryTraceWriter, summary?.interrupted != false {
                    try writer.close(
                        interruptedAfter: summary?.outputs.count ?? recorder.finishedRequests,
                        of: problems.count
                    )
                } else {
                    try sink.close()
                }
            } catch {
                failure = failure ?? CaptureError.sinkFailed("\(error)")
            }
        }
        do { try recorder.close() } catch { failure = failure ?? error }
        if let summary {
            recorder.finishProgress(summary, total: problems.count)  // an interrupted run's notice is the caller's
            let unrouted = summary.unroutedPositions.values.reduce(0) {
                $0 + $1.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 }
            }
            if !summary.interrupted, unrouted > 0 {
                log(
                    "\(unrouted) positions of \(summary.unroutedPositions.count) problems were never routed (prefix cache hits); run.json lists them"
                )
            }
        } else if recorder.partialRequests > 0 {
            log(
                "\(recorder.finishedRequests) problems finished; the routing of \(recorder.partialRequests) unfinished ones was written as it stood"
            )
        }
        return CaptureOutcome(
            summary: summary,
            statistics: dispatcher.statistics,
            traceTotals: "\(writer.totals)",
            analyzers: mux,
            settings: settings,
            shape: d.shape,
            problems: problems,
            error: failure
        )
    }

    /// The trace header's settings: the engine's, then `capture.*` (datasets, problem count,
    /// router logits, timing).
    private func runSettings(engine: VLLMEngine, specs: [DatasetSpec], problems: [Problem]) -> [String: String] {
        var settings = engine.configuration.settings.merging(engine.description.settings) { a, _ in a }
        let samples = Set(DatasetSpec.builtinNames.compactMap { try? CapturePythonPackage.samplePath($0) })
        settings["capture.datasets"] = specs.map { spec in
            guard let file = spec.file else { return spec.name }
            return samples.contains(file) ? "\(spec.name) (built-in sample)" : "\(spec.name)=\(file)"
        }.joined(separator: ",")
        settings["capture.problems"] = String(problems.count)
        settings["capture.router_logits"] = String(options.routerLogits)
        settings["capture.timing"] = String(options.timing)
        return settings
    }
}
