// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The plugin ABI across versions: the per-token `step` column (ABI version 2) reaches plugins,
// version-1 plugins still load and read every older column, and unknown versions are refused.

import Foundation
import MoERouting
import MoERoutingPlugins
import MoERoutingTestKit
import Synchronization
import Testing

/// The package root, found from this file's path.
private let packageRoot: URL = TestPaths.packageRoot(from: #filePath) ?? URL(fileURLWithPath: ".")

/// A C compiler on PATH, to build the test plugin; nil when there is none (the C tests skip).
private let cCompiler: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        for name in ["cc", "clang", "gcc"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
    }
    return nil
}()

/// A plugin written in C, as a third party would, declaring ABI version `PLUGIN_ABI`. Its one
/// analyzer, "steps-seen", reports the tokens and the sum of positions it read and, from
/// version 2 on, every step it saw and how many blocks came with and without a step column.
/// Built as version 1 it reads blocks through the version-1 struct (a copy of the old header's),
/// exactly as a plugin built before `step` existed, and checks at compile time that version 2
/// kept every offset of version 1.
private let cPluginSource = #"""
    #define _POSIX_C_SOURCE 200809L /* strdup */
    #include <stddef.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include "moe_routing_plugin.h"

    #define MAX_STEPS 4096

    #if PLUGIN_ABI == 1
    /* moe_routing_block as ABI version 1 declared it. */
    typedef struct {
        int32_t layers, experts, top_k, domain_count;
        int64_t token_count;
        const uint16_t *ids;
        const float *weights;
        const uint8_t *present;
        const uint16_t *domain;
        const int64_t *problem_id;
        const int32_t *position;
        const uint8_t *phase;
        const int32_t *token_id;
        const char *const *domain_names;
    } block_t;
    #define SAME(f) _Static_assert(offsetof(block_t, f) == offsetof(moe_routing_block, f), "version 2 moved " #f);
    SAME(layers) SAME(experts) SAME(top_k) SAME(domain_count) SAME(token_count) SAME(ids) SAME(weights)
    SAME(present) SAME(domain) SAME(problem_id) SAME(position) SAME(phase) SAME(token_id) SAME(domain_names)
    _Static_assert(sizeof(block_t) <= offsetof(moe_routing_block, step), "step must follow every version-1 member");
    #else
    typedef moe_routing_block block_t;
    #endif

    typedef struct {
        long long tokens, position_sum, with_steps, without_steps;
        char last_domain[64];
        int n;
        uint32_t steps[MAX_STEPS];
    } state;

    static void *create(const void *userdata) { (void)userdata; return calloc(1, sizeof(state)); }
    static void destroy(void *instance) { free(instance); }
    static int32_t begin(void *instance, const char *context, char **error) {
        (void)instance; (void)context; (void)error;
        return 0;
    }
    static int32_t consume(void *instance, const moe_routing_block *block, char **error) {
        state *s = instance;
        const block_t *b = (const block_t *)block;
        (void)error;
        s->tokens += b->token_count;
        for (int64_t t = 0; t < b->token_count; t++) s->position_sum += b->position[t];
        if (b->token_count > 0) {
            snprintf(s->last_domain, sizeof s->last_domain, "%s", b->domain_names[b->domain[b->token_count - 1]]);
        }
    #if PLUGIN_ABI >= 2
        if (b->step == NULL) { s->without_steps++; return 0; }
        s->with_steps++;
        for (int64_t t = 0; t < b->token_count; t++) {
            if (s->n == MAX_STEPS) { *error = strdup("too many steps for the test plugin"); return 1; }
            s->steps[s->n++] = b->step[t];
        }
    #endif
        return 0;
    }
    static int32_t merge(void *instance, void *other, char **error) {
        state *s = instance, *o = other;
        if (s->n + o->n > MAX_STEPS) { *error = strdup("too many steps for the test plugin"); return 1; }
        s->tokens += o->tokens; s->position_sum += o->position_sum;
        s->with_steps += o->with_steps; s->without_steps += o->without_steps;
        memcpy(s->steps + s->n, o->steps, (size_t)o->n * sizeof(uint32_t));
        s->n += o->n;
        return 0;
    }
    static int32_t finish(void *instance, char **report, char **error) {
        state *s = instance;
        size_t size = 512 + (size_t)s->n * 12, used = 0;
        char *out = malloc(size);
        if (out == NULL) { *error = strdup("out of memory"); return 1; }
        used += (size_t)snprintf(out + used, size - used,
            "{\"analyzer\":\"steps-seen\",\"title\":\"Steps seen\",\"json\":{\"abi\":%d,\"tokens\":%lld,"
            "\"position_sum\":%lld,\"last_domain\":\"%s\",\"with_steps\":%lld,\"without_steps\":%lld,\"steps\":[",
            PLUGIN_ABI, s->tokens, s->position_sum, s->last_domain, s->with_steps, s->without_steps);
        for (int i = 0; i < s->n; i++) used += (size_t)snprintf(out + used, size - used, "%s%u", i ? "," : "", s->steps[i]);
        snprintf(out + used, size - used, "]}}");
        *report = out;
        return 0;
    }
    static void free_string(char *string) { free(string); }

    static const moe_routing_analyzer_vtable analyzers[1] = {{
        "steps-seen", "reports the step column it receives", NULL,
        create, destroy, begin, consume, merge, finish, free_string,
    }};
    static const moe_routing_plugin table = { PLUGIN_ABI, 1, analyzers };

    const moe_routing_plugin *moe_routing_plugin_entry(void) { return &table; }
    """#

/// Compiles the C test plugin declaring ABI `version` into a fresh shared library; returns its path.
private func buildCPlugin(version: Int) throws -> String {
    guard let cCompiler else { throw PluginError(path: "cc", message: "no C compiler") }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moe-plugin-abi-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let source = dir.appendingPathComponent("steps_seen.c")
    try cPluginSource.write(to: source, atomically: true, encoding: .utf8)
    let library = dir.appendingPathComponent("libStepsSeenV\(version).so").path
    let (status, output) = try TestProcess.run(
        cCompiler,
        [
            "-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra", "-Werror", "-DPLUGIN_ABI=\(version)",
            "-I", packageRoot.appendingPathComponent("Sources/CMoERoutingPlugin/include").path,
            "-o", library, source.path,
        ]
    )
    guard status == 0 else {
        throw PluginError(path: source.path, message: "compiling the test plugin failed:\n\(output)")
    }
    return library
}

/// Removes the directory `buildCPlugin` made for `library` (a loaded library stays mapped).
private func removeCPlugin(_ library: String) {
    try? FileManager.default.removeItem(at: URL(fileURLWithPath: library).deletingLastPathComponent())
}

/// A copy of `block` with the step column `step`.
private func withSteps(_ block: RoutingBlock, _ step: [UInt32]?) throws -> RoutingBlock {
    try RoutingBlock(
        shape: block.shape,
        ids: block.ids,
        weights: block.weights,
        present: block.present,
        domain: block.domain,
        domains: block.domains,
        problemID: block.problemID,
        position: block.position,
        phase: block.phase,
        tokenID: block.tokenID,
        step: step
    )
}

/// Collects the contexts and blocks that the analyzers of an in-process exported plugin receive.
private final class BlockStore: Sendable {
    let contexts = Mutex<[AnalysisContext]>([])
    let blocks = Mutex<[RoutingBlock]>([])
}

/// Hands every context it begins with and every block it consumes to a ``BlockStore``.
private final class StoringAnalyzer: RoutingAnalyzer {
    let name = "storing"
    let store: BlockStore
    init(store: BlockStore) { self.store = store }
    func begin(_ context: AnalysisContext) throws { store.contexts.withLock { $0.append(context) } }
    func consume(_ block: RoutingBlock) throws { store.blocks.withLock { $0.append(block) } }
    func merge(_ other: any RoutingAnalyzer) throws {}
    func finish() throws -> AnalyzerReport { AnalyzerReport(analyzer: name, title: "Storing", json: .null) }
}

@Suite struct PluginABITests {
    /// The tiny model's shape without its name, which the C block does not carry, so blocks that
    /// crossed the ABI compare equal to the originals.
    let shape = try! ModelShape(layers: 4, experts: 8, topK: 2)
    /// Two blocks of 3 problems x 4 tokens, in two domains.
    var base: [RoutingBlock] {
        var g = SyntheticRouting(shape: shape, seed: 5, missingRate: 0.1)
        return [
            g.makeBlock(problems: 3, tokensPerProblem: 4, domain: "humaneval"),
            g.makeBlock(problems: 3, tokensPerProblem: 4, domain: "gsm8k"),
        ]
    }
    /// Steps of the first block: three tokens per step from step 70000 (beyond 16 bits), every
    /// fourth token unknown.
    var steps: [UInt32] {
        (0..<base[0].tokenCount).map { t in t % 4 == 3 ? UInt32.max : 70_000 + UInt32(t / 3) }
    }

    @Test func hostLoadsVersionsOneAndTwo() {
        #expect(PluginLibrary.supportedABIVersions == 1...2)
    }

    @Test func exportedSwiftPluginReceivesEveryColumnIncludingStep() throws {
        let store = BlockStore()
        let exported = PluginExporter.export([
            .init(name: "storing", summary: "stores blocks") { StoringAnalyzer(store: store) }
        ])
        let library = try PluginLibrary(table: exported.table, path: "in-process export")
        #expect(library.abiVersion == 2)
        let analyzer = try library.makeAnalyzer(at: 0)
        try analyzer.begin(AnalysisContext(shape: shape))
        let sent = [
            try withSteps(base[0], steps),
            base[1],  // no step column
            try withSteps(RoutingBlock.empty(shape: shape, domains: ["humaneval"]), []),  // zero tokens, steps recorded
        ]
        #expect(sent[1].step == nil)
        for block in sent { try analyzer.consume(block) }
        let received = store.blocks.withLock { $0 }
        #expect(received.count == 3)
        #expect(received.map(\.step) == [steps, nil, []])
        #expect(received == sent)
    }

    /// The context crosses the ABI as JSON with the seed a JSON number; the plugin reads back
    /// exactly the seed the host began with, above 2^53 and up to UInt64.max too.
    @Test func exportedSwiftPluginReceivesTheSeedExactly() throws {
        let store = BlockStore()
        let exported = PluginExporter.export([
            .init(name: "storing", summary: "stores blocks") { StoringAnalyzer(store: store) }
        ])
        let library = try PluginLibrary(table: exported.table, path: "in-process export")
        let sent = [0, 0x5EED, (1 << 53) + 1, UInt64(Int.max) + 1, UInt64.max].map {
            AnalysisContext(shape: shape, settings: ["engine": "test"], seed: $0)
        }
        for context in sent { try library.makeAnalyzer(at: 0).begin(context) }
        #expect(store.contexts.withLock { $0 } == sent)
    }

    @Test(.enabled(if: cCompiler != nil, "no C compiler (cc) on PATH to build the test plugin"))
    func cPluginOfVersionTwoSeesTheSteps() throws {
        let path = try buildCPlugin(version: 2)
        defer { removeCPlugin(path) }
        let library = try PluginLibrary(path: path)
        #expect(library.abiVersion == 2)
        #expect(library.analyzers.map(\.name) == ["steps-seen"])
        let analyzer = try library.makeAnalyzer(at: 0)
        try analyzer.begin(AnalysisContext(shape: shape))
        try analyzer.consume(try withSteps(base[0], steps))
        try analyzer.consume(base[1])
        let json = try analyzer.finish().json
        #expect(json["abi"] == .int(2))
        #expect(json["with_steps"] == .int(1))
        #expect(json["without_steps"] == .int(1))
        #expect(json["steps"] == .array(steps.map { .int(Int($0)) }))
        #expect(json["steps"]?[3] == .int(4_294_967_295))
        #expect(json["tokens"] == .int(24))
        #expect(json["position_sum"] == .int(base.flatMap(\.position).reduce(0) { $0 + Int($1) }))
        #expect(json["last_domain"] == .string("gsm8k"))
    }

    @Test(.enabled(if: cCompiler != nil, "no C compiler (cc) on PATH to build the test plugin"))
    func cPluginOfVersionOneStillLoadsAndReadsTheOldColumns() throws {
        let path = try buildCPlugin(version: 1)
        defer { removeCPlugin(path) }
        let library = try PluginLibrary(path: path)
        #expect(library.abiVersion == 1)
        let analyzer = try library.makeAnalyzer(at: 0)
        try analyzer.begin(AnalysisContext(shape: shape))
        try analyzer.consume(try withSteps(base[0], steps))
        try analyzer.consume(base[1])
        let json = try analyzer.finish().json
        #expect(json["abi"] == .int(1))
        #expect(json["tokens"] == .int(24))
        #expect(json["position_sum"] == .int(base.flatMap(\.position).reduce(0) { $0 + Int($1) }))
        #expect(json["last_domain"] == .string("gsm8k"))
        // It never reads `step`.
        #expect(json["with_steps"] == .int(0))
        #expect(json["steps"] == .array([]))
    }

    @Test(.enabled(if: cCompiler != nil, "no C compiler (cc) on PATH to build the test plugin"), arguments: [0, 3])
    func pluginsOfOtherVersionsAreRefused(version: Int) throws {
        let path = try buildCPlugin(version: version)
        defer { removeCPlugin(path) }
        #expect {
            try PluginLibrary(path: path)
        } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("ABI version \(version),") && text.contains("versions 1 to 2")
                && !text.contains("\n")
        }
    }
}
