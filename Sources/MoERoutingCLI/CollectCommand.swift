// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERouting
import MoERoutingTraces
import PythonRuntime
import VLLMCapture

extension MoERoutingCommand {
    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run vLLM in this process on a dataset and write every routing decision to a trace.",
            discussion: """
                vLLM runs inside moe-routing on the embedded Python (the venv made by `moe-routing \
                setup`); a hook on its MoE router hands every routing decision to Swift while the \
                problems, all submitted together, are generated. Writes the binary trace (--output), \
                the generated outputs beside it (<trace>.outputs.jsonl), the run's counts, dropped \
                rows, unrouted positions, timing shares and router-logit statistics \
                (<trace>.capture.json), with --jsonl a seed-format JSONL trace (<trace>.jsonl), and \
                with --timing per-step routing and MoE-layer times (<trace>.timings.jsonl). With no --model, the tiny Mixtral-architecture model is \
                generated under models/tiny-mixtral; with no --dataset, four built-in HumanEval and \
                four GSM8K prompts are used. Ctrl-C (SIGINT) or SIGTERM stops after the engine \
                step in flight: the trace is closed marked interrupted (unfinished problems' \
                routing so far kept), <trace>.capture.json says "interrupted", and the exit code \
                is 130 (143 after SIGTERM); a second signal quits at once, leaving the trace \
                readable up to its last complete chunk.

                Examples:
                  moe-routing collect --output out/tiny.moetrace
                  moe-routing collect --model /models/Mixtral-8x7B-v0.1-AWQ --quantization awq \\
                      --dataset humaneval=../shared/data/humaneval.jsonl \\
                      --num-problems 20 --output out/humaneval.moetrace --jsonl
                """
        )

        @OptionGroup var capture: CaptureCommandOptions

        @Option(help: ArgumentHelp("The binary trace to write (.moetrace).", valueName: "path"))
        var output: String = "out/collect/trace.moetrace"

        @Flag(help: "Also write the routing as seed-format JSONL (<trace without extension>.jsonl).")
        var jsonl = false

        func run() throws {
            let paths = CapturePaths(trace: output)
            let job = try CaptureJob(options: capture, label: "collect")
            let outcome = try job.execute(paths: paths, jsonl: jsonl, analyzers: [], alsoWrites: [paths.summary])
            if let summary = outcome.summary {
                var members: [ReportValue.Member] = [
                    .init("trace", .string(paths.trace)),
                    .init("settings", .object(outcome.settings.keys.sorted().map { .init($0, .string(outcome.settings[$0] ?? "")) })),
                    .init("capture", summary.reportValue),
                ]
                if let stop = outcome.interruption {
                    members.append(.init("interrupted", stop.reportValue))
                    Console.warn(stop.notice)
                }
                let info: ReportValue = .object(members)
                try AtomicOutputFile.write(Array((info.jsonString(indent: 2) + "\n").utf8), to: paths.summary)
                Console.warn("summary: \(paths.summary)")
            }
            Console.warn("trace: \(paths.trace) (\(outcome.traceTotals))")
            Console.warn("outputs: \(paths.outputs)")
            if jsonl { Console.warn("jsonl: \(paths.jsonl)") }
            if capture.timing { Console.warn("timings: \(paths.timings)") }
            try outcome.rethrow()
            try outcome.exitIfInterrupted()
        }
    }
}

/// Engine, dataset and capture options shared by `collect` and `run`.
struct CaptureCommandOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Model directory, or a Hugging Face repo id already in the local hub cache (nothing is downloaded; default: the tiny model, generated under models/tiny-mixtral when absent).",
        valueName: "path"))
    var model: String?

    @Option(help: ArgumentHelp(
        "Dataset: humaneval or gsm8k (from a local JSONL copy: humaneval=PATH), or jsonl:PATH; repeat for several domains (default: the built-in samples of both).",
        valueName: "name[=path]"))
    var dataset: [String] = []

    @Option(name: .customLong("prompt-field"), help: ArgumentHelp("The prompt field of jsonl:PATH datasets (default: prompt).", valueName: "name"))
    var promptField: String?

    // Numbers are parsed `.unconditional`ly, so that a negative value reaches validate()
    // ("must be a positive integer") instead of reading as an option ("Missing value").
    @Option(name: .customLong("num-problems"), parsing: .unconditional, help: "Problems to take from each dataset, a positive integer (default: all).")
    var numProblems: Int?

    @Option(parsing: .unconditional, help: "Problems to skip at the start of each dataset.")
    var offset: Int = 0

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "New tokens per problem.")
    var maxTokens: Int = 256

    @Option(help: "Model dtype: auto, float32, bfloat16, float16.")
    var dtype: String = "auto"

    @Option(help: "Quantization method (awq, fp8, ...).")
    var quantization: String?

    @Option(help: "A tokenizer other than the model's.")
    var tokenizer: String?

    @Option(name: .customLong("max-model-len"), parsing: .unconditional, help: "Longest sequence, prompt plus new tokens.")
    var maxModelLength: Int = 2048

    @Option(name: .customLong("max-num-seqs"), parsing: .unconditional, help: "Most sequences decoded at once.")
    var maxConcurrentSequences: Int = 16

    @Option(name: .customLong("max-num-batched-tokens"), parsing: .unconditional, help: "Most tokens per engine step (small values chunk long prompts).")
    var maxBatchedTokens: Int?

    @Flag(inversion: .prefixedNo, help: "Chunked prefill (default: vLLM's choice).")
    var chunkedPrefill: Bool?

    @Flag(name: .customLong("prefix-caching"), help: "Turn prefix caching on (cached prompt positions are never routed; the report lists them).")
    var prefixCaching = false

    @Flag(help: "Run under vLLM's graph compilation instead of eager mode (routing arrives through a custom op; slower start-up, no --timing).")
    var compile = false

    @Option(help: "Device: cpu or cuda (default: vLLM's choice).")
    var device: String?

    @Option(parsing: .unconditional, help: "Engine seed; sampled decoding seeds problem i with seed + i.")
    var seed: Int = 0

    @Option(parsing: .unconditional, help: "0 for greedy decoding; above 0, sample with this temperature.")
    var temperature: Double = 0

    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Nucleus sampling's p (with --temperature).")
    var topP: Double = 1

    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past the end-of-sequence token.")
    var ignoreEOS = false

    @Option(name: .customLong("kv-cache-gib"), parsing: .unconditional, help: "CPU KV-cache size in GiB (default 1, or VLLM_CPU_KVCACHE_SPACE).")
    var kvCacheGiB: Double?

    @Option(name: .customLong("gpu-memory-utilization"), parsing: .unconditional, help: "Fraction of GPU memory vLLM may use.")
    var gpuMemoryUtilization: Double?

    @Flag(name: .customLong("trust-remote-code"), help: "Let the model's own Python code run.")
    var trustRemoteCode = false

    @Flag(name: .customLong("router-logits"), help: "Also capture router logits over all experts (entropy and k/k+1 margin per layer in run.json).")
    var routerLogits = false

    @Flag(help: "Time routing and the whole MoE layer per step and layer (kept in the trace, and in <trace>.timings.jsonl; shares in run.json).")
    var timing = false

    @Option(help: ArgumentHelp("The Python venv (default: MOE_ROUTING_VENV, else .venv in the project).", valueName: "path"))
    var venv: String?

    @Flag(help: "Show vLLM's INFO log.")
    var verbose = false

    @Flag(name: .customLong("no-progress"), help: "Print no progress lines.")
    var noProgress = false

    /// The local files the capture reads (dataset files: `NAME=PATH`, `jsonl:PATH`), which no
    /// output may replace.
    var inputFiles: [String] {
        dataset.compactMap { value in
            if value.hasPrefix("jsonl:") { return String(value.dropFirst("jsonl:".count)) }
            guard let eq = value.firstIndex(of: "=") else { return nil }
            return String(value[value.index(after: eq)...])
        }
    }

    func validate() throws {
        do {
            _ = try datasetSpecs(samples: { "\($0)_sample.jsonl" })
            try engineConfiguration(model: model ?? "tiny").validate()
            if let model, let problem = EngineConfiguration.modelLocationProblem(model) {
                throw ValidationError(problem)
            }
            if compile && timing {
                throw ValidationError("--timing needs eager mode: under --compile the MoE layer is one compiled region; drop one of them")
            }
        } catch let error as CaptureError {
            throw ValidationError(error.description)
        }
    }

    /// The engine configuration for `model`.
    func engineConfiguration(model: String) -> EngineConfiguration {
        var c = EngineConfiguration(model: model)
        c.dtype = dtype
        c.quantization = quantization
        c.tokenizer = tokenizer
        c.maxModelLength = maxModelLength
        c.maxConcurrentSequences = maxConcurrentSequences
        c.maxBatchedTokens = maxBatchedTokens
        c.chunkedPrefill = chunkedPrefill
        c.prefixCaching = prefixCaching
        c.enforceEager = !compile
        c.device = device
        c.seed = seed
        c.kvCacheGiB = kvCacheGiB
        c.gpuMemoryUtilization = gpuMemoryUtilization
        c.trustRemoteCode = trustRemoteCode
        c.maxTokens = maxTokens
        c.temperature = temperature
        c.topP = topP
        c.ignoreEOS = ignoreEOS
        return c
    }

    /// The datasets to load; with none given, the built-in samples (`samples(name)` gives a
    /// sample's path). Each `--dataset` is `humaneval`, `gsm8k`, `NAME=PATH` (a local JSONL copy
    /// of a built-in dataset) or `jsonl:PATH`.
    func datasetSpecs(samples: (String) throws -> String) throws -> [DatasetSpec] {
        if dataset.isEmpty {
            return try DatasetSpec.builtinNames.map {
                try DatasetSpec(name: $0, file: try samples($0), numProblems: numProblems, offset: offset)
            }
        }
        return try dataset.map { value in
            var name = value, file: String?
            if !value.hasPrefix("jsonl:"), let eq = value.firstIndex(of: "=") {
                name = String(value[..<eq])
                file = String(value[value.index(after: eq)...])
                guard DatasetSpec.builtinNames.contains(name) else {
                    throw CaptureError.invalidOption(
                        "--dataset \(value): NAME=PATH takes NAME \(DatasetSpec.builtinNames.joined(separator: " or ")); for another JSONL file use jsonl:PATH")
                }
                guard file?.isEmpty == false else {
                    throw CaptureError.invalidOption("--dataset \(value): give the file after '=', as in \(name)=data/\(name).jsonl")
                }
            }
            return try DatasetSpec(name: name, file: file, promptField: promptField, numProblems: numProblems, offset: offset)
        }
    }
}

/// The files a capture writes, derived from the trace path.
struct CapturePaths {
    let trace: String
    let outputs: String
    let jsonl: String
    let timings: String
    let summary: String

    init(trace: String) {
        self.trace = trace
        let base = trace.hasSuffix(".moetrace") ? String(trace.dropLast(".moetrace".count)) : trace
        outputs = base + ".outputs.jsonl"
        jsonl = base + ".jsonl"
        timings = base + ".timings.jsonl"
        summary = base + ".capture.json"
    }

    /// The files the capture itself writes (trace, outputs, and the JSONL trace and timings when
    /// asked for), for the check before the run.
    func captureFiles(jsonl: Bool, timing: Bool) -> [String] {
        [trace, outputs] + (jsonl ? [self.jsonl] : []) + (timing ? [timings] : [])
    }

    /// The files of `run`, inside a directory.
    init(directory: String) {
        let d = (directory as NSString)
        trace = d.appendingPathComponent("trace.moetrace")
        outputs = d.appendingPathComponent("outputs.jsonl")
        jsonl = d.appendingPathComponent("trace.jsonl")
        timings = d.appendingPathComponent("timings.jsonl")
        summary = d.appendingPathComponent("run.json")
    }
}

/// What a capture job produced, and the error that stopped it, if any.
struct CaptureOutcome {
    var summary: CaptureSummary?
    var statistics: StreamStatistics
    var traceTotals: String
    var analyzers: MultiplexAnalyzer
    var settings: [String: String]
    var shape: ModelShape
    var problems: [Problem]
    var error: (any Error)?

    /// The facts of a run stopped by SIGINT or SIGTERM, or `nil` when it ran to the end.
    var interruption: CaptureStopFacts? {
        guard let summary, summary.interrupted else { return nil }
        return CaptureStopFacts(
            signal: CaptureInterruption.signal, completed: summary.outputs.count, total: problems.count,
            partial: summary.partialRequests)
    }

    /// Exits after the outputs of an interrupted run were written: 130 after SIGINT, 143 after
    /// SIGTERM (also when the signal came after generation had finished). Does nothing otherwise.
    func exitIfInterrupted() throws {
        if let code = CaptureInterruption.exitCode { throw ExitCode(code) }
        if interruption != nil { throw ExitCode(130) }
    }

    /// Prints the stopping error (with the Python traceback) and exits non-zero: 130 after
    /// Ctrl-C, 1 otherwise. Does nothing when the run completed.
    func rethrow() throws {
        guard let error else { return }
        if let capture = error as? CaptureError {
            if !capture.traceback.isEmpty {
                FileHandle.standardError.write(Data(capture.traceback.utf8))
                if !capture.traceback.hasSuffix("\n") { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            Console.warn("error: \(capture.description)")
            if case .interrupted = capture { throw ExitCode(130) }
            throw ExitCode(1)
        }
        throw error
    }
}

/// What a run stopped by a signal leaves: which signal, how many problems completed of how many,
/// and the problems whose routing is partial (their tokens so far are in the trace).
struct CaptureStopFacts {
    var signal: Int32?
    var completed: Int
    var total: Int
    var partial: [CaptureSummary.PartialRequest]

    /// `SIGINT`, `SIGTERM`, or `request` (a stop asked for without a signal).
    var signalName: String { signal.map(CaptureInterruption.name(of:)) ?? "request" }

    /// Where the partial problems' routing went: `the trace and the analyses` (`run`), `the trace`.
    var keptIn = "the trace"

    /// The report banner: `interrupted after 3 of 8 problems (SIGINT); the routing of 5 unfinished
    /// problems is partial (kept in the trace and the analyses): humaneval/4 (57 tokens), ...`.
    var notice: String {
        var s = "interrupted after \(completed) of \(total) problems (\(signalName))"
        if partial.isEmpty {
            s += "; no unfinished problem had routing yet"
        } else {
            let shown = partial.prefix(12).map { "\($0.problem.domain)/\($0.problem.problemID) (\($0.tokens) tokens)" }
            s += "; the routing of \(partial.count) unfinished problem\(partial.count == 1 ? "" : "s") is partial "
            s += "(kept in \(keptIn)): " + shown.joined(separator: ", ")
            if partial.count > shown.count { s += ", and \(partial.count - shown.count) more (run.json lists them)" }
        }
        return s
    }

    /// `run.json`'s `interrupted`: `{"signal", "completed", "total", "partial": [...]}`.
    var reportValue: ReportValue {
        [
            "signal": .string(signalName), "completed": .int(completed), "total": .int(total),
            "partial": .array(partial.map(\.reportValue)),
        ]
    }
}

/// One capture: Python and vLLM start-up, datasets, the trace writers and live analyzers, the
/// generation, and clean-up that leaves a readable trace whatever happens.
struct CaptureJob {
    /// `MOE_ROUTING_TEST_SLOW_STOP_SECONDS`: a test hook that holds an interrupted capture this
    /// long before it closes its files, as a slow last engine step would (tests of the second
    /// signal use it); unset in normal use.
    static let testSlowStopSeconds: Double? = ProcessInfo.processInfo.environment["MOE_ROUTING_TEST_SLOW_STOP_SECONDS"]
        .flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }

    let options: CaptureCommandOptions
    let label: String

    init(options: CaptureCommandOptions, label: String) throws {
        self.options = options
        self.label = label
    }

    /// Runs the capture. Before anything starts (Python, vLLM), every output is checked
    /// (``OutputPreflight``): the capture's files and `alsoWrites` (the summary, the report files)
    /// must be writable and none may be a dataset file.
    func execute(
        paths: CapturePaths, jsonl: Bool, analyzers: [any RoutingAnalyzer], analysisSeed: UInt64 = 0x5EED,
        alsoWrites: [String] = []
    ) throws -> CaptureOutcome {
        let captureFiles = paths.captureFiles(jsonl: jsonl, timing: options.timing)
        let traceDirectory = (paths.trace as NSString).deletingLastPathComponent
        try OutputPreflight.check(
            files: captureFiles + alsoWrites.filter { !captureFiles.contains($0) },
            directories: traceDirectory.isEmpty ? [] : [traceDirectory], inputs: options.inputFiles)
        let environment = try PythonEnvironment.locate(explicitPath: options.venv)
        try CapturePythonPackage.prepare(environment: environment, verbose: options.verbose)
        let model: String
        var configuration = options.engineConfiguration(model: "")
        if let m = options.model {
            model = m
        } else {
            // The tiny model is float32; bfloat16 is slower on CPUs without AMX and near ties
            // would differ from the reference.
            if configuration.dtype == "auto" { configuration.dtype = "float32" }
            model = CapturePythonPackage.defaultTinyModelPath()
            if try CapturePythonPackage.ensureTinyModel(at: model) {
                Console.warn("generated the tiny model at \(model)")
            }
        }
        let specs = try options.datasetSpecs(samples: CapturePythonPackage.samplePath)
        var problems: [Problem] = []
        for spec in specs { problems += try CapturePythonPackage.loadProblems(spec) }
        guard !problems.isEmpty else { throw CLIError("the datasets gave no problems (check --num-problems and --offset)") }

        Console.warn("starting vLLM on \(model) (\(problems.count) problems)...")
        configuration.model = model
        let engine = try VLLMEngine(configuration: configuration)
        let d = engine.description
        Console.warn(
            String(
                format: "vLLM %@ ready in %.1f s: %@, %d MoE layers, %d experts, top-%d", d.vllmVersion,
                d.importSeconds + d.startSeconds, d.architecture, d.shape.layers, d.shape.experts, d.shape.topK))

        var settings = engine.configuration.settings.merging(d.settings) { a, _ in a }
        let samples = Set(DatasetSpec.builtinNames.compactMap { try? CapturePythonPackage.samplePath($0) })
        settings["capture.datasets"] = specs.map { spec in
            guard let file = spec.file else { return spec.name }
            return samples.contains(file) ? "\(spec.name) (built-in sample)" : "\(spec.name)=\(file)"
        }.joined(separator: ",")
        settings["capture.problems"] = String(problems.count)
        settings["capture.router_logits"] = String(options.routerLogits)
        settings["capture.timing"] = String(options.timing)

        let directory = (paths.trace as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let domains = problems.reduce(into: [String]()) { if !$0.contains($1.domain) { $0.append($1.domain) } }
        let writer = try BinaryTraceWriter(path: paths.trace, shape: d.shape, domains: domains, settings: settings)
        var sinks: [any RoutingBlockSink] = [writer]
        let mux = MultiplexAnalyzer(analyzers)
        let dispatcher: AnalysisDispatcher
        let recorder: CaptureRecorder
        do {
            if jsonl { sinks.append(try JSONLTraceWriter(path: paths.jsonl)) }
            dispatcher = AnalysisDispatcher(analyzers: mux, sinks: sinks)
            try dispatcher.begin(AnalysisContext(shape: d.shape, settings: settings, seed: analysisSeed))
            recorder = try CaptureRecorder(
                dispatcher: dispatcher, outputsPath: paths.outputs, timingsPath: options.timing ? paths.timings : nil,
                showsProgress: !options.noProgress, label: label)
        } catch {
            // Nothing was captured yet: leave no temporary files behind.
            for sink in sinks { sink.discard() }
            throw error
        }

        // From here on the first SIGINT or SIGTERM stops the run after the step in flight and
        // the outputs are still written; the handler stays until the command exits, so a first
        // signal during the report does not cut it short. (Before this point nothing was
        // captured, and a signal ends the process as usual.)
        CaptureInterruption.install(
            hardQuitNote: "the trace so far then stays readable in \(writer.temporaryPath) (in \(writer.path) once closed)")
        var summary: CaptureSummary?
        var failure: (any Error)?
        do {
            summary = try engine.capture(
                problems, options: CaptureOptions(routerLogits: options.routerLogits, timing: options.timing),
                observer: recorder)
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
                    try writer.close(interruptedAfter: summary?.outputs.count ?? recorder.finishedRequests, of: problems.count)
                } else {
                    try sink.close()
                }
            } catch {
                failure = failure ?? CaptureError.sinkFailed("\(error)")
            }
        }
        do { try recorder.close() } catch { failure = failure ?? error }
        if let summary, summary.interrupted {
            recorder.finishProgress(summary, total: problems.count)  // the command prints the notice
        } else if let summary {
            recorder.finishProgress(summary, total: problems.count)
            let unrouted = summary.unroutedPositions.values.reduce(0) { $0 + $1.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } }
            if unrouted > 0 {
                Console.warn("\(unrouted) positions of \(summary.unroutedPositions.count) problems were never routed (prefix cache hits); run.json lists them")
            }
        } else if recorder.partialRequests > 0 {
            Console.warn("\(recorder.finishedRequests) problems finished; the routing of \(recorder.partialRequests) unfinished ones was written as it stood")
        }
        return CaptureOutcome(
            summary: summary, statistics: dispatcher.statistics, traceTotals: "\(writer.totals)", analyzers: mux,
            settings: settings, shape: d.shape, problems: problems, error: failure)
    }
}
