// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ExpertLoad
import Foundation
import MoERouting
import MoERoutingPlugins
import MoERoutingTestKit
import Testing

/// The package root, found from this file's path.
private let packageRoot: URL = TestPaths.packageRoot(from: #filePath) ?? URL(fileURLWithPath: ".")

/// Builds the standalone example plugin package once (its own scratch path, so it never waits on
/// the build that runs these tests) and returns the shared library's path.
private let examplePluginLibrary: Result<String, any Error> = {
    let scratch = packageRoot.appendingPathComponent(".build-examples").path
    do {
        let (status, output) = try TestProcess.run(
            "/usr/bin/env",
            [
                "swift", "build", "--package-path",
                packageRoot.appendingPathComponent("examples/expert-load-plugin").path,
                "--scratch-path", scratch,
            ]
        )
        guard status == 0 else {
            return .failure(PluginError(path: scratch, message: "building the example failed:\n\(output)"))
        }
        return .success(scratch + "/debug/libExpertLoadPlugin.so")
    } catch {
        return .failure(error)
    }
}()

private func run(_ analyzers: [any RoutingAnalyzer], shards: [[RoutingBlock]]) throws -> [AnalyzerReport] {
    let mux = MultiplexAnalyzer(analyzers)
    try mux.begin(AnalysisContext(shape: shards[0][0].shape))
    for b in shards.joined() { try mux.consume(b) }
    let (reports, failures) = mux.finishAll()
    #expect(failures.isEmpty, "\(failures)")
    return reports
}

@Suite(.serialized) struct PluginLoadingTests {
    let blocks: [RoutingBlock] = {
        var g = SyntheticRouting(shape: .tinyMixtral, seed: 11, missingRate: 0.1)
        return (0..<4).map { i in g.makeBlock(problems: 3, tokensPerProblem: 20, domain: i < 2 ? "humaneval" : "gsm8k")
        }
    }()

    /// Expected per-layer load shares, counted independently of the analyzer.
    func expectedShares() -> [[Double]] {
        let s = ModelShape.tinyMixtral
        var counts = Array(repeating: Array(repeating: 0, count: s.experts), count: s.layers)
        for b in blocks {
            for t in 0..<b.tokenCount {
                for l in 0..<s.layers where b.isPresent(token: t, layer: l) {
                    for j in 0..<s.topK { counts[l][b.expert(token: t, layer: l, slot: j)] += 1 }
                }
            }
        }
        return counts.map { row in row.map { Double($0) / Double(row.reduce(0, +)) } }
    }

    @Test func staticRegistrationComputesLoad() throws {
        var registry = AnalyzerRegistry()
        try registry.register("expert-load", summary: ExpertLoadAnalyzer.summary) { ExpertLoadAnalyzer() }
        let report = try run([registry.make("expert-load")], shards: [blocks])[0]
        let shares = report.json["layers"]?.arrayValue?.map { $0["shares"]!.arrayValue!.map { $0.doubleValue! } }
        #expect(shares == expectedShares())
        #expect(report.json["tokens"] == .int(240))
    }

    @Test func dynamicLibraryGivesTheSameReportAsStatic() throws {
        let path = try examplePluginLibrary.get()
        let library = try PluginLibrary(path: path)
        #expect(library.analyzers.map(\.name) == ["expert-load"])
        var registry = AnalyzerRegistry()
        try library.register(into: &registry)
        let dynamic = try run([registry.make("expert-load")], shards: [blocks])[0]
        let statik = try run([ExpertLoadAnalyzer()], shards: [blocks])[0]
        #expect(dynamic == statik)
        #expect(dynamic.figures.count == 1)

        // Merging two dynamic instances equals one pass.
        let a = try registry.make("expert-load")
        let b = try registry.make("expert-load")
        let ctx = AnalysisContext(shape: .tinyMixtral)
        try a.begin(ctx)
        try b.begin(ctx)
        for (i, block) in blocks.enumerated() { try (i % 2 == 0 ? a : b).consume(block) }
        try a.merge(b)
        #expect(try a.finish() == statik)
        // The test kit's merge check, on dynamic and static instances: halves either way round
        // and random shards give the one-pass report.
        let context = AnalysisContext(shape: .tinyMixtral)
        let makers: [() throws -> any RoutingAnalyzer] = [
            { try registry.make("expert-load") }, { ExpertLoadAnalyzer() },
        ]
        for make in makers {
            #expect(
                try MergeCheck.assertHalvesEqualOnePass(makeAnalyzer: make, context: context, blocks: blocks) == statik
            )
            #expect(
                try MergeCheck.assertShardsEqualOnePass(makeAnalyzer: make, context: context, blocks: blocks) == statik
            )
        }
    }

    @Test func dynamicPluginErrorsArriveAsSwiftErrors() throws {
        let library = try PluginLibrary(path: try examplePluginLibrary.get())
        let a = try library.makeAnalyzer(at: 0)
        try a.begin(AnalysisContext(shape: .tinyMixtral))
        var g = SyntheticRouting(shape: .mixtral8x7B, seed: 1)
        // A block of another shape: the plugin throws inside, the host gets its message.
        #expect {
            try a.consume(g.makeBlock(problems: 1, tokensPerProblem: 2, domain: "d"))
        } throws: { error in
            "\(error)".contains("differs from the run's")
        }
        #expect(throws: RoutingError.self) { try a.merge(ExpertLoadAnalyzer()) }
    }

    @Test func refusesFilesThatAreNotPlugins() throws {
        #expect { try PluginLibrary(path: "/nonexistent/libNope.so") } throws: { "\($0)".contains("cannot load") }
        // A real shared library without the entry point.
        let libc = ["/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6"].first {
            FileManager.default.fileExists(atPath: $0)
        }
        if let libc {
            #expect { try PluginLibrary(path: libc) } throws: { "\($0)".contains("not a speculative-moe plugin") }
        }
    }

    @Test func refusesTheSameLibraryTwiceAndNamesBothOrigins() throws {
        let path = try examplePluginLibrary.get()
        // The same file under another name (a symlink) is still the same library.
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("libExpertLoadAlias-\(getpid()).so")
            .path
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        defer { try? FileManager.default.removeItem(atPath: link) }
        var registry = AnalyzerRegistry()
        #expect {
            try PluginLibrary.registerAll(paths: [path, link], into: &registry)
        } throws: { error in
            let m = "\(error)"
            return m.contains(link) && m.contains("same library as \(path)")
        }

        // A plugin whose analyzer name is already taken: the message names the plugin and the
        // one that registered the name first.
        var withBuiltin = AnalyzerRegistry()
        try withBuiltin.register("expert-load", summary: "a host's own") { ExpertLoadAnalyzer() }
        #expect {
            try PluginLibrary.registerAll(paths: [path], into: &withBuiltin)
        } throws: { error in
            "\(error)"
                == "cannot register analyzer 'expert-load': plugin \(path) registers an analyzer named 'expert-load', "
                + "but the built-in analyzers already has one; rename one of them or load only one"
        }
        #expect(withBuiltin.names == ["expert-load"])
    }
}
