// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import ArgumentParser
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces

// The JSONL generator writes with open(2)/write(2) and times with clock(3).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `jsonl` suite's options.
struct JSONLBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jsonl",
        abstract:
            "JSONL reader throughput on one core (a generated Mixtral-shaped trace, read with the shape stated and inferred)."
    )
    @Option(help: "Size of the generated trace in MiB.")
    var megabytes = 600
    @Option(
        help: ArgumentHelp(
            "Generate the trace there and keep it (an existing file at least that large is reused).",
            valueName: "file"
        )
    )
    var path: String?
    @Flag(help: "Keep the temporary trace file.")
    var keep = false

    func validate() throws {
        guard megabytes > 0 else { throw ValidationError("--megabytes needs a positive integer, got \(megabytes)") }
    }

    func run() throws { try runJSONLBenchmark(self) }
}

/// JSONL reader throughput on one core.
///
/// Generates a trace of realistic records (shared-data spelling, Mixtral shape L=32 E=8 k=2,
/// float32 weights printed with ~17 significant digits as the real data is, problems of 100-800
/// tokens written layer-major), then times:
/// 1. a full read with the shape stated (records -> blocks, blocks only counted);
/// 2. the shape-inference pre-pass alone;
/// 3. a full read with the shape inferred (pre-pass + read).
///
/// Options: `--megabytes N` (default 600), `--path FILE` (generate there and keep it; an existing
/// file at least that large is reused), `--keep` (keep the temporary file).
///
/// The file is read right after it is written, so it is usually in the page cache: the figures
/// measure parsing, not the disk.
func runJSONLBenchmark(_ options: JSONLBenchmark) throws {
    let megabytes = options.megabytes
    let path = options.path
    let keep = options.keep
    let target = megabytes << 20
    let tmp = environmentValue("TMPDIR") ?? "/tmp"
    let file = path ?? "\(tmp)/moe-jsonl-benchmark-\(processID()).jsonl"
    defer { if path == nil && !keep { removeFile(file) } }

    var fileBytes = path == nil ? 0 : fileSize(file) ?? 0
    if path != nil, fileBytes >= target {
        print("reusing \(file) (\(fileBytes >> 20) MiB)")
    } else {
        let start = now()
        let records = try generateJSONLTrace(path: file, bytes: target)
        let s = now() - start
        fileBytes = fileSize(file) ?? 0
        print("generated \(file): \(fileBytes >> 20) MiB, \(records) records in \(format(s)) s")
    }
    let size = Double(fileBytes)

    // 1. Read with the shape stated.
    resetPeakRSS()
    var options = TraceReadOptions(shape: .mixtral8x7B)
    options.blockTokens = 8192
    let (stated, statedTime) = try timedRead(file, options)
    report(
        "read, shape stated",
        bytes: size,
        seconds: statedTime.wall,
        cpu: statedTime.cpu,
        reader: stated.reader,
        stats: stated.stats
    )

    // 2. The shape pre-pass alone.
    let inferStart = now()
    let cpuStart = cpuSeconds()
    let shape = try JSONLTraceReader.inferShape(paths: [file])
    let inferWall = now() - inferStart
    let inferCPU = cpuSeconds() - cpuStart
    print(
        "shape pre-pass: \(shape) in \(format(inferWall)) s (cpu \(format(inferCPU)) s): "
            + "\(format(size / inferWall / 1e6)) MB/s"
    )

    // 3. Read with the shape inferred: pre-pass plus read.
    let (inferred, inferredTime) = try timedRead(file, TraceReadOptions())
    report(
        "read, shape inferred (pre-pass + read)",
        bytes: size,
        seconds: inferredTime.wall,
        cpu: inferredTime.cpu,
        reader: inferred.reader,
        stats: inferred.stats
    )
    guard inferred.stats == stated.stats else {
        throw JSONLBenchmarkError("the two reads disagree: \(inferred.stats) vs \(stated.stats)")
    }
    print("peak RSS (VmHWM) during the reads: \(peakRSSMiB().map { "\($0) MiB" } ?? "unknown")")
}

// MARK: - Timing and reporting

private struct JSONLBenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

private func timedRead(
    _ file: String,
    _ options: TraceReadOptions
) throws -> ((reader: JSONLTraceReader, stats: StreamStatistics), (wall: Double, cpu: Double)) {
    let start = now()
    let cpuStart = cpuSeconds()
    let reader = try JSONLTraceReader(path: file, options: options)
    var stats = StreamStatistics()
    while let block = try reader.nextBlock() {
        stats.blocks += 1
        stats.tokens += block.tokenCount
    }
    stats.records = reader.recordsRead
    return ((reader, stats), (now() - start, cpuSeconds() - cpuStart))
}

private func report(
    _ label: String,
    bytes: Double,
    seconds: Double,
    cpu: Double,
    reader: JSONLTraceReader,
    stats: StreamStatistics
) {
    print(
        "\(label): \(Int(bytes) >> 20) MiB in \(format(seconds)) s (cpu \(format(cpu)) s): "
            + "\(format(bytes / seconds / 1e6)) MB/s, \(format(Double(stats.records) / seconds / 1e6)) M records/s; "
            + "\(stats.records) records, \(stats.tokens) tokens, \(stats.blocks) blocks, "
            + "\(reader.summary.skippedTotal) skipped"
    )
}

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

private func cpuSeconds() -> Double {
    Double(clock()) / Double(CLOCKS_PER_SEC)
}

private func format(_ x: Double) -> String {
    let r = (x * 100).rounded() / 100
    return "\(r)"
}

/// Resets the kernel's peak-RSS mark (Linux: `5` to /proc/self/clear_refs), so VmHWM covers
/// what follows rather than the generation.
private func resetPeakRSS() {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return }
    _ = write(fd, "5", 1)
    _ = close(fd)
}

/// VmHWM from /proc/self/status, in MiB.
private func peakRSSMiB() -> Int? { processStatusKB("VmHWM:").map { $0 / 1024 } }

// MARK: - Generating a trace

/// Writes a layer-major trace of at least `bytes` bytes; returns the number of records.
private func generateJSONLTrace(path: String, bytes target: Int) throws -> Int {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else {
        throw JSONLBenchmarkError("\(path): cannot open for writing: \(String(cString: strerror(errno)))")
    }
    defer { _ = close(fd) }
    var rng = SeededRandom(seed: 0x5EED)
    var out: [UInt8] = []
    out.reserveCapacity(9 << 20)
    var written = 0
    var records = 0
    let domains = ["humaneval", "gsm8k", "mbpp", "math500"]
    var nextProblem = [Int](repeating: 0, count: domains.count)
    func flush() throws {
        var off = 0
        while off < out.count {
            let n = out.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            guard n > 0 else { throw JSONLBenchmarkError("\(path): write failed: \(String(cString: strerror(errno)))") }
            off += n
        }
        written += out.count
        out.removeAll(keepingCapacity: true)
    }
    func append(_ s: String) { out.append(contentsOf: s.utf8) }
    func append(_ v: Int) {
        if v >= 10 { append(v / 10) }
        out.append(UInt8(ascii: "0") + UInt8(v % 10))
    }
    while written + out.count < target {
        let d = Int(rng.next() % UInt64(domains.count))
        let problem = nextProblem[d]
        nextProblem[d] += 1
        let tokens = 100 + Int(rng.next() % 700)
        let prefix = "{\"dataset\": \"\(domains[d])\", \"problem_id\": \(problem), \"layer\": "
        for layer in 0..<32 {
            for t in 0..<tokens {
                let e0 = Int(rng.next() % 8)
                let e1 = (e0 + 1 + Int(rng.next() % 7)) % 8
                let w0 = Float(0.5 + 0.5 * Double(rng.next() >> 11) / Double(1 << 53))
                let w1 = 1 - w0
                append(prefix)
                append(layer)
                append(", \"experts\": [")
                append(e0)
                append(", ")
                append(e1)
                append("], \"gating_probs\": [")
                append(Double(w0).description)
                append(", ")
                append(Double(w1).description)
                append("], \"token_idx\": ")
                append(t)
                append("}\n")
                records += 1
            }
            if out.count >= 8 << 20 { try flush() }
        }
    }
    try flush()
    return records
}
