// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// What a trace's routing weights are and how its layers map to the model's decoder layers, kept
// in the trace header's settings (`capture.*` keys) so that analyses compare like with like.

/// How a captured trace's numbers relate to the model: which weights are stored (softmax
/// probabilities or sigmoid scores, renormalised over the chosen experts or not, with or
/// without a routed scaling factor), the experts that are always active and never appear in the
/// trace (shared experts), and which decoder layer each trace layer is (dense decoder layers
/// route nothing and have no trace layer).
///
/// The capture writes it into the header settings (``settings``); ``init(settings:)`` reads it
/// back. Traces written before these keys existed have none: ``init(settings:)`` then gives
/// `nil`, and such traces read as before.
///
/// ```swift
/// if let convention = try RoutingConvention(settings: reader.header.settings) {
///     print(convention.weightKind, convention.sharedExperts, convention.decoderLayer(ofTraceLayer: 0))
/// }
/// ```
public struct RoutingConvention: Sendable, Equatable {
    /// The score function the router applies to its logits.
    public enum Score: String, Sendable, CaseIterable {
        /// Softmax over all experts (Mixtral, Qwen-MoE, OLMoE, DeepSeek-V2; gpt-oss's softmax
        /// over the top-k logits is the renormalised softmax).
        case softmax
        /// An independent sigmoid per expert (DeepSeek-V3).
        case sigmoid
    }

    /// The score function.
    public var score: Score
    /// Whether the chosen experts' scores are divided by their sum (the weights of a cell then
    /// sum to ``weightScale``); `false` for raw probabilities or scores (OLMoE, Qwen2-MoE).
    public var renormalised: Bool
    /// The factor already multiplied into the stored weights (1 when none).
    public var weightScale: Double
    /// The model's routed scaling factor (DeepSeek; 1 when it has none). When it differs from
    /// ``weightScale`` the engine applies it to the MoE layer's output, not to the weights.
    public var routedScalingFactor: Double
    /// How experts are chosen: `top-k`, or `grouped top-k (G groups, keep g)`, with
    /// `, correction bias` when a bias steers the choice (the weights stay the unbiased scores).
    public var expertSelection: String
    /// Experts active for every token beside the routed ones; not in the trace's expert ids.
    public var sharedExperts: Int
    /// How the shared experts' output is weighted: `none` (added as is) or `sigmoid` (a learned
    /// per-token gate, Qwen2-MoE).
    public var sharedExpertGate: String
    /// The model's decoder layer count, dense layers included.
    public var decoderLayers: Int
    /// The decoder layer of each trace layer: trace layer `i` is decoder layer `moeLayers[i]`.
    public var moeLayers: [Int]

    /// Creates a convention.
    public init(
        score: Score,
        renormalised: Bool,
        weightScale: Double = 1,
        routedScalingFactor: Double = 1,
        expertSelection: String = "top-k",
        sharedExperts: Int = 0,
        sharedExpertGate: String = "none",
        decoderLayers: Int,
        moeLayers: [Int]
    ) {
        self.score = score
        self.renormalised = renormalised
        self.weightScale = weightScale
        self.routedScalingFactor = routedScalingFactor
        self.expertSelection = expertSelection
        self.sharedExperts = sharedExperts
        self.sharedExpertGate = sharedExpertGate
        self.decoderLayers = decoderLayers
        self.moeLayers = moeLayers
    }

    /// `softmax`, `softmax-renormalised`, `sigmoid` or `sigmoid-renormalised`.
    public var weightKind: String { score.rawValue + (renormalised ? "-renormalised" : "") }

    /// The decoder layers that route nothing (dense MLP layers).
    public var denseLayers: [Int] {
        let moe = Set(moeLayers)
        return (0..<decoderLayers).filter { !moe.contains($0) }
    }

    /// The decoder layer of trace layer `layer`, or `nil` when the trace has no such layer.
    public func decoderLayer(ofTraceLayer layer: Int) -> Int? {
        moeLayers.indices.contains(layer) ? moeLayers[layer] : nil
    }

    /// Whether two traces' weights are the same kind of number (same score, renormalisation
    /// and scale), so that weight statistics of one compare with the other's.
    public func hasComparableWeights(to other: RoutingConvention) -> Bool {
        score == other.score && renormalised == other.renormalised && weightScale == other.weightScale
    }

    /// The header setting keys.
    public enum Key {
        /// ``RoutingConvention/weightKind``.
        public static let weightKind = "capture.weight_kind"
        /// ``RoutingConvention/weightScale``.
        public static let weightScale = "capture.weight_scale"
        /// ``RoutingConvention/routedScalingFactor``.
        public static let routedScalingFactor = "capture.routed_scaling_factor"
        /// ``RoutingConvention/expertSelection``.
        public static let expertSelection = "capture.expert_selection"
        /// ``RoutingConvention/sharedExperts``.
        public static let sharedExperts = "capture.shared_experts"
        /// ``RoutingConvention/sharedExpertGate``.
        public static let sharedExpertGate = "capture.shared_expert_gate"
        /// ``RoutingConvention/decoderLayers``.
        public static let decoderLayers = "capture.decoder_layers"
        /// ``RoutingConvention/moeLayers`` (comma-separated; the key older traces already had).
        public static let moeLayers = "capture.layer_numbers"
    }

    /// The convention as header settings.
    public var settings: [String: String] {
        [
            Key.weightKind: weightKind,
            Key.weightScale: Self.format(weightScale),
            Key.routedScalingFactor: Self.format(routedScalingFactor),
            Key.expertSelection: expertSelection,
            Key.sharedExperts: String(sharedExperts),
            Key.sharedExpertGate: sharedExpertGate,
            Key.decoderLayers: String(decoderLayers),
            Key.moeLayers: moeLayers.map(String.init).joined(separator: ","),
        ]
    }

    /// Reads the convention from header settings.
    ///
    /// - Returns: `nil` when the settings have no `capture.weight_kind` (a trace written before
    ///   the convention was recorded, or by another tool).
    /// - Throws: ``RoutingConventionError`` naming the setting whose value is malformed.
    public init?(settings: [String: String]) throws(RoutingConventionError) {
        guard let kind = settings[Key.weightKind] else { return nil }
        let parts = kind.split(separator: "-", maxSplits: 1).map(String.init)
        guard let score = parts.first.flatMap(Score.init(rawValue:)),
            parts.count == 1 || parts[1] == "renormalised"
        else {
            throw RoutingConventionError(
                key: Key.weightKind,
                value: kind,
                expected: "softmax, softmax-renormalised, sigmoid or sigmoid-renormalised"
            )
        }
        func number(_ key: String, default value: Double) throws(RoutingConventionError) -> Double {
            guard let text = settings[key] else { return value }
            guard let v = Double(text), v.isFinite, v > 0 else {
                throw RoutingConventionError(key: key, value: text, expected: "a positive number")
            }
            return v
        }
        func count(_ key: String, default value: Int) throws(RoutingConventionError) -> Int {
            guard let text = settings[key] else { return value }
            guard let v = Int(text), v >= 0 else {
                throw RoutingConventionError(key: key, value: text, expected: "a non-negative integer")
            }
            return v
        }
        var layers: [Int] = []
        if let text = settings[Key.moeLayers], !text.isEmpty {
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let v = Int(part), v >= 0, v > (layers.last ?? -1) else {
                    throw RoutingConventionError(
                        key: Key.moeLayers,
                        value: text,
                        expected: "increasing non-negative decoder layer numbers separated by commas"
                    )
                }
                layers.append(v)
            }
        }
        let decoderLayers = try count(Key.decoderLayers, default: (layers.last ?? -1) + 1)
        if let last = layers.last, last >= decoderLayers {
            throw RoutingConventionError(
                key: Key.decoderLayers,
                value: String(decoderLayers),
                expected: "more than the highest MoE decoder layer, \(last)"
            )
        }
        self.init(
            score: score,
            renormalised: parts.count == 2,
            weightScale: try number(Key.weightScale, default: 1),
            routedScalingFactor: try number(Key.routedScalingFactor, default: 1),
            expertSelection: settings[Key.expertSelection] ?? "top-k",
            sharedExperts: try count(Key.sharedExperts, default: 0),
            sharedExpertGate: settings[Key.sharedExpertGate] ?? "none",
            decoderLayers: decoderLayers,
            moeLayers: layers
        )
    }

    /// A number as the shortest text that reads back to it (`1`, `2.5`).
    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// A malformed routing-convention setting in a trace header.
public struct RoutingConventionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting's key.
    public var key: String
    /// Its value.
    public var value: String
    /// What a valid value looks like.
    public var expected: String

    /// Creates an error.
    public init(key: String, value: String, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String {
        "trace setting \(key) is '\(value)', expected \(expected) (the capture never writes this: correct or remove the setting)"
    }
}
