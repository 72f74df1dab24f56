// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The offline pipeline as a library user calls it (TraceAnalysis, RunFacts, PipelineLog,
// ReportFiles), on a synthetic trace: no Python, no tool process.

import Foundation
import MoERouting
import MoERoutingPipeline
import MoERoutingTestKit
import MoERoutingTraces
import Synchronization
import Testing

/// Lines a ``PipelineLog`` received.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var log: PipelineLog { PipelineLog { line in self.lines.withLock { $0.append(line) } } }
}

/// An analyzer that fails on its first block.
final class FailingAnalyzer: RoutingAnalyzer {
    let name = "failing"
    func begin(_ context: AnalysisContext) throws {}
    func consume(_ block: RoutingBlock) throws { throw PipelineError("this analyzer always fails") }
    func merge(_ other: any RoutingAnalyzer) throws {}
    func finish() throws -> AnalyzerReport { AnalyzerReport(analyzer: name, title: "Failing", json: .null) }
}

struct TraceAnalysisTests {
    static let shape = try! ModelShape(layers: 4, experts: 8, topK: 2)

    /// A directory holding `trace.moetrace`: two domains of `problems` problems of `tokens` tokens.
    static func writeTrace(
        problems: Int = 3,
        tokens: Int = 20,
        domains: [String] = ["code", "math"],
        settings: [String: String] = [:],
        in directory: URL? = nil
    ) throws -> (directory: URL, trace: String) {
        let dir =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("\(domains.joined(separator: "-")).moetrace").path
        var generator = SyntheticRouting(shape: shape, seed: 3, dependence: 0.4, missingRate: 0)
        let writer = try BinaryTraceWriter(
            path: path,
            shape: shape,
            settings: settings.merging(["generator": "test"]) { a, _ in a }
        )
        for domain in domains {
            try writer.write(generator.makeBlock(problems: problems, tokensPerProblem: tokens, domain: domain))
        }
        try writer.close()
        return (dir, path)
    }

    @Test func runFactsHoldTheInputsSeedCountsAndInputSectionInOrder() throws {
        let (dir, trace) = try Self.writeTrace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = LogLines()
        let result = try TraceAnalysis(
            traces: [trace],
            analyzers: try BuiltinAnalyzers.make(["summary", "transition"]),
            seed: 11,
            log: lines.log
        ).run()
        #expect(
            result.run.objectMembers?.map(\.key) == [
                "inputs", "shape", "shape_inferred", "skipped_records", "lost_bytes", "seed", "tokens", "records",
                "complete_journeys", "incomplete_journeys", "failures", "input",
            ]
        )
        #expect(result.run["inputs"] == .array([.string(trace)]))
        #expect(result.run["seed"] == .integer(11))
        #expect(result.run["tokens"] == .int(2 * 3 * 20))
        #expect(result.run["records"] == .int(2 * 3 * 20 * 4))
        #expect(result.run["input"]?["phase"] == .string("all"))
        #expect(result.reports.map(\.analyzer) == ["summary", "transition"])
        #expect(result.reportJSON.objectMembers?.map(\.key) == ["summary", "transition", "input"])
        #expect(lines.all.isEmpty, "a clean trace gives no messages: \(lines.all)")
    }

    /// Two inputs whose headers store different kinds of weights (softmax renormalised over the
    /// top-k against OLMoE's raw softmax) get one warning naming both files and both kinds;
    /// inputs of one kind get none.
    @Test func inputsWithDifferentWeightKindsAreWarnedAbout() throws {
        func convention(renormalised: Bool) -> [String: String] {
            RoutingConvention(score: .softmax, renormalised: renormalised, decoderLayers: 4, moeLayers: [0, 1, 2, 3])
                .settings
        }
        let (dir, code) = try Self.writeTrace(domains: ["code"], settings: convention(renormalised: true))
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, math) = try Self.writeTrace(domains: ["math"], settings: convention(renormalised: true), in: dir)
        let (_, prose) = try Self.writeTrace(domains: ["prose"], settings: convention(renormalised: false), in: dir)
        let same = try TraceInputs(paths: [code, math], options: TraceReadOptions())
        #expect(same.weightKindMismatch == nil)
        #expect(same.warnings.isEmpty)
        let mixed = try TraceInputs(paths: [code, math, prose], options: TraceReadOptions())
        let warning = try #require(mixed.weightKindMismatch)
        #expect(
            warning.hasPrefix(
                "\(code) stores softmax-renormalised, scale 1 weights but \(prose) stores softmax, scale 1 weights"
            )
        )
        #expect(mixed.warnings == [warning])
        let lines = LogLines()
        _ = try TraceAnalysis(traces: [code, prose], analyzers: try BuiltinAnalyzers.make(["summary"]), log: lines.log)
            .run()
        #expect(lines.all.contains { $0.contains("weight figures across these inputs do not compare") })
    }

    @Test func aFailingAnalyzerIsLoggedAndListedWhileTheOthersFinish() throws {
        let (dir, trace) = try Self.writeTrace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = LogLines()
        let result = try TraceAnalysis(
            traces: [trace],
            analyzers: [FailingAnalyzer(), TraceSummaryAnalyzer()],
            log: lines.log
        ).run()
        #expect(result.failures.map(\.analyzer) == ["failing"])
        #expect(result.reports.map(\.analyzer) == ["summary"])
        #expect(lines.all.count == 1 && lines.all[0].contains("this analyzer always fails"), "\(lines.all)")
        #expect(result.run["failures"]?.arrayValue?.first?["analyzer"] == .string("failing"))
    }

    @Test func aPhaseWithNoTokensIsRefused() throws {
        let (dir, trace) = try Self.writeTrace(tokens: 1)
        defer { try? FileManager.default.removeItem(at: dir) }
        // SyntheticRouting's tokens are all decode tokens: keeping prefill leaves none.
        var analysis = TraceAnalysis(traces: [trace], analyzers: [TraceSummaryAnalyzer()], log: .silent)
        analysis.phase = .prefill
        #expect(throws: PipelineError.self) { try analysis.run() }
    }

    @Test func reportFilesAreWrittenAndTheDirectoryIsCheckedFirst() throws {
        let (dir, trace) = try Self.writeTrace()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reports = dir.appendingPathComponent("report").path
        var analysis = TraceAnalysis(traces: [trace], analyzers: [TraceSummaryAnalyzer()], log: .silent)
        analysis.reportDirectory = reports
        let result = try analysis.run()
        let written = try ReportFiles.write(result, to: reports, subtitle: "trace.moetrace")
        #expect(written == ReportFiles.paths(in: reports))
        let run = try ReportValue.parse(json: String(contentsOfFile: reports + "/run.json", encoding: .utf8))
        #expect(run == result.run)
        #expect(
            try String(contentsOfFile: reports + "/report.txt", encoding: .utf8) == OutputFormat.text.render(result)
        )

        // A report directory that would replace an input is refused before anything is read.
        var clobbering = TraceAnalysis(
            traces: [reports + "/run.json"],
            analyzers: [TraceSummaryAnalyzer()],
            log: .silent
        )
        clobbering.reportDirectory = reports
        #expect(throws: OutputFileError.self) { try clobbering.run() }
    }

    @Test func captureFilesAreNamedAfterTheTraceOrInsideTheRunDirectory() {
        let beside = CaptureFiles(trace: "out/a.moetrace")
        #expect(
            [beside.outputs, beside.jsonl, beside.timings, beside.summary]
                == ["out/a.outputs.jsonl", "out/a.jsonl", "out/a.timings.jsonl", "out/a.capture.json"]
        )
        let inside = CaptureFiles(directory: "out/run")
        #expect(
            [inside.trace, inside.outputs, inside.jsonl, inside.timings, inside.summary]
                == [
                    "out/run/trace.moetrace", "out/run/outputs.jsonl", "out/run/trace.jsonl", "out/run/timings.jsonl",
                    "out/run/run.json",
                ]
        )
        #expect(inside.captureFiles(jsonl: false, timing: true) == [inside.trace, inside.outputs, inside.timings])
    }
}
