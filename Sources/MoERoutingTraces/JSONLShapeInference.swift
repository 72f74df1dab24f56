// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Checks of one parsed record against a shape, shared by the shape pre-pass and the reader.
enum JSONLValidation {
    /// Checks a record's expert count, layer, expert ids and weights (the count first, so a
    /// record of another model is reported as such rather than by its first odd value).
    ///
    /// - Parameters:
    ///   - layers: the exclusive upper bound on layers (L, or the largest supported count).
    ///   - experts: the exclusive upper bound on expert ids (E, or the largest supported count).
    ///   - topK: the required expert count, or `nil` not to check it.
    ///   - boundsAreShape: whether the bounds are a model shape's (messages say "(L)", "(E)") or
    ///     the largest supported counts (the shape pre-pass).
    /// - Throws: the first ``RecordIssue`` found.
    static func check(
        _ r: JSONLRecord,
        _ s: JSONLScratch,
        layers: Int,
        experts: Int,
        topK: Int?,
        boundsAreShape: Bool
    ) throws(RecordIssue) {
        let k = r.expertCount
        if let topK, k != topK {
            throw RecordIssue(.topKMismatch, "record has \(k) experts, but top-k is \(topK)")
        }
        if r.layer < 0 || r.layer >= layers {
            throw RecordIssue(
                .layerOutOfRange,
                boundsAreShape
                    ? "layer \(r.layer) is outside 0..<\(layers) (L)"
                    : "layer \(r.layer) is outside 0..<\(layers) (the largest layer count supported)"
            )
        }
        let ids = s.experts
        for j in 0..<k where ids[j] < 0 || ids[j] >= experts {
            throw RecordIssue(
                .expertOutOfRange,
                boundsAreShape
                    ? "expert id \(ids[j]) is outside 0..<\(experts) (E)"
                    : "expert id \(ids[j]) is outside 0..<\(experts) (the largest expert count supported)"
            )
        }
        if k <= 16 {
            for j in 1..<max(k, 1) {
                for m in 0..<j where ids[m] == ids[j] {
                    throw RecordIssue(.duplicateExpert, "expert id \(ids[j]) appears twice in one record")
                }
            }
        } else {
            let seen = s.seen
            var duplicate = -1
            for j in 0..<k {
                let e = ids[j]
                let bit: UInt64 = 1 << UInt64(e & 63)
                if seen[e >> 6] & bit != 0 {
                    duplicate = e
                    break
                }
                seen[e >> 6] |= bit
            }
            for j in 0..<k { seen[ids[j] >> 6] = 0 }
            if duplicate >= 0 {
                throw RecordIssue(.duplicateExpert, "expert id \(duplicate) appears twice in one record")
            }
        }
        if r.invalidWeightIndex >= 0 {
            throw RecordIssue(
                .invalidWeight,
                "weight \(describe(r.invalidWeight)) is not a finite, non-negative number that fits a Float"
            )
        }
    }

    /// A weight as JSON would spell it.
    static func describe(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return "\(d)"
    }
}

/// The shape pre-pass: infers L, E and k from JSONL trace files.
///
/// L is the largest layer plus one, E the largest expert id plus one (at least k), k the expert
/// count of the first good record. Strict mode throws at the first record it can judge bad
/// (syntax, a negative id or layer, a duplicate expert, a bad weight, an expert count unlike the
/// first record's); lenient mode leaves such records out of the inference (the read then skips
/// and counts them).
enum JSONLShapeInference {
    /// Infers one shape across `paths`.
    ///
    /// - Throws: ``TraceFileError`` for a file that cannot be read; ``TraceError`` for a bad
    ///   record in strict mode, or when no file holds a record.
    static func infer(paths: [String], lenient: Bool) throws -> ModelShape {
        try inferWithEvidence(paths: paths, lenient: lenient).shape
    }

    /// Infers one shape across `paths`, with what it was inferred from.
    static func inferWithEvidence(
        paths: [String],
        lenient: Bool
    ) throws -> (shape: ModelShape, evidence: JSONLShapeEvidence) {
        let scratch = JSONLScratch()
        var maxLayer = -1
        var maxExpert = -1
        var records = 0
        var maxLayerRecords = 0
        var maxExpertRecords = 0
        var topK = 0
        var topKWhere = ""
        for path in paths {
            let source = try JSONLLineSource(path: path)
            while let line = try source.nextLine() {
                let lineNumber = source.lineNumber
                func reject(_ issue: RecordIssue) throws(TraceError) {
                    guard !lenient else { return }
                    throw TraceError(
                        path: path,
                        line: lineNumber,
                        issue: issue,
                        hint: "use --lenient to skip bad records"
                    )
                }
                guard case .text(let p, let count) = line else {
                    try reject(JSONLReaderCore.tooLongIssue)
                    continue
                }
                var parser = JSONLRecordParser(line: p, count: count, scratch: scratch)
                let record: JSONLRecord
                do {
                    guard let r = try parser.parse() else { continue }
                    record = r
                    try JSONLValidation.check(
                        r,
                        scratch,
                        layers: ModelShape.maximumLayers,
                        experts: ModelShape.maximumExperts,
                        topK: topK == 0 ? nil : topK,
                        boundsAreShape: false
                    )
                } catch {
                    if error.kind == .topKMismatch {
                        try reject(RecordIssue(.topKMismatch, "\(error.detail) (from the first record, \(topKWhere))"))
                    } else {
                        try reject(error)
                    }
                    continue
                }
                if topK == 0 {
                    topK = record.expertCount
                    topKWhere = "\(path):\(lineNumber)"
                }
                records += 1
                if record.layer > maxLayer {
                    maxLayer = record.layer
                    maxLayerRecords = 1
                } else if record.layer == maxLayer {
                    maxLayerRecords += 1
                }
                var top = -1
                for j in 0..<record.expertCount { top = max(top, scratch.experts[j]) }
                if top > maxExpert {
                    maxExpert = top
                    maxExpertRecords = 1
                } else if top == maxExpert {
                    maxExpertRecords += 1
                }
            }
        }
        guard topK > 0 else {
            throw TraceError(
                path: paths.isEmpty ? "(no files)" : paths.joined(separator: ", "),
                issue: RecordIssue(.malformed, "no routing records to infer the model shape from"),
                hint: "state the shape (--shape, or --layers/--experts/--top-k)"
            )
        }
        do {
            let shape = try ModelShape(layers: max(maxLayer + 1, 1), experts: max(maxExpert + 1, topK), topK: topK)
            let evidence = JSONLShapeEvidence(
                records: records,
                highestLayer: maxLayer,
                highestLayerRecords: maxLayerRecords,
                highestExpert: maxExpert,
                highestExpertRecords: maxExpertRecords,
                topKFrom: topKWhere
            )
            return (shape, evidence)
        } catch {
            throw TraceError(
                path: paths.joined(separator: ", "),
                issue: RecordIssue(.malformed, "cannot infer a model shape: \(error)"),
                hint: "state the shape (--shape, or --layers/--experts/--top-k)"
            )
        }
    }
}

/// What the JSONL shape pre-pass inferred the shape from: the records it counted, how many of them
/// use the highest layer and the highest expert id, and where k came from. One stray id at the top
/// silently makes E one larger and shifts every chance value, so the reader prints this.
///
/// ```swift
/// let reader = try JSONLTraceReader(path: "routing.jsonl")
/// if let e = reader.shapeEvidence { print("shape inferred from the data: \(e.explanation(reader.shape))") }
/// // L=32 (highest layer 31 in 583 of 18668 rows), E=9 (highest expert id 8 used in 1 of 18668 rows; ...), k=2 (...)
/// ```
public struct JSONLShapeEvidence: Sendable, Equatable {
    /// Good records the pre-pass counted.
    public var records: Int
    /// The largest layer index met (L - 1).
    public var highestLayer: Int
    /// Records at that layer.
    public var highestLayerRecords: Int
    /// The largest expert id met (E - 1, unless E was raised to k).
    public var highestExpert: Int
    /// Records that use that id in one of their slots.
    public var highestExpertRecords: Int
    /// `FILE:LINE` of the record whose expert count set k.
    public var topKFrom: String

    /// Creates evidence (the pre-pass does; public for tests and other readers).
    public init(
        records: Int,
        highestLayer: Int,
        highestLayerRecords: Int,
        highestExpert: Int,
        highestExpertRecords: Int,
        topKFrom: String
    ) {
        self.records = records
        self.highestLayer = highestLayer
        self.highestLayerRecords = highestLayerRecords
        self.highestExpert = highestExpert
        self.highestExpertRecords = highestExpertRecords
        self.topKFrom = topKFrom
    }

    /// Whether the highest expert id is rare enough (under 1 % of the records) to be a stray
    /// value rather than a real expert.
    public var highestExpertLooksStray: Bool { highestExpertRecords * 100 < records }

    /// One line for standard error: each dimension of `shape` with its evidence, and, when the
    /// highest expert id is rare, the options that state the shape without it.
    public func explanation(_ shape: ModelShape) -> String {
        var e =
            "E=\(shape.experts) (highest expert id \(highestExpert) used in \(highestExpertRecords) of \(records) rows"
        if highestExpertLooksStray, highestExpert + 1 == shape.experts, highestExpert > shape.topK - 1 {
            e +=
                "; state --layers \(shape.layers) --experts \(highestExpert) --top-k \(shape.topK) if that is a stray id"
        }
        e += ")"
        return
            "L=\(shape.layers) (highest layer \(highestLayer) in \(highestLayerRecords) of \(records) rows), \(e), k=\(shape.topK) (the expert count of the first record, \(topKFrom))"
    }
}
