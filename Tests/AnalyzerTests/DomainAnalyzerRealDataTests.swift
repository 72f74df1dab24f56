// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// DomainAnalyzer on the real Mixtral-8x7B traces in ../shared/data (2 HumanEval and 2 GSM8K
// problems), read with a small test-local JSONL parser. Skipped when the data is absent.

import DomainAnalyzer
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

enum DomainRealData {
    /// ../shared/data relative to the package root (the directory holding Package.swift).
    static let directory: URL? = TestPaths.sharedData(from: #filePath)

    static let files = ["mixtral_humaneval_2problems_routing.jsonl", "mixtral_gsm8k_2problems_routing.jsonl"]

    static var available: Bool {
        guard let d = directory else { return false }
        return files.allSatisfy { FileManager.default.fileExists(atPath: d.appendingPathComponent($0).path) }
    }

    struct Key: Hashable, Comparable {
        var dataset: String
        var problem: Int64
        var token: Int
        static func < (a: Key, b: Key) -> Bool {
            (a.dataset, a.problem, a.token) < (b.dataset, b.problem, b.token)
        }
    }

    /// One block holding every token of both files; each record `{"dataset", "problem_id",
    /// "layer", "experts", "gating_probs", "token_idx"}` fills one (token, layer) cell.
    static func block() throws -> (RoutingBlock, records: Int) {
        guard let dir = directory else { throw CocoaError(.fileNoSuchFile) }
        var cells: [Key: [Int: ([Int], [Double])]] = [:]
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
                cells[Key(dataset: dataset, problem: problem, token: token), default: [:]][layer] = (experts, weights)
                records += 1
            }
        }
        var builder = RoutingBlockBuilder(shape: .mixtral8x7B)
        for key in cells.keys.sorted() {
            let t = try builder.appendToken(
                TokenMetadata(domain: key.dataset, problemID: key.problem, position: Int32(key.token), phase: .decode)
            )
            for (layer, cell) in cells[key] ?? [:] {
                try builder.setCell(token: t, layer: layer, experts: cell.0, weights: cell.1)
            }
        }
        return (builder.makeBlock(), records)
    }
}

struct DomainAnalyzerRealDataTests {
    // Skipped (with this reason) when ../shared/data is absent.
    @Test(.enabled(if: DomainRealData.available, "skipped: ../shared/data with the Mixtral traces is absent"))
    func realTracesTwoProblemsPerDomain() throws {
        let (block, records) = try DomainRealData.block()
        let r = try DomainFixture.run(.mixtral8x7B, [block])
        #expect(r.json["applicable"] == true)
        let domains = try #require(r.json["domains"]?.arrayValue)
        #expect(domains.map { $0["name"]?.stringValue ?? "" } == ["gsm8k", "humaneval"])
        #expect(domains.map { $0["problems"]?.intValue ?? 0 } == [2, 2])
        // Every record is a present cell.
        #expect(domains.map { $0["records"]?.intValue ?? 0 } == [7889, 10779])
        #expect(records == 7889 + 10779)
        // 2 vs 2 problems: C(4, 2) = 6 relabelings, enumerated; a relabeling and its mirror tie,
        // so p is a multiple of 2/6 and at least 1/3 (within [1/6, 1]).
        #expect(r.json["permutation"]?["method"] == "exact")
        #expect(r.json["permutation"]?["relabelings"] == 6)
        let layers = try #require(r.json["layers"]?.arrayValue)
        #expect(layers.count == 32)
        var line = "real traces, gsm8k vs humaneval, per-layer JS (bits):"
        for (l, layer) in layers.enumerated() {
            let js = try #require(layer["js_divergence_bits"]?.doubleValue)
            let p = try #require(layer["p_value"]?.doubleValue)
            #expect(js > 0 && js < 1)
            #expect(p >= 1.0 / 6 && p <= 1)
            #expect([2.0 / 6, 4.0 / 6, 1].contains { abs($0 - p) < 1e-12 }, "layer \(l) p = \(p)")
            line += " \(l):\(String(format: "%.4f", js))(p=\(String(format: "%.2f", p)))"
        }
        print(line)
        for t in r.json["transfer"]?.arrayValue ?? [] {
            print(
                "transfer \(t["train"]?.stringValue ?? "")->\(t["test"]?.stringValue ?? ""): top-1 \(t["top1_accuracy"]?.doubleValue ?? .nan), within-test CV \(t["within_test_cv_top1_accuracy"]?.doubleValue ?? .nan), most frequent \(t["baseline_most_frequent"]?.doubleValue ?? .nan), evaluated \(t["evaluated"]?.intValue ?? 0)"
            )
        }
        print(r.renderText())
    }
}
