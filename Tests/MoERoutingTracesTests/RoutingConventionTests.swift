// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

/// The routing convention (weight kind, scale, shared experts, trace layer to decoder layer)
/// through header settings, the binary and NPZ traces, and traces written before it existed.
struct RoutingConventionTests {
    typealias S = BinaryTestSupport

    /// DeepSeek-V3-like: sigmoid, renormalised, the scaling factor applied to the output, one
    /// shared expert, a dense first layer.
    static let deepseek = RoutingConvention(
        score: .sigmoid,
        renormalised: true,
        weightScale: 1,
        routedScalingFactor: 2.5,
        expertSelection: "grouped top-k (4 groups, keep 2), correction bias",
        sharedExperts: 1,
        decoderLayers: 5,
        moeLayers: [1, 2, 3, 4]
    )

    @Test func settingsRoundTripAndDescribeTheLayers() throws {
        let c = Self.deepseek
        #expect(c.weightKind == "sigmoid-renormalised")
        #expect(c.settings["capture.weight_kind"] == "sigmoid-renormalised")
        #expect(c.settings["capture.routed_scaling_factor"] == "2.5")
        #expect(c.settings["capture.weight_scale"] == "1")
        #expect(c.settings["capture.layer_numbers"] == "1,2,3,4")
        #expect(try RoutingConvention(settings: c.settings) == c)
        #expect(c.denseLayers == [0])
        #expect(c.decoderLayer(ofTraceLayer: 0) == 1)
        #expect(c.decoderLayer(ofTraceLayer: 3) == 4)
        #expect(c.decoderLayer(ofTraceLayer: 4) == nil)
        let olmoe = RoutingConvention(score: .softmax, renormalised: false, decoderLayers: 16, moeLayers: Array(0..<16))
        #expect(olmoe.weightKind == "softmax")
        #expect(olmoe.denseLayers.isEmpty)
        #expect(try RoutingConvention(settings: olmoe.settings) == olmoe)
        #expect(!olmoe.hasComparableWeights(to: c))
        var scaled = c
        scaled.weightScale = 2.5
        #expect(!scaled.hasComparableWeights(to: c))
        #expect(c.hasComparableWeights(to: c))
    }

    @Test func oldSettingsHaveNoConventionAndMalformedOnesNameTheKey() throws {
        // A header from before the convention keys (only the layer numbers were there).
        #expect(try RoutingConvention(settings: ["engine": "vllm", "capture.layer_numbers": "0,1,2,3"]) == nil)
        #expect(try RoutingConvention(settings: [:]) == nil)
        // Missing optional keys take their defaults; the decoder layer count follows the layers.
        let minimal = try #require(
            try RoutingConvention(settings: [
                "capture.weight_kind": "softmax-renormalised", "capture.layer_numbers": "0,2",
            ])
        )
        #expect(minimal.decoderLayers == 3 && minimal.denseLayers == [1] && minimal.sharedExperts == 0)
        let bad: [(String, String)] = [
            ("capture.weight_kind", "tanh"),
            ("capture.weight_kind", "softmax-normalized"),
            ("capture.weight_scale", "-1"),
            ("capture.routed_scaling_factor", "x"),
            ("capture.shared_experts", "one"),
            ("capture.layer_numbers", "2,1"),
            ("capture.decoder_layers", "3"),
        ]
        for (key, value) in bad {
            var settings = Self.deepseek.settings
            settings[key] = value
            do {
                _ = try RoutingConvention(settings: settings)
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect(error.key == key)
                #expect(error.description.contains(key) && error.description.contains("'\(value)'"))
            }
        }
    }

    @Test func binaryAndNPZTracesKeepTheConvention() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let settings = Self.deepseek.settings.merging(["engine": "test"]) { a, _ in a }

        let binary = dir + "/c.moetrace"
        let w = try BinaryTraceWriter(path: binary, shape: S.narrowShape, settings: settings)
        for b in blocks { try w.write(b) }
        try w.close()
        let reader = try BinaryTraceReader(path: binary)
        #expect(try RoutingConvention(settings: reader.header.settings) == Self.deepseek)

        let npz = dir + "/c.npz"
        let n = try NPZWriter(path: npz, shape: S.narrowShape, settings: settings)
        for b in blocks { try n.write(b) }
        try n.close()
        let npzReader = try NPZTraceReader(path: npz)
        #expect(try RoutingConvention(settings: npzReader.settings) == Self.deepseek)

        // A trace without the keys still reads, and has no convention.
        let old = dir + "/old.moetrace"
        let o = try BinaryTraceWriter(path: old, shape: S.narrowShape, settings: ["engine": "vllm"])
        for b in blocks { try o.write(b) }
        try o.close()
        let (read, oldReader) = try S.readAll(old)
        #expect(read.reduce(0) { $0 + $1.recordCount } == blocks.reduce(0) { $0 + $1.recordCount })
        #expect(try RoutingConvention(settings: oldReader.header.settings) == nil)
    }
}
