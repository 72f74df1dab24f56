// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The transition and multihop analyzers on the real Mixtral-8x7B traces in ../shared/data (decode
// tokens of 2 HumanEval and 2 GSM8K problems), read with a small test-local JSONL parser.
// Skipped when the data is absent.

import Foundation
import MoERouting
import MoERoutingTestKit
import MultiHopAnalyzer
import Testing
import TransitionAnalyzer

enum TransitionRealTraces {
    /// ../shared/data relative to the package root (the directory holding Package.swift).
    static let directory: URL? = TestPaths.sharedData(from: #filePath)

    static let humaneval = "mixtral_humaneval_2problems_routing.jsonl"
    static let gsm8k = "mixtral_gsm8k_2problems_routing.jsonl"

    static var available: Bool {
        guard let d = directory else { return false }
        return [humaneval, gsm8k].allSatisfy { FileManager.default.fileExists(atPath: d.appendingPathComponent($0).path) }
    }

    /// The tokens of one routing file as one block, and its record count. Records
    /// `{"dataset", "problem_id", "layer", "experts", "gating_probs", "token_idx"}`; tokens are
    /// (problem, token_idx), in that order.
    static func block(_ name: String) throws -> (block: RoutingBlock, records: Int) {
        guard let dir = directory else { throw CocoaError(.fileNoSuchFile) }
        struct Key: Hashable, Comparable {
            var problem: Int64
            var token: Int
            static func < (a: Key, b: Key) -> Bool { (a.problem, a.token) < (b.problem, b.token) }
        }
        var cells: [Key: [(layer: Int, experts: [Int], weights: [Double])]] = [:]
        var domain = ""
        var records = 0
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        for (n, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let dataset = obj["dataset"] as? String,
                let problem = (obj["problem_id"] as? NSNumber)?.int64Value,
                let layer = (obj["layer"] as? NSNumber)?.intValue,
                let token = (obj["token_idx"] as? NSNumber)?.intValue,
                let experts = (obj["experts"] as? [NSNumber])?.map(\.intValue),
                let weights = (obj["gating_probs"] as? [NSNumber])?.map(\.doubleValue)
            else {
                Issue.record("\(name):\(n + 1): unexpected record")
                continue
            }
            domain = dataset
            cells[Key(problem: problem, token: token), default: []].append((layer, experts, weights))
            records += 1
        }
        var builder = RoutingBlockBuilder(shape: .mixtral8x7B)
        for key in cells.keys.sorted() {
            let t = try builder.appendToken(TokenMetadata(domain: domain, problemID: key.problem, position: Int32(key.token), phase: .decode))
            for c in cells[key] ?? [] { try builder.setCell(token: t, layer: c.layer, experts: c.experts, weights: c.weights) }
        }
        return (builder.makeBlock(), records)
    }
}

struct TransitionRealDataTests {
    /// Next-layer top-1 equality on real Mixtral routing is at chance (1/8): science.md measured
    /// 0.127 (HumanEval) and 0.117 (GSM8K). Skipped when ../shared/data is absent.
    @Test(.enabled(if: TransitionRealTraces.available, "skipped: ../shared/data with the Mixtral routing traces is absent"))
    func nextLayerTop1IsAtChance() throws {
        for (name, measured, records) in [
            (TransitionRealTraces.humaneval, 0.127, 10779), (TransitionRealTraces.gsm8k, 0.117, 7889),
        ] {
            let (block, n) = try TransitionRealTraces.block(name)
            #expect(n == records)
            #expect(block.recordCount == records)
            let a = TransitionAnalyzer()
            try a.begin(AnalysisContext(shape: .mixtral8x7B))
            try a.consume(block)
            let report = try a.finish()
            let pooled = report.json["pooled"]
            let same = pooled?["top1_same"]?.doubleValue ?? .nan
            #expect(abs(same - measured) < 0.0015, "\(name): top1_same \(same), science.md \(measured)")
            #expect(abs(same - 0.125) < 0.015)
            // Holes: some tokens lack layers, so some pairs are skipped and counted.
            #expect((pooled?["skipped_pairs"]?.intValue ?? 0) > 0)
            // Overlap fraction near chance 0.25 (science.md: 0.24-0.25).
            #expect(abs((pooled?["overlap_fraction"]?.doubleValue ?? 0) - 0.245) < 0.015)
            // Two problems: cross-validation runs (2 folds), and its figures are reported.
            #expect(pooled?["prediction"]?["top1_accuracy"]?.doubleValue != nil)
            #expect(report.json["problems"]?.intValue == 2)
        }
    }

    /// The same at distances 2..16 (science.md): every same-id rate stays near chance.
    @Test(.enabled(if: TransitionRealTraces.available, "skipped: ../shared/data with the Mixtral routing traces is absent"))
    func sameIdRatesAtLongerDistancesAreAtChance() throws {
        let a = MultiHopAnalyzer()
        try a.begin(AnalysisContext(shape: .mixtral8x7B))
        for name in [TransitionRealTraces.humaneval, TransitionRealTraces.gsm8k] { try a.consume(try TransitionRealTraces.block(name).block) }
        let json = try a.finish().json
        for d in 2...16 {
            let row = json["distances"]?[d - 1]
            #expect(row?["distance"]?.intValue == d)
            #expect(abs((row?["top1_same"]?.doubleValue ?? 0) - 0.125) < 0.02, "distance \(d)")
            #expect(abs((row?["overlap_fraction"]?.doubleValue ?? 0) - 0.25) < 0.02, "distance \(d)")
        }
        #expect((json["paths"]?["complete_tokens"]?.intValue ?? 0) > 0)
    }
}
