// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Describes a stream: shape, tokens, token-layer records, complete and incomplete journeys, and
/// per domain its problems, tokens and phases. What `moe-routing inspect` prints.
///
/// Memory grows with the number of distinct (domain, problem) pairs only.
public final class TraceSummaryAnalyzer: RoutingAnalyzer {
    public let name = "summary"
    private var shape: ModelShape?

    private struct DomainCounts: Equatable {
        var tokens = 0
        var records = 0
        var complete = 0
        var prefill = 0
        var decode = 0
        var knownTokenIDs = 0
        var problems: Set<Int64> = []
        var maxPosition: Int32 = -1
    }

    private var byDomain: [String: DomainCounts] = [:]
    /// Missing cells per layer.
    private var missingByLayer: [Int] = []

    public init() {}

    public func begin(_ context: AnalysisContext) throws {
        shape = context.shape
        missingByLayer = Array(repeating: 0, count: context.shape.layers)
    }

    public func consume(_ block: RoutingBlock) throws {
        if shape == nil { try begin(AnalysisContext(shape: block.shape)) }
        let L = block.shape.layers
        var local = block.domains.map { byDomain[$0] ?? DomainCounts() }
        for t in 0..<block.tokenCount {
            let d = Int(block.domain[t])
            var present = 0
            for l in 0..<L {
                if block.present[t * L + l] { present += 1 } else { missingByLayer[l] += 1 }
            }
            local[d].tokens += 1
            local[d].records += present
            if present == L { local[d].complete += 1 }
            if block.phase[t] == .prefill { local[d].prefill += 1 } else { local[d].decode += 1 }
            if block.tokenID[t] >= 0 { local[d].knownTokenIDs += 1 }
            local[d].problems.insert(block.problemID[t])
            local[d].maxPosition = max(local[d].maxPosition, block.position[t])
        }
        for (i, name) in block.domains.enumerated() where local[i].tokens > 0 || byDomain[name] != nil {
            byDomain[name] = local[i]
        }
    }

    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        for (name, c) in o.byDomain {
            var m = byDomain[name] ?? DomainCounts()
            m.tokens += c.tokens
            m.records += c.records
            m.complete += c.complete
            m.prefill += c.prefill
            m.decode += c.decode
            m.knownTokenIDs += c.knownTokenIDs
            m.problems.formUnion(c.problems)
            m.maxPosition = max(m.maxPosition, c.maxPosition)
            byDomain[name] = m
        }
        if missingByLayer.isEmpty {
            missingByLayer = o.missingByLayer
        } else {
            for i in missingByLayer.indices where i < o.missingByLayer.count {
                missingByLayer[i] += o.missingByLayer[i]
            }
        }
        if shape == nil { shape = o.shape }
    }

    public func finish() throws -> AnalyzerReport {
        guard let shape else {
            return AnalyzerReport(
                analyzer: name,
                title: "Trace summary",
                json: ["tokens": 0],
                notes: ["the stream was empty"]
            )
        }
        let names = byDomain.keys.sorted()
        let total = names.reduce(into: DomainCounts()) { acc, n in
            let c = byDomain[n]!
            acc.tokens += c.tokens
            acc.records += c.records
            acc.complete += c.complete
            acc.prefill += c.prefill
            acc.decode += c.decode
        }
        let problems = names.reduce(0) { $0 + byDomain[$1]!.problems.count }
        var shapeJSON: [ReportValue.Member] = [
            .init("layers", .int(shape.layers)), .init("experts", .int(shape.experts)),
            .init("top_k", .int(shape.topK)),
        ]
        if let n = shape.name { shapeJSON.append(.init("name", .string(n))) }
        let json: ReportValue = [
            "shape": .object(shapeJSON),
            "tokens": .int(total.tokens),
            "records": .int(total.records),
            "complete_journeys": .int(total.complete),
            "incomplete_journeys": .int(total.tokens - total.complete),
            "problems": .int(problems),
            "phases": ["prefill": .int(total.prefill), "decode": .int(total.decode)],
            "missing_cells_by_layer": .array(missingByLayer.map(ReportValue.int)),
            "domains": .array(
                names.map { n in
                    let c = byDomain[n]!
                    return [
                        "name": .string(n), "problems": .int(c.problems.count), "tokens": .int(c.tokens),
                        "records": .int(c.records), "complete_journeys": .int(c.complete),
                        "incomplete_journeys": .int(c.tokens - c.complete), "prefill": .int(c.prefill),
                        "decode": .int(c.decode), "known_token_ids": .int(c.knownTokenIDs),
                        "max_position": .int(Int(c.maxPosition)),
                    ]
                }
            ),
        ]
        let table = ReportTable(
            title: "Domains",
            columns: ["domain", "problems", "tokens", "records", "complete", "incomplete", "prefill", "decode"],
            rows: names.map { n in
                let c = byDomain[n]!
                return [
                    n, "\(c.problems.count)", "\(c.tokens)", "\(c.records)", "\(c.complete)",
                    "\(c.tokens - c.complete)", "\(c.prefill)", "\(c.decode)",
                ]
            } + [
                [
                    "all", "\(problems)", "\(total.tokens)", "\(total.records)", "\(total.complete)",
                    "\(total.tokens - total.complete)", "\(total.prefill)", "\(total.decode)",
                ]
            ]
        )
        var notes: [String] = []
        if total.tokens > total.complete {
            notes.append(
                "\(total.tokens - total.complete) of \(total.tokens) tokens lack some layers; cross-layer statistics use only the layer pairs present"
            )
        }
        let emptyLayers = missingByLayer.indices.filter { total.tokens > 0 && missingByLayer[$0] >= total.tokens }
        if !emptyLayers.isEmpty {
            notes.append(
                "no token has a routing decision at layer(s) \(emptyLayers.map(String.init).joined(separator: ", ")): statistics of those layers are not computed"
            )
        }
        return AnalyzerReport(
            analyzer: name,
            title: "Trace summary",
            json: json,
            tables: [
                ReportTable(
                    title: "Shape",
                    columns: ["layers", "experts", "top-k"],
                    rows: [["\(shape.layers)", "\(shape.experts)", "\(shape.topK)"]]
                ),
                table,
            ],
            notes: notes
        )
    }
}
