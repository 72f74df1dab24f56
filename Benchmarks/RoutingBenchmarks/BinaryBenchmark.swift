// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import ArgumentParser
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces

/// The `binary` suite's options.
struct BinaryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "binary",
        abstract: "Binary .moetrace writing and reading throughput on one core, and CRC-32 speed."
    )
    @Option(help: "Token-layer records to write and read.")
    var records = 64_000_000
    @Option(help: "Tokens per block (one chunk per block).")
    var blockTokens = 8192
    @Option(help: ArgumentHelp("Probability that a (token, layer) cell is missing, in [0, 1).", valueName: "x"))
    var missingRate = 0.0
    @Option(help: "How many times each read is timed (the best is reported).")
    var `repeat` = 3
    @Option(help: ArgumentHelp("Directory for the trace file.", valueName: "dir"))
    var dir = "/tmp"
    @Flag(help: "Keep the trace file.")
    var keep = false

    func validate() throws {
        for (name, value) in [("--records", records), ("--block-tokens", blockTokens), ("--repeat", `repeat`)]
        where value <= 0 {
            throw ValidationError("\(name) needs a positive integer, got \(value)")
        }
        guard (0..<1).contains(missingRate) else {
            throw ValidationError("--missing-rate needs a number in [0, 1), got \(missingRate)")
        }
    }

    func run() throws { try runBinaryBenchmark(self) }
}

/// `.moetrace` binary trace throughput on one core.
///
/// Generates Mixtral-shaped blocks (L=32, E=8, k=2) with `SyntheticRouting` (a pool of up to 16
/// distinct blocks, written in turn until the record count is reached), then times:
/// 1. writing the trace (one chunk per block, header and end chunk included);
/// 2. reading it back to blocks (chunks checked and decoded; blocks only counted);
/// 3. reading plus a trivial consumer that touches every present cell's top-1 expert (a per-layer
///    histogram), proving the blocks are usable;
/// 4. CRC-32 alone over a 64 MiB buffer.
///
/// Reads are timed `--repeat` times (default 3); the best is reported, as wall-clock rates and as
/// the process's CPU time (less inflated by other load on a shared machine). The file is read right
/// after it is written, so it is usually in the page cache: the figures measure decoding, not the
/// disk. Peak RSS is VmHWM from /proc/self/status after the reads (it includes the block pool).
///
/// Options: `--records N` (token-layer records, default 64,000,000), `--block-tokens N` (default
/// 8192), `--missing-rate X` (default 0), `--repeat N`, `--dir DIR` (default /tmp), `--keep`.
func runBinaryBenchmark(_ options: BinaryBenchmark) throws {
    let records = options.records
    let blockTokens = options.blockTokens
    let missingRate = options.missingRate
    let repeats = options.repeat
    let directory = options.dir
    let keep = options.keep

    let shape = ModelShape.mixtral8x7B
    let L = shape.layers
    let path = "\(directory)/moe-binary-benchmark-\(processID()).moetrace"
    defer { if !keep { removeFile(path) } }

    // Generate a pool of blocks.
    var gen = SyntheticRouting(shape: shape, seed: 2024, missingRate: missingRate)
    let tokensNeeded = (records + L - 1) / L
    let poolSize = min(16, (tokensNeeded + blockTokens - 1) / blockTokens)
    let domains = ["humaneval", "gsm8k", "mbpp", "math"]
    var pool: [RoutingBlock] = []
    let generation = try binaryMeasure {
        for b in 0..<poolSize {
            pool.append(
                gen.makeBlock(
                    problems: max(1, blockTokens / 256),
                    tokensPerProblem: min(256, blockTokens),
                    domain: domains[b % 4]
                )
            )
        }
    }
    print("binary benchmark: \(shape), target \(records) token-layer records, blocks of \(pool[0].tokenCount) tokens")
    print("  generated \(pool.count) distinct blocks in \(binaryFormat(generation.wall, 2)) s")
    print("  (rates use wall time; 'cpu' is the process's CPU time, which other load on the machine inflates less)")

    // 1. Write.
    var written = BinaryTraceTotals()
    let writeTime = try binaryMeasure {
        let writer = try BinaryTraceWriter(path: path, shape: shape, settings: ["benchmark": "binary"])
        var b = 0
        while writer.totals.records < records {
            try writer.write(pool[b % pool.count])
            b += 1
        }
        written = writer.totals
        try writer.close()
    }
    let fileSize = try binaryBenchmarkFileSize(path)
    let mb = Double(fileSize) / 1e6
    print("  file: \(path)\(keep ? "" : " (removed afterwards)")")
    print(
        "  file size: \(binaryFormat(mb, 1)) MB for \(written) (\(binaryFormat(Double(fileSize) / Double(written.records), 2)) bytes/record)"
    )
    print(
        "  write:            \(binaryFormat(writeTime.wall, 3)) s  \(binaryFormat(Double(written.records) / writeTime.wall / 1e6, 1)) M records/s  \(binaryFormat(mb / writeTime.wall, 0)) MB/s  (cpu \(binaryFormat(writeTime.cpu, 3)) s: \(binaryFormat(Double(written.records) / writeTime.cpu / 1e6, 1)) M records/s)"
    )

    // 2. Read to blocks.
    var best = BinaryTiming(wall: .infinity, cpu: .infinity)
    var readTotals = BinaryTraceTotals()
    for _ in 0..<repeats {
        let t = try binaryMeasure {
            let reader = try BinaryTraceReader(path: path)
            var tokens = 0
            while let block = try reader.nextBlock() { tokens += block.tokenCount }
            readTotals = reader.totals
            guard tokens == written.tokens, reader.isComplete, reader.summary.lostBytes == 0 else {
                throw BinaryBenchmarkError("read back \(reader.totals), wrote \(written)")
            }
        }
        best = best.min(t)
    }
    print(
        "  read to blocks:   \(binaryFormat(best.wall, 3)) s  \(binaryFormat(Double(readTotals.records) / best.wall / 1e6, 1)) M records/s  \(binaryFormat(mb / best.wall, 0)) MB/s  (cpu \(binaryFormat(best.cpu, 3)) s: \(binaryFormat(Double(readTotals.records) / best.cpu / 1e6, 1)) M records/s; best of \(repeats))"
    )

    // 3. Read and touch every present cell's top-1.
    best = BinaryTiming(wall: .infinity, cpu: .infinity)
    var histogram = [Int](repeating: 0, count: L * shape.experts)
    for _ in 0..<repeats {
        histogram = [Int](repeating: 0, count: L * shape.experts)
        let t = try binaryMeasure {
            let reader = try BinaryTraceReader(path: path)
            while let block = try reader.nextBlock() {
                guard case .narrow(let ids) = block.ids else { throw BinaryBenchmarkError("expected narrow ids") }
                let k = shape.topK
                let E = shape.experts
                ids.withUnsafeBufferPointer { id in
                    block.present.withUnsafeBufferPointer { present in
                        histogram.withUnsafeMutableBufferPointer { h in
                            for cell in 0..<present.count where present[cell] {
                                h[(cell % L) &* E &+ Int(id[cell &* k])] &+= 1
                            }
                        }
                    }
                }
            }
        }
        best = best.min(t)
    }
    let touched = histogram.reduce(0, +)
    guard touched == written.records else {
        throw BinaryBenchmarkError("the consumer touched \(touched) cells, expected \(written.records)")
    }
    print(
        "  read + top-1:     \(binaryFormat(best.wall, 3)) s  \(binaryFormat(Double(touched) / best.wall / 1e6, 1)) M records/s  (cpu \(binaryFormat(best.cpu, 3)) s: \(binaryFormat(Double(touched) / best.cpu / 1e6, 1)) M records/s; \(touched) cells touched; layer-0 top-1 counts \(histogram[0..<8].map(String.init).joined(separator: " ")))"
    )
    print("  peak RSS (VmHWM): \(binaryBenchmarkPeakRSS())")

    // 4. CRC-32 alone.
    let size = 64 << 20
    var data = [UInt8](repeating: 0, count: size)
    var rng = SeededRandom(seed: 1)
    data.withUnsafeMutableBytes { raw in
        for j in stride(from: 0, to: size, by: 8) { raw.storeBytes(of: rng.next(), toByteOffset: j, as: UInt64.self) }
    }
    var crc: UInt32 = 0
    var crcBest = BinaryTiming(wall: .infinity, cpu: .infinity)
    for _ in 0..<repeats {
        crcBest = crcBest.min(try binaryMeasure { crc = CRC32.checksum(data) })
    }
    print(
        "  CRC-32:           \(binaryFormat(Double(size) / crcBest.wall / 1e9, 2)) GB/s  (cpu: \(binaryFormat(Double(size) / crcBest.cpu / 1e9, 2)) GB/s; checksum \(String(crc, radix: 16)) of 64 MiB)"
    )
}

/// Wall-clock and process CPU seconds.
private struct BinaryTiming {
    var wall: Double
    var cpu: Double
    func min(_ o: BinaryTiming) -> BinaryTiming {
        BinaryTiming(wall: Swift.min(wall, o.wall), cpu: Swift.min(cpu, o.cpu))
    }
}

private func binaryMeasure(_ work: () throws -> Void) throws -> BinaryTiming {
    let clock = ContinuousClock()
    let cpu0 = processCPUSeconds()
    let wall = try clock.measure(work)
    return BinaryTiming(wall: durationSeconds(wall), cpu: processCPUSeconds() - cpu0)
}

private struct BinaryBenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

private func binaryFormat(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var p = 1.0
    for _ in 0..<decimals { p *= 10 }
    let r = (x * p).rounded() / p
    var s = "\(r)"
    if decimals == 0, s.hasSuffix(".0") { s.removeLast(2) }
    return s
}

private func binaryBenchmarkFileSize(_ path: String) throws -> Int {
    guard let size = fileSize(path) else { throw BinaryBenchmarkError("cannot stat \(path)") }
    return size
}

/// VmHWM from /proc/self/status, or "unavailable".
private func binaryBenchmarkPeakRSS() -> String {
    processStatusKB("VmHWM:").map { "\($0) kB" } ?? "unavailable"
}
