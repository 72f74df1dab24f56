func runBinaryBenchmark(_ args: [String]) throws { print("not implemented yet") }
