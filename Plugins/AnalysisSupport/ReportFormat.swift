// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Formatting shared by analyzer tables and JSON.
///
/// ```swift
/// ReportFormat.fixed(0.12345)        // "0.123"
/// ReportFormat.fixed(nil)            // "-"
/// ReportFormat.shape(.mixtral8x7B)   // {"layers":32,"experts":8,"top_k":2,"name":"mixtral-8x7b"}
/// ```
public enum ReportFormat {
    /// A number with `digits` decimals (rounded half away from zero), "-" for nil or non-finite.
    public static func fixed(_ x: Double?, _ digits: Int = 3) -> String {
        guard let x, x.isFinite else { return "-" }
        let d = max(0, min(12, digits))
        var scale = 1.0
        for _ in 0..<d { scale *= 10 }
        let r = (abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard r < 9e15 else { return "\(x)" }
        let n = Int(r)
        let sign = x < 0 && n != 0 ? "-" : ""
        if d == 0 { return sign + String(n) }
        let p = Int(scale)
        let frac = String(n % p)
        return sign + String(n / p) + "." + String(repeating: "0", count: d - frac.count) + frac
    }

    /// A share as a percentage with `digits` decimals, "-" for nil.
    public static func percent(_ x: Double?, _ digits: Int = 1) -> String {
        guard let x, x.isFinite else { return "-" }
        return fixed(x * 100, digits) + "%"
    }

    /// The model shape as a JSON object: layers, experts, top_k and name (null when unnamed).
    public static func shape(_ s: ModelShape) -> ReportValue {
        .object([
            .init("layers", .int(s.layers)),
            .init("experts", .int(s.experts)),
            .init("top_k", .int(s.topK)),
            .init("name", s.name.map { .string($0) } ?? .null),
        ])
    }

    /// The chance values as a JSON object: top1_same, overlap_fraction, any_overlap, set_same.
    public static func chance(_ c: ChanceRates) -> ReportValue {
        .object([
            .init("top1_same", .number(c.top1Same)),
            .init("overlap_fraction", .number(c.overlapFraction)),
            .init("any_overlap", .number(c.anyOverlap)),
            .init("set_same", .number(c.setSame)),
        ])
    }

    /// Random-guess prediction baselines as JSON: top1 1/E, top2 min(2,E)/E, set recall k/E.
    public static func randomPrediction(_ c: ChanceRates) -> ReportValue {
        .object([
            .init("top1_accuracy", .number(c.top1Accuracy)),
            .init("top2_accuracy", .number(c.top2Accuracy)),
            .init("set_recall", .number(c.setRecall)),
        ])
    }
}
