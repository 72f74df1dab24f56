// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The real Mixtral-8x7B routing traces in ../shared/data (decode tokens of 2 HumanEval and 2
// GSM8K problems), read with a small test-local JSONL parser (independent of the package's
// reader) for the analyzers' real-data tests. Skipped by those tests when the data is absent.

import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

enum MixtralRealTraces {
    /// ../shared/data relative to the package root (the directory holding Package.swift).
    static let directory: URL? = TestPaths.sharedData(from: #filePath)

    static let humaneval = "mixtral_humaneval_2problems_routing.jsonl"
    static let gsm8k = "mixtral_gsm8k_2problems_routing.jsonl"

    static var available: Bool {
        guard let d = directory else { return false }
        return [humaneval, gsm8k].allSatisfy {
            FileManager.default.fileExists(atPath: d.appendingPathComponent($0).path)
        }
    }

    private struct Key: Hashable, Comparable {
        var dataset: String
        var problem: Int64
        var token: Int
        static func < (a: Key, b: Key) -> Bool { (a.dataset, a.problem, a.token) < (b.dataset, b.problem, b.token) }
    }

    /// Every token of `files` as one block, and the record count. Records
    /// `{"dataset", "problem_id", "layer", "experts", "gating_probs", "token_idx"}` each fill one
    /// (token, layer) cell; tokens are (dataset, problem, token_idx), in that order.
    static func block(_ files: [String]) throws -> (block: RoutingBlock, records: Int) {
        guard let dir = directory else { throw CocoaError(.fileNoSuchFile) }
        var cells: [Key: [(layer: Int, experts: [Int], weights: [Double])]] = [:]
        var records = 0
        for name in files {
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
                cells[Key(dataset: dataset, problem: problem, token: token), default: []].append(
                    (layer, experts, weights)
                )
                records += 1
            }
        }
        var builder = RoutingBlockBuilder(shape: .mixtral8x7B)
        for key in cells.keys.sorted() {
            let t = try builder.appendToken(
                TokenMetadata(domain: key.dataset, problemID: key.problem, position: Int32(key.token), phase: .decode)
            )
            for c in cells[key] ?? [] {
                try builder.setCell(token: t, layer: c.layer, experts: c.experts, weights: c.weights)
            }
        }
        return (builder.makeBlock(), records)
    }
}
