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
        .library(name: "TransitionAnalyzer", targets: ["TransitionAnalyzer"]),
        .library(name: "MultiHopAnalyzer", targets: ["MultiHopAnalyzer"]),
        .library(name: "DomainAnalyzer", targets: ["DomainAnalyzer"]),
        .library(name: "MoERoutingPlugins", targets: ["MoERoutingPlugins"]),
        .library(name: "PythonRuntime", targets: ["PythonRuntime"]),
        .library(name: "VLLMCapture", targets: ["VLLMCapture"]),
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
        .target(name: "MoERoutingTestKit", dependencies: ["MoERouting"]),
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
        // MARK: - In-process vLLM routing capture (the hook, the engine driver, datasets).
        .target(
            name: "VLLMCapture",
            dependencies: ["MoERouting", "MoERoutingTraces", "PythonRuntime"],
            resources: [.copy("python")]
        ),
        // MARK: - Analyzer plugins (each its own target under Plugins/).
        .target(name: "AnalysisSupport", dependencies: ["MoERouting"], path: "Plugins/AnalysisSupport"),
        .target(name: "TransitionAnalyzer", dependencies: ["MoERouting", "AnalysisSupport"], path: "Plugins/Transition"),
        .target(name: "MultiHopAnalyzer", dependencies: ["MoERouting", "AnalysisSupport"], path: "Plugins/MultiHop"),
        .target(name: "DomainAnalyzer", dependencies: ["MoERouting", "AnalysisSupport"], path: "Plugins/Domain"),
        // MARK: - Example third-party plugin (also a standalone package in examples/expert-load-plugin).
        .target(name: "ExpertLoad", dependencies: ["MoERouting"], path: "examples/expert-load-plugin/Sources/ExpertLoad"),
        // MARK: - The command-line tool.
        .executableTarget(
            name: "MoERoutingCLI",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingPlugins", "MoERoutingTestKit", "PythonRuntime", "MoERoutingReport",
                "VLLMCapture",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // MARK: - Benchmarks (release build; see docs/benchmarks.md).
        .executableTarget(
            name: "moe-routing-benchmarks",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingTestKit",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/RoutingBenchmarks"
        ),
        .executableTarget(
            name: "capture-overhead-benchmark",
            dependencies: [
                "MoERouting", "MoERoutingTraces", "MoERoutingTestKit", "PythonRuntime", "VLLMCapture",
                "TransitionAnalyzer", "MultiHopAnalyzer", "DomainAnalyzer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/CaptureOverhead"
        ),
        .executableTarget(
            name: "python-bridge-benchmark",
            dependencies: ["PythonRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/PythonBridgeBenchmark"
        ),
        // MARK: - Tests.
        .testTarget(name: "MoERoutingTests", dependencies: ["MoERouting", "MoERoutingTestKit"]),
        .testTarget(name: "MoERoutingTracesTests", dependencies: ["MoERouting", "MoERoutingTraces", "MoERoutingTestKit"]),
        .testTarget(
            name: "AnalyzerTests",
            dependencies: [
                "MoERouting", "MoERoutingTestKit", "MoERoutingTraces", "MoERoutingReport", "AnalysisSupport", "TransitionAnalyzer",
                "MultiHopAnalyzer", "DomainAnalyzer",
            ]
        ),
        .testTarget(name: "PluginTests", dependencies: ["MoERouting", "MoERoutingPlugins", "MoERoutingTestKit", "ExpertLoad"]),
        .testTarget(name: "CLITests", dependencies: ["MoERouting", "MoERoutingTraces", "MoERoutingCLI", "MoERoutingTestKit"]),
        .testTarget(name: "PythonRuntimeTests", dependencies: ["PythonRuntime", "MoERoutingTestKit"]),
        .testTarget(
            name: "VLLMCaptureTests",
            dependencies: ["MoERouting", "MoERoutingTraces", "PythonRuntime", "VLLMCapture", "TransitionAnalyzer", "MoERoutingTestKit"]
        ),
        .testTarget(name: "ReportTests", dependencies: ["MoERouting", "MoERoutingReport", "MoERoutingTestKit", "MoERoutingTraces"]),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
