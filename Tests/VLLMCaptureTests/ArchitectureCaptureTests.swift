// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import PythonRuntime
import Testing
import VLLMCapture

/// `moe-routing run --arch A` on each tiny default model other than Mixtral (whose capture
/// ``VLLMEngineTests`` checks in this process), one child process per architecture since one
/// process holds one vLLM engine here. Each trace is checked against transformers' own
/// implementation of the architecture, run in this process on the same weights: every
/// (token, MoE layer) is in the trace exactly once, the expert sets agree on at least 99.9% of
/// them, and the weights differ by at most 1e-5 in float32 once both are on the same scale. The
/// trace header's routing convention (weight kind, scale, shared experts, decoder layer of each
/// trace layer) is the one the architecture's configuration implies.
@Suite(
    .serialized,
    .enabled(
        if: CaptureTestEnvironment.vllmAvailable || ToolProcess.requiredByCI,
        "needs the project venv with vLLM (scripts/setup-python.sh)"
    )
)
struct ArchitectureCaptureTests {
    /// What each tiny model's configuration (speculative_moe/tiny_model.py) implies.
    struct Expected: Sendable, CustomStringConvertible {
        var arch: String
        var architecture: String
        var weightKind: String
        var routedScalingFactor: Double
        var expertSelection: String
        var sharedExperts: Int
        var sharedExpertGate: String
        var moeLayers: [Int]
        /// Whether vLLM's attention computes what transformers' does for this architecture. Not
        /// for DeepSeek's multi-head latent attention on vLLM's CPU build: the router logits
        /// differ from the second position on (docs/capture.md), so routing is compared exactly
        /// where the inputs agree (position 0 of every sequence) and overall only loosely.
        var attentionAgrees = true
        var description: String { arch }
    }

    static let cases: [Expected] = [
        Expected(
            arch: "qwen3-moe",
            architecture: "Qwen3MoeForCausalLM",
            weightKind: "softmax-renormalised",
            routedScalingFactor: 1,
            expertSelection: "top-k",
            sharedExperts: 0,
            sharedExpertGate: "none",
            moeLayers: [1, 2, 3]
        ),
        Expected(
            arch: "qwen2-moe",
            architecture: "Qwen2MoeForCausalLM",
            weightKind: "softmax",
            routedScalingFactor: 1,
            expertSelection: "top-k",
            sharedExperts: 1,
            sharedExpertGate: "sigmoid",
            moeLayers: [0, 1, 2, 3]
        ),
        Expected(
            arch: "olmoe",
            architecture: "OlmoeForCausalLM",
            weightKind: "softmax",
            routedScalingFactor: 1,
            expertSelection: "top-k",
            sharedExperts: 0,
            sharedExpertGate: "none",
            moeLayers: [0, 1, 2, 3]
        ),
        Expected(
            arch: "deepseek-v2",
            architecture: "DeepseekV2ForCausalLM",
            weightKind: "softmax",
            routedScalingFactor: 2,
            expertSelection: "grouped top-k (2 groups, keep 1)",
            sharedExperts: 1,
            sharedExpertGate: "none",
            moeLayers: [1, 2, 3],
            attentionAgrees: false
        ),
        Expected(
            arch: "deepseek-v3",
            architecture: "DeepseekV3ForCausalLM",
            weightKind: "sigmoid-renormalised",
            routedScalingFactor: 2.5,
            expertSelection: "grouped top-k (4 groups, keep 2), correction bias",
            sharedExperts: 1,
            sharedExpertGate: "none",
            moeLayers: [1, 2, 3],
            attentionAgrees: false
        ),
        Expected(
            arch: "gpt-oss",
            architecture: "GptOssForCausalLM",
            weightKind: "softmax-renormalised",
            routedScalingFactor: 1,
            expertSelection: "top-k",
            sharedExperts: 0,
            sharedExpertGate: "none",
            moeLayers: [0, 1, 2, 3]
        ),
    ]

    /// New tokens per problem: with --ignore-eos every problem routes prompt + 11 positions.
    static let maxTokens = 12

    @Test(arguments: cases)
    func captureMatchesTransformers(_ expected: Expected) throws {
        try #require(
            CaptureTestEnvironment.vllmAvailable,
            "vLLM is not installed in the venv (CI=true: this test must run)"
        )
        try #require(ToolProcess.isBuilt, "\(ToolProcess.path) is not built (swift build --build-tests)")
        let dir = try CaptureTestEnvironment.temporaryDirectory("arch-\(expected.arch)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ToolProcess.run(
            [
                "run", "--arch", expected.arch, "--no-progress", "--output", dir, "--num-problems", "2",
                "--max-tokens", String(Self.maxTokens), "--ignore-eos", "--analyzer", "summary",
            ],
            timeout: 600
        )
        try #require(run.status == 0, "moe-routing run --arch \(expected.arch) failed: \(run.stderr)")
        let model = CaptureTestEnvironment.projectRoot + "/models/tiny-\(expected.arch)"

        // The header says what the weights are and where the layers sit.
        let reader = try BinaryTraceReader(path: dir + "/trace.moetrace")
        let settings = reader.header.settings
        let convention = try #require(try RoutingConvention(settings: settings), "no routing convention in the header")
        #expect(settings["capture.architecture"] == expected.architecture)
        #expect(convention.weightKind == expected.weightKind)
        #expect(convention.routedScalingFactor == expected.routedScalingFactor)
        #expect(convention.weightScale == 1 || convention.weightScale == expected.routedScalingFactor)
        #expect(convention.expertSelection == expected.expertSelection)
        #expect(convention.sharedExperts == expected.sharedExperts)
        #expect(convention.sharedExpertGate == expected.sharedExpertGate)
        #expect(convention.moeLayers == expected.moeLayers)
        #expect(convention.decoderLayers == 4)
        let shape = reader.header.shape
        #expect(shape.layers == expected.moeLayers.count && shape.experts == 8 && shape.topK == 2)

        // The routing of each problem, in position order.
        var blocks: [String: [RoutingBlock]] = [:]
        while let block = try reader.nextBlock() {
            guard block.tokenCount > 0 else { continue }
            let key = "\(block.domains[Int(block.domain[0])])/\(block.problemID[0])"
            blocks[key, default: []].append(block)
        }
        #expect(reader.isComplete)
        let outputs = try String(contentsOfFile: dir + "/outputs.jsonl", encoding: .utf8)
            .split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        #expect(outputs.count == 4)

        var sequences: [[Int]] = []
        var routed: [[RoutingBlock]] = []
        for output in outputs {
            let key = "\(output["domain"] as? String ?? "?")/\(output["problem_id"] as? Int ?? -1)"
            let prompt = (output["prompt_token_ids"] as? [Int]) ?? []
            let generated = (output["token_ids"] as? [Int]) ?? []
            #expect(generated.count == Self.maxTokens, "\(key)")
            let sequence = Array((prompt + generated).dropLast())
            let mine = try #require(blocks[key], "problem \(key) has no routing in the trace")
            // Every position once, in order, with its token; every layer of every position.
            #expect(mine.flatMap(\.position) == (0..<Int32(sequence.count)).map { $0 }, "\(key)")
            #expect(mine.flatMap(\.tokenID).map(Int.init) == sequence, "\(key)")
            #expect(mine.allSatisfy { $0.present.allSatisfy { $0 } }, "\(key)")
            sequences.append(sequence)
            routed.append(mine)
        }

        let reference = try transformersRouting(model: model, sequences: sequences, shape: shape)
        #expect(reference.decoderLayers == expected.moeLayers)
        // transformers' weights carry the routed scaling factor; the trace's carry weightScale.
        let toReference = Float(convention.routedScalingFactor / convention.weightScale)
        var agree = 0
        var total = 0
        var maxDiff: Float = 0
        // Position 0 attends to itself only: its routing depends on no attention arithmetic.
        var firstAgree = 0
        var firstTotal = 0
        var firstMaxDiff: Float = 0
        for (i, blocksOfProblem) in routed.enumerated() {
            let (ids, weights) = reference.perSequence[i]
            var t = 0
            for b in blocksOfProblem {
                for bt in 0..<b.tokenCount {
                    defer { t += 1 }
                    for l in 0..<shape.layers {
                        total += 1
                        let base = (t * shape.layers + l) * shape.topK
                        let slots = (0..<shape.topK).map {
                            (b.expert(token: bt, layer: l, slot: $0), b.weight(token: bt, layer: l, slot: $0))
                        }
                        .sorted { $0.1 > $1.1 }
                        if t == 0 { firstTotal += 1 }
                        guard Set(slots.map(\.0)) == Set((0..<shape.topK).map { Int(ids[base + $0]) }) else { continue }
                        agree += 1
                        if t == 0 { firstAgree += 1 }
                        for (s, slot) in slots.enumerated() {
                            let diff = abs(slot.1 * toReference - weights[base + s])
                            maxDiff = max(maxDiff, diff)
                            if t == 0 { firstMaxDiff = max(firstMaxDiff, diff) }
                        }
                    }
                }
            }
        }
        let share = Double(agree) / Double(max(total, 1))
        print(
            "\(expected.arch): \(agree)/\(total) (token, layer) expert sets agree with transformers, max weight difference \(maxDiff)"
        )
        #expect(total == sequences.reduce(0) { $0 + $1.count } * shape.layers)
        #expect(firstTotal == outputs.count * shape.layers)
        #expect(firstAgree == firstTotal, "position 0: \(firstAgree)/\(firstTotal) expert sets agree")
        #expect(firstMaxDiff <= 1e-5, "position 0: max weight difference \(firstMaxDiff)")
        if expected.attentionAgrees {
            #expect(share >= 0.999)
            #expect(maxDiff <= 1e-5)
        } else {
            // The logits themselves differ (attention), not the routing of them: most cells
            // still choose the same experts.
            print("\(expected.arch): position 0 \(firstAgree)/\(firstTotal), max weight difference \(firstMaxDiff)")
            #expect(share >= 0.9)
            // The routing step alone: transformers' router fed vLLM's own router logits chooses
            // every captured expert set, with the captured weights (vLLM in a child process).
            let check = try routingOnVLLMLogits(model: model)
            print(
                "\(expected.arch): transformers' router on vLLM's logits: \(check.agree)/\(check.cells), max weight difference \(check.maxDiff)"
            )
            #expect(check.cells > 0)
            #expect(check.agree == check.cells)
            #expect(check.maxDiff <= 1e-5)
        }
    }
}

/// `python -m speculative_moe.reference check-on-vllm-logits MODEL` in a child process (one vLLM
/// engine per process): captured (token, layer) cells, those whose expert set transformers'
/// router picks from vLLM's own logits, and the largest weight difference among those.
private func routingOnVLLMLogits(model: String) throws -> (cells: Int, agree: Int, maxDiff: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CaptureTestEnvironment.environment.path + "/bin/python")
    process.arguments = ["-m", "speculative_moe.reference", "check-on-vllm-logits", model]
    var environment = ProcessInfo.processInfo.environment
    environment["PYTHONPATH"] = try CapturePythonPackage.locate()
    process.environment = environment
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let errorText = Locked()
    let reader = Thread {
        errorText.set(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
    reader.start()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    while !errorText.isSet { Thread.sleep(forTimeInterval: 0.01) }
    let line = try #require(
        text.split(separator: "\n").last { $0.hasPrefix("RESULT ") },
        "no result from the check (status \(process.terminationStatus)): \(errorText.value.suffix(2000))"
    )
    let json = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(7).utf8)) as? [String: Any])
    return (
        json["cells"] as? Int ?? 0, json["agree"] as? Int ?? -1, json["max_weight_difference"] as? Double ?? .infinity
    )
}

/// A string set once from another thread.
private final class Locked: @unchecked Sendable {
    private let lock = NSLock()
    private var text: String?
    func set(_ value: String) { lock.withLock { text = value } }
    var isSet: Bool { lock.withLock { text != nil } }
    var value: String { lock.withLock { text ?? "" } }
}

/// transformers' routing of `sequences` on the model at `model`: per sequence, expert ids and
/// weights [T][L][k] ordered by weight, and the decoder layer of each reference layer.
private func transformersRouting(
    model: String,
    sequences: [[Int]],
    shape: ModelShape
) throws -> (perSequence: [([Int32], [Float])], decoderLayers: [Int]) {
    try #require(CaptureTestEnvironment.pythonAvailable)
    return try Python.withGIL { gil in
        let reference = try gil.import("speculative_moe.reference")
        let results = try reference.attribute("reference_routing").call(model, sequences)
        var layers: [Int] = []
        let perSequence = try results.elements().map { r in
            layers = try r.item("decoder_layers").convert(to: [Int].self)
            let ids = try r.item("ids").withBuffer(of: Int32.self) { b in
                try b.requireShape([nil, shape.layers, shape.topK])
                return Array(b.elements)
            }
            let weights = try r.item("weights").withBuffer(of: Float.self) { Array($0.elements) }
            return (ids, weights)
        }
        return (perSequence, layers)
    }
}
