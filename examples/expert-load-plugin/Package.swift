// swift-tools-version: 6.1
//
// A third-party analyzer plugin for speculative-moe, built against it as a package dependency.
//   swift build --package-path examples/expert-load-plugin
//   moe-routing analyze TRACE --plugin examples/expert-load-plugin/.build/debug/libExpertLoadPlugin.so
// SPDX-License-Identifier: Apache-2.0

import PackageDescription

let package = Package(
    name: "expert-load-plugin",
    platforms: [.macOS(.v15)],
    products: [
        // Link statically into your own host: `import ExpertLoad`, register ExpertLoadAnalyzer.
        .library(name: "ExpertLoad", targets: ["ExpertLoad"]),
        // Load at run time: `moe-routing analyze --plugin libExpertLoadPlugin.so`.
        .library(name: "ExpertLoadPlugin", type: .dynamic, targets: ["ExpertLoadPlugin"]),
    ],
    dependencies: [
        // A real plugin names the published package, e.g.
        // .package(url: "https://github.com/<org>/speculative-moe", from: "0.1.0")
        .package(name: "speculative-moe", path: "../..")
    ],
    targets: [
        .target(
            name: "ExpertLoad",
            dependencies: [
                .product(name: "MoERouting", package: "speculative-moe"),
                .product(name: "AnalysisSupport", package: "speculative-moe"),
            ]
        ),
        .target(
            name: "ExpertLoadPlugin",
            dependencies: ["ExpertLoad", .product(name: "MoERoutingPlugins", package: "speculative-moe")]
        ),
    ]
)
