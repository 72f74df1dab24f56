// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// The files a capture writes: beside a trace path (`collect`: `T.outputs.jsonl`, `T.jsonl`,
/// `T.timings.jsonl`, `T.capture.json`) or inside a run directory (`run`: `trace.moetrace`,
/// `outputs.jsonl`, `trace.jsonl`, `timings.jsonl`, `run.json`).
///
/// ```swift
/// let files = CaptureFiles(directory: "out/run")
/// files.trace  // "out/run/trace.moetrace"
/// ```
public struct CaptureFiles: Sendable, Hashable {
    /// The binary trace (`.moetrace`).
    public let trace: String
    /// The generated outputs, one JSON line per problem.
    public let outputs: String
    /// The seed-format JSONL copy of the routing (written when asked for).
    public let jsonl: String
    /// Per-step routing and MoE-layer times (written with timing on).
    public let timings: String
    /// The run's facts: `T.capture.json` beside a trace, `run.json` in a run directory.
    public let summary: String

    /// The files beside `trace`, named after it without its `.moetrace` extension.
    public init(trace: String) {
        self.trace = trace
        let base = trace.hasSuffix(".moetrace") ? String(trace.dropLast(".moetrace".count)) : trace
        outputs = base + ".outputs.jsonl"
        jsonl = base + ".jsonl"
        timings = base + ".timings.jsonl"
        summary = base + ".capture.json"
    }

    /// The files of a run inside `directory`.
    public init(directory: String) {
        let d = (directory as NSString)
        trace = d.appendingPathComponent("trace.moetrace")
        outputs = d.appendingPathComponent("outputs.jsonl")
        jsonl = d.appendingPathComponent("trace.jsonl")
        timings = d.appendingPathComponent("timings.jsonl")
        summary = d.appendingPathComponent("run.json")
    }

    /// The files the capture itself writes (trace, outputs, and the JSONL trace and timings when
    /// asked for), for the check before the run.
    public func captureFiles(jsonl: Bool, timing: Bool) -> [String] {
        [trace, outputs] + (jsonl ? [self.jsonl] : []) + (timing ? [timings] : [])
    }
}
