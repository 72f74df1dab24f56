// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// Benchmarks, run in a release build (see docs/benchmarks.md):
//   swift run -c release moe-routing-benchmarks jsonl [--megabytes 600]
//   swift run -c release moe-routing-benchmarks binary [--records 60000000]
//   swift run -c release moe-routing-benchmarks analyzers [--records 60000000]

#if canImport(Glibc)
import Glibc
#endif

let args = Array(CommandLine.arguments.dropFirst())
let suites: [String: ([String]) throws -> Void] = [
    "jsonl": runJSONLBenchmark,
    "binary": runBinaryBenchmark,
    "analyzers": runAnalyzerBenchmark,
]
guard let name = args.first, let suite = suites[name] else {
    print("usage: moe-routing-benchmarks \(suites.keys.sorted().joined(separator: "|")) [options]")
    exit(2)
}
do {
    try suite(Array(args.dropFirst()))
} catch {
    print("error: \(error)")
    exit(1)
}
