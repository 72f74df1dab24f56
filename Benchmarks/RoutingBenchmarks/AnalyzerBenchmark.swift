func runAnalyzerBenchmark(_ args: [String]) throws { print("not implemented yet") }
