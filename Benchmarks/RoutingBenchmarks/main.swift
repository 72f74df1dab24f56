// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// Benchmarks, run in a release build (see docs/benchmarks.md):
//   swift run -c release moe-routing-benchmarks jsonl [--megabytes 600]
//   swift run -c release moe-routing-benchmarks binary [--records 64000000]
//   swift run -c release moe-routing-benchmarks analyzers [--records 60000000]
//   swift run -c release moe-routing-benchmarks null [--experts 128 256 384]
//   swift run -c release moe-routing-benchmarks cache [--experts 8 --top-k 2 --tokens 1875000]

import ArgumentParser
import Foundation

/// The benchmark suites, one subcommand each.
struct RoutingBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moe-routing-benchmarks",
        abstract: "Speed and memory benchmarks of the trace readers, writers and analyzers (run a release build).",
        subcommands: [
            JSONLBenchmark.self, BinaryBenchmark.self, AnalyzersBenchmark.self, NullBenchmark.self, CacheBenchmark.self,
        ]
    )

    /// Without a suite: a usage error.
    func run() throws { throw ValidationError("name a suite: jsonl, binary, analyzers, null or cache (see --help)") }

    /// Parses and runs a suite like ArgumentParser's `main()`, except that a usage error (an
    /// unknown option, a malformed or out-of-range value) prints one line and exits with 2, as the
    /// `moe-routing` CLI does.
    static func runMain() {
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data(("error: " + message(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

RoutingBenchmarks.runMain()
