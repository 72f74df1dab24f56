// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The routing shape of a Mixture-of-Experts model: how many MoE layers, how many experts each
/// layer has, and how many experts every token selects at every layer.
///
/// Expert ids are local to a layer: expert 3 of layer 5 and expert 3 of layer 6 are unrelated
/// weight matrices. The shape says nothing about which ids "match" across layers.
///
/// ```swift
/// let shape = ModelShape.mixtral8x7B          // L = 32, E = 8, k = 2
/// let tiny = try ModelShape(layers: 4, experts: 8, topK: 2, name: "tiny-mixtral")
/// ```
public struct ModelShape: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Number of MoE layers (L).
    public var layers: Int
    /// Number of experts per layer (E).
    public var experts: Int
    /// Number of experts each token selects per layer (k).
    public var topK: Int
    /// Optional model name, for reports.
    public var name: String?

    /// The largest expert count a trace may describe.
    public static let maximumExperts = Int(UInt16.max) + 1
    /// The largest layer count a trace may describe.
    public static let maximumLayers = 4096

    /// Creates a shape, validating that `1 <= topK <= experts`.
    ///
    /// - Throws: ``RoutingError/invalidShape(_:)`` when a dimension is out of range.
    public init(layers: Int, experts: Int, topK: Int, name: String? = nil) throws {
        guard (1...Self.maximumLayers).contains(layers) else {
            throw RoutingError.invalidShape("layer count \(layers) is outside 1...\(Self.maximumLayers)")
        }
        guard (1...Self.maximumExperts).contains(experts) else {
            throw RoutingError.invalidShape("expert count \(experts) is outside 1...\(Self.maximumExperts)")
        }
        guard (1...experts).contains(topK) else {
            throw RoutingError.invalidShape("top-k \(topK) is outside 1...\(experts) (the expert count)")
        }
        self.layers = layers
        self.experts = experts
        self.topK = topK
        self.name = name
    }

    /// Mixtral-8x7B: 32 MoE layers, 8 experts, top-2.
    public static let mixtral8x7B = try! ModelShape(layers: 32, experts: 8, topK: 2, name: "mixtral-8x7b")
    /// The tiny Mixtral-architecture model the project generates for CPU runs: 4 layers, 8 experts, top-2.
    public static let tinyMixtral = try! ModelShape(layers: 4, experts: 8, topK: 2, name: "tiny-mixtral")

    /// Named presets accepted by `--shape`.
    public static let presets: [String: ModelShape] = [
        "mixtral-8x7b": .mixtral8x7B,
        "mixtral-8x22b": try! ModelShape(layers: 56, experts: 8, topK: 2, name: "mixtral-8x22b"),
        "tiny-mixtral": .tinyMixtral,
        "qwen1.5-moe-a2.7b": try! ModelShape(layers: 24, experts: 60, topK: 4, name: "qwen1.5-moe-a2.7b"),
        "deepseek-v2-lite": try! ModelShape(layers: 26, experts: 64, topK: 6, name: "deepseek-v2-lite"),
        "olmoe-1b-7b": try! ModelShape(layers: 16, experts: 64, topK: 8, name: "olmoe-1b-7b"),
        // The shapes researchers profile in 2026 (MoE layers only: dense layers route nothing).
        "qwen3-30b-a3b": try! ModelShape(layers: 48, experts: 128, topK: 8, name: "qwen3-30b-a3b"),
        "qwen3-235b-a22b": try! ModelShape(layers: 94, experts: 128, topK: 8, name: "qwen3-235b-a22b"),
        "deepseek-v3": try! ModelShape(layers: 58, experts: 256, topK: 8, name: "deepseek-v3"),
        "kimi-k2": try! ModelShape(layers: 60, experts: 384, topK: 8, name: "kimi-k2"),
        "gpt-oss-120b": try! ModelShape(layers: 36, experts: 128, topK: 4, name: "gpt-oss-120b"),
        "gpt-oss-20b": try! ModelShape(layers: 24, experts: 32, topK: 4, name: "gpt-oss-20b"),
    ]

    /// Whether expert ids fit in one byte (E <= 256).
    @inlinable public var usesNarrowIDs: Bool { experts <= 256 }

    public var description: String {
        let base = "L=\(layers) E=\(experts) k=\(topK)"
        return name.map { "\($0) (\(base))" } ?? base
    }

    private enum CodingKeys: String, CodingKey {
        case layers, experts
        case topK = "top_k"
        case name
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            layers: c.decode(Int.self, forKey: .layers),
            experts: c.decode(Int.self, forKey: .experts),
            topK: c.decode(Int.self, forKey: .topK),
            name: c.decodeIfPresent(String.self, forKey: .name)
        )
    }
}

extension ModelShape {
    /// Throws unless `block` has this shape's L, E and k (names are ignored): the check every
    /// analyzer makes on each block it consumes.
    ///
    /// - Throws: ``RoutingError/invalidShape(_:)`` naming the analyzer and both shapes.
    public func requireMatch(_ block: ModelShape, analyzer: String) throws {
        guard block.layers == layers, block.experts == experts, block.topK == topK else {
            throw RoutingError.invalidShape(
                "\(analyzer): block shape \(block) differs from the analysis shape L=\(layers) E=\(experts) k=\(topK); analyze one model per run"
            )
        }
    }
}

// MARK: - A shape as a user states it

extension ModelShape {
    /// A shape stated as command-line tools take it, one line that says what to give instead.
    public struct StatementError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The line to show.
        public var description: String
    }

    /// The shape a user stated as a preset name (``presets``) or as all three dimensions, or `nil`
    /// when neither was given (the shape is then inferred from the data).
    ///
    /// ```swift
    /// try ModelShape.stated(preset: "mixtral-8x7b", layers: nil, experts: nil, topK: nil)  // L=32 E=8 k=2
    /// try ModelShape.stated(preset: nil, layers: 4, experts: 8, topK: nil)  // throws: give all three
    /// ```
    ///
    /// - Throws: ``StatementError`` for a preset together with dimensions, some dimensions but not
    ///   all three, an unknown preset (the known ones are listed), or dimensions ``init(layers:experts:topK:name:)``
    ///   refuses.
    public static func stated(
        preset: String?,
        layers: Int?,
        experts: Int?,
        topK: Int?
    ) throws(StatementError)
        -> ModelShape?
    {
        let given = [layers, experts, topK].compactMap { $0 }.count
        if preset != nil, given > 0 {
            throw StatementError(description: "give either --shape or --layers/--experts/--top-k, not both")
        }
        if given != 0, given != 3 {
            throw StatementError(
                description: "--layers, --experts and --top-k go together: give all three, or --shape"
            )
        }
        if let preset {
            guard let shape = presets[preset] else {
                let known = presets.keys.sorted().joined(separator: ", ")
                throw StatementError(description: "unknown --shape '\(preset)'; known: \(known)")
            }
            return shape
        }
        guard let layers, let experts, let topK else { return nil }
        do {
            return try ModelShape(layers: layers, experts: experts, topK: topK)
        } catch {
            throw StatementError(description: "\(error)")
        }
    }
}
