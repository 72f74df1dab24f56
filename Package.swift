// swift-tools-version: 6.1
//
// speculative-moe: capture and analyze Mixture-of-Experts routing decisions.
// SPDX-License-Identifier: Apache-2.0

import PackageDescription

let package = Package(
    name: "speculative-moe",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MoERouting", targets: ["MoERouting"]),
        .library(name: "MoERoutingTraces", targets: ["MoERoutingTraces"]),
        .library(name: "MoERoutingTestKit", targets: ["MoERoutingTestKit"]),
        .library(name: "MoERoutingReport", targets: ["MoERoutingReport"]),
        // For plugin authors: folds by problem, seeded RNG, chance rates, report formatting.
        .library(name: "AnalysisSupport", targets: ["AnalysisSupport"]),
        .library(name: "TransitionAnalyzer", targets: ["TransitionAnalyzer"]),
        .library(name: "MultiHopAnalyzer", targets: ["MultiHopAnalyzer"]),
        .library(name: "DomainAnalyzer", targets: ["DomainAnalyzer"]),
        .library(name: "MoERoutingPlugins", targets: ["MoERoutingPlugins"]),
        .library(name: "PythonRuntime", targets: ["PythonRuntime"]),
        .library(name: "MoERoutingEnvironment", targets: ["MoERoutingEnvironment"]),
        .library(name: "VLLMCapture", targets: ["VLLMCapture"]),
        .library(name: "MoERoutingPipeline", targets: ["MoERoutingPipeline"]),
        .executable(name: "moe-routing", targets: ["MoERoutingCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // MARK: - Pure-Swift core: data model, analyzer protocol, registry, dispatch.
        .target(name: "MoERouting"),
        // MARK: - Trace files: seed JSONL, the binary trace, NumPy .npz export.
        .target(name: "MoERoutingTraces", dependencies: ["MoERouting"]),
        // MARK: - Reports people look at: one self-contained HTML file with inline SVG charts.
        .target(name: "MoERoutingReport", dependencies: ["MoERouting"]),
        // MARK: - Synthetic traces and a recording analyzer for tests.
        .target(name: "MoERoutingTestKit", dependencies: ["MoERouting", "AnalysisSupport"]),
        // MARK: - Third-party plugins: the C entry point, dynamic loading and exporting.
        .target(name: "CMoERoutingPlugin"),
        .target(name: "MoERoutingPlugins", dependencies: ["MoERouting", "CMoERoutingPlugin"]),
        // MARK: - Embedded CPython (knows nothing of vLLM).
        .systemLibrary(
            name: "_CPython",
            pkgConfig: "python3-embed",
            providers: [.apt(["python3-dev"])]
        ),
        .target(name: "PythonRuntime", dependencies: ["_CPython"]),
        // MARK: - moe-routing's Python venv: where it is, `doctor`, `setup` (the set-up script ships as a resource).
        .target(name: "MoERoutingEnvironment", dependencies: ["PythonRuntime"], resources: [.copy("setup")]),
        // MARK: - In-process vLLM routing capture (the hook, the engine driver, datasets).
        .target(
            name: "VLLMCapture",
            dependencies: ["MoERouting", "MoERoutingTraces", "PythonRuntime", "MoERoutingEnvironment"],
            resources: [.copy("python")]
        ),
        // MARK: - Analyzer plugins (each its own target under Plugins/), and the statistics they share.
        .target(name: "AnalysisSupport", dependencies: ["MoERouting"], path: "Plugins/AnalysisSupport"),
        .target(
            name: "TransitionAnalyzer",
            dependencies: ["MoERouting", "AnalysisSupport", "CAnalysisKernels"],
            path: "Plugins/Transition"
        ),
        // C kernels compiled per instruction set and chosen at run time (AVX-512 population counts).
        .target(name: "CAnalysisKernels", path: "Plugins/AnalysisKernels"),
        .target(
            name: "MultiHopAnalyzer",
            dependencies: ["MoERouting", "AnalysisSupport", "CAnalysisKernels"],
            path: "Plugins/MultiHop"
        ),
        .target(
            name: "DomainAnalyzer",
            dependencies: ["MoERouting", "AnalysisSupport", "CAnalysisKernels"],
            path: "Plugins/Domain"
        ),
        // MARK: - Example third-party plugin (also a standalone package in examples/expert-load-plugin).
        .target(
            name: "ExpertLoad",
            dependencies: ["MoERouting", "AnalysisSupport"],
            path: "examples/expert-load-plugin/Sources/ExpertLoad"
        ),
        // MARK: - The pipeline: capture jobs, live and offline analysis, run facts, report files.
        .target(
            name: "MoERoutingPipeline",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingReport", "MoERoutingPlugins", "PythonRuntime",
                "VLLMCapture", "AnalysisSupport",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
            ]
        ),
        // MARK: - The command-line tool (parses options and calls MoERoutingPipeline).
        .executableTarget(
            name: "MoERoutingCLI",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "PythonRuntime", "MoERoutingEnvironment",
                "VLLMCapture",
                "MoERoutingPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // MARK: - Examples (each built by `swift build` and run by the tests).
        .executableTarget(
            name: "capture-and-analyze-example",
            dependencies: ["MoERouting", "VLLMCapture", "MoERoutingPipeline"],
            path: "examples/capture-and-analyze",
            exclude: ["README.md"]
        ),
        // MARK: - Benchmarks (release build; see docs/benchmarks.md).
        .executableTarget(
            name: "moe-routing-benchmarks",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "AnalysisSupport",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/RoutingBenchmarks"
        ),
        .executableTarget(
            name: "capture-overhead-benchmark",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "AnalysisSupport", "PythonRuntime",
                "VLLMCapture",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/CaptureOverhead"
        ),
        .executableTarget(
            name: "python-bridge-benchmark",
            dependencies: [
                "PythonRuntime", "MoERoutingEnvironment",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/PythonBridgeBenchmark"
        ),
        // MARK: - Tests.
        .testTarget(name: "MoERoutingTests", dependencies: ["MoERouting", "MoERoutingTestKit"]),
        .testTarget(
            name: "MoERoutingTracesTests",
            dependencies: ["MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "AnalysisSupport"]
        ),
        .testTarget(
            name: "AnalyzerTests",
            dependencies: [
                "MoERouting", "MoERoutingTestKit", "MoERoutingTraces", "MoERoutingReport", "AnalysisSupport",
                "TransitionAnalyzer",
                "MultiHopAnalyzer", "DomainAnalyzer", "CAnalysisKernels",
            ]
        ),
        .testTarget(
            name: "PluginTests",
            dependencies: ["MoERouting", "MoERoutingPlugins", "MoERoutingTestKit", "ExpertLoad"]
        ),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingCLI", "MoERoutingTestKit", "MoERoutingPipeline",
            ]
        ),
        // The interpreter set-up shared by the Python and environment tests.
        .target(
            name: "PythonTestSupport",
            dependencies: ["PythonRuntime", "MoERoutingTestKit"],
            path: "Tests/PythonTestSupport"
        ),
        .testTarget(
            name: "PythonRuntimeTests",
            dependencies: ["PythonRuntime", "MoERoutingTestKit", "PythonTestSupport"]
        ),
        .testTarget(
            name: "MoERoutingEnvironmentTests",
            dependencies: ["MoERoutingEnvironment", "PythonRuntime", "MoERoutingTestKit", "PythonTestSupport"]
        ),
        .testTarget(
            name: "VLLMCaptureTests",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "PythonRuntime", "MoERoutingEnvironment", "VLLMCapture",
                "TransitionAnalyzer",
                "MoERoutingTestKit",
            ]
        ),
        .testTarget(
            name: "ReportTests",
            dependencies: [
                "MoERouting", "MoERoutingReport", "MoERoutingTestKit", "MoERoutingTraces", "AnalysisSupport",
            ]
        ),
        .testTarget(
            name: "MoERoutingPipelineTests",
            dependencies: ["MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "MoERoutingPipeline"]
        ),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
