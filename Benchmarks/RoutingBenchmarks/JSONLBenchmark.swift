func runJSONLBenchmark(_ args: [String]) throws { print("not implemented yet") }
