// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// python-bridge-benchmark: the per-call cost of a Swift function called from a Python loop,
// through PythonRuntime's native functions (METH_FASTCALL trampoline + capsule).
//
//   swift run -c release python-bridge-benchmark [--calls N] [--venv PATH]
//
// Needs the project's venv with numpy (scripts/setup-python.sh). Prints ns per call for: the
// empty Python loop, a Python `def` no-op, a Swift no-op, and a Swift function that reads an
// int32 [4, 2] and a float32 [4, 2] NumPy array zero-copy (dtype, contiguity and shape checked).
// Goal for the last one: <= 500 ns per call.

import ArgumentParser
import Foundation
import MoERoutingEnvironment
import PythonRuntime

/// Where the Swift functions leave their sums, so the reads cannot be optimised away. Only
/// touched while holding the GIL.
final class Sink: @unchecked Sendable {
    var total: Float = 0
}

/// The command line (`--help` lists it).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "python-bridge-benchmark",
        abstract: "The per-call cost of a Swift function called from a Python loop through PythonRuntime."
    )
    @Option(help: "Calls per case.")
    var calls = 1_000_000
    @Option(help: ArgumentHelp("The Python virtual environment (with numpy).", valueName: "path"))
    var venv: String?

    func validate() throws {
        guard calls > 0 else { throw ValidationError("--calls needs a positive integer, got \(calls)") }
    }

    /// Parses the command line; `--help` prints every option, and a usage error (an unknown
    /// option, a malformed or out-of-range value) prints one line and exits with 2, as the
    /// `moe-routing` CLI does.
    static func parseOrExit() -> Self {
        do {
            return try parse()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data(("error: " + message(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func defineFunctions(_ gil: borrowing PythonGIL, sink: Sink) throws {
    try gil.defineFunction(module: "moe_bridge_bench", name: "noop") { _ in nil }

    // Shape checked by hand: no allocation per call.
    try gil.defineFunction(module: "moe_bridge_bench", name: "read_two") { args in
        try args.requireCount(2)
        return try args.withBuffer(at: 0, of: Int32.self) { ids in
            try args.withBuffer(at: 1, of: Float.self) { weights in
                guard ids.rank == 2, ids.shape[1] == 2, weights.rank == 2, weights.shape[0] == ids.shape[0],
                    weights.shape[1] == 2
                else { throw PythonError.valueError("expected ids [T, 2] and weights [T, 2]") }
                var total: Float = 0
                for index in 0..<ids.count { total += Float(ids[index]) * weights[index] }
                sink.total += total
                return nil
            }
        }
    }

    // The same with requireShape (an array literal per check).
    try gil.defineFunction(module: "moe_bridge_bench", name: "read_two_require_shape") { args in
        try args.requireCount(2)
        return try args.withBuffer(at: 0, of: Int32.self) { ids in
            try args.withBuffer(at: 1, of: Float.self) { weights in
                try ids.requireShape([nil, 2])
                try weights.requireShape([ids.shape[0], 2])
                var total: Float = 0
                for index in 0..<ids.count { total += Float(ids[index]) * weights[index] }
                sink.total += total
                return nil
            }
        }
    }
}

let benchmarkSource = """
    import time
    import numpy as np
    import moe_bridge_bench as bench

    ids = np.arange(8, dtype=np.int32).reshape(4, 2)
    weights = np.full((4, 2), 0.5, dtype=np.float32)
    noop, read_two, read_two_require_shape = bench.noop, bench.read_two, bench.read_two_require_shape

    def py_noop():
        pass

    def timed(loop, n):
        best = None
        for _ in range(3):
            start = time.perf_counter_ns()
            loop(n)
            elapsed = time.perf_counter_ns() - start
            best = elapsed if best is None else min(best, elapsed)
        return best / n

    def empty_loop(n):
        for _ in range(n):
            pass

    def py_noop_loop(n):
        for _ in range(n):
            py_noop()

    def swift_noop_loop(n):
        for _ in range(n):
            noop()

    def read_two_loop(n):
        for _ in range(n):
            read_two(ids, weights)

    def read_two_require_shape_loop(n):
        for _ in range(n):
            read_two_require_shape(ids, weights)

    results = [
        ("empty Python loop", timed(empty_loop, N)),
        ("Python def no-op", timed(py_noop_loop, N)),
        ("Swift no-op", timed(swift_noop_loop, N)),
        ("Swift read int32[4,2] + float32[4,2] zero-copy", timed(read_two_loop, N)),
        ("  same, with requireShape checks", timed(read_two_require_shape_loop, N)),
    ]
    """

do {
    let options = Options.parseOrExit()
    let venv = try MoERoutingVenv.locate(explicitPath: options.venv).environment
    let info = try Python.initialize(environment: venv, programName: "python-bridge-benchmark")
    print("python-bridge-benchmark: libpython \(info.libraryVersion), venv \(info.environment.path)")
    print("calls per case: \(options.calls) (best of 3 runs)")
    let sink = Sink()
    let results = try Python.withGIL { gil in
        try defineFunctions(gil, sink: sink)
        let globals = try gil.newGlobals()
        try globals.setItem("N", to: options.calls)
        try gil.run(benchmarkSource, globals: globals, filename: "<python-bridge-benchmark>")
        return try globals.item("results").convert(to: [PythonObject].self).map {
            try $0.tuple(as: String.self, Double.self)
        }
    }
    let loop = results.first?.1 ?? 0
    for (name, nanoseconds) in results {
        let net = nanoseconds - loop
        let padded = name.padding(toLength: 50, withPad: " ", startingAt: 0)
        let total = String(format: "%7.1f", nanoseconds)
        print("\(padded) \(total) ns/call  (\(String(format: "%7.1f", net)) ns over the empty loop)")
    }
    if let read = results.first(where: { $0.0.hasPrefix("Swift read") }) {
        let nanoseconds = Int(read.1)
        let verdict = nanoseconds <= 500 ? "goal met: \(nanoseconds) ns <=" : "goal missed: \(nanoseconds) ns >"
        print("\(verdict) 500 ns per call")
    }
    let checksum = try Python.withGIL { _ in sink.total }
    print("checksum \(checksum)")
} catch {
    FileHandle.standardError.write(Data("python-bridge-benchmark: error: \(error)\n".utf8))
    exit(1)
}
