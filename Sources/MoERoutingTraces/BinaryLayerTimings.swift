// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Per-layer-call timings in a `.moetrace` file (optional chunk kind 16): one record per engine
// step with the wall time of routing (`select_experts`) and of the whole MoE layer per layer, and
// the per-layer totals a reader accumulates. docs/trace-format.md gives the byte layout.

public import MoERouting

/// One engine step's timings: the wall time spent in routing and in the whole MoE layer, per layer.
///
/// ```swift
/// try writer.writeTimings([LayerTimingRecord(step: 0, rows: 12,
///                                            routingNanoseconds: [900, 850], moeNanoseconds: [9000, 8700])])
/// ```
public struct LayerTimingRecord: Sendable, Equatable {
    /// The step's index in the run (one forward pass of the engine).
    public var step: Int64
    /// Rows (tokens) the step processed.
    public var rows: Int32
    /// Nanoseconds in the router's `select_experts`, one value per layer (L values).
    public var routingNanoseconds: [Int64]
    /// Nanoseconds in the whole MoE layer (routing included), one value per layer (L values).
    public var moeNanoseconds: [Int64]

    /// Creates a step's timings.
    public init(step: Int64, rows: Int32, routingNanoseconds: [Int64], moeNanoseconds: [Int64]) {
        self.step = step
        self.rows = rows
        self.routingNanoseconds = routingNanoseconds
        self.moeNanoseconds = moeNanoseconds
    }
}

/// A trace writer that can hold layer-timing records: ``BinaryTraceWriter`` (layer-timings
/// chunks) and ``NPZWriter`` (`timing_*` arrays). ``JSONLTraceWriter`` cannot.
///
/// ```swift
/// if let timed = sink as? any LayerTimingSink { try timed.writeTimings(reader.takeTimingRecords()) }
/// ```
public protocol LayerTimingSink: AnyObject {
    /// Writes timing records (one per engine step) in the order given.
    func writeTimings(_ records: [LayerTimingRecord]) throws
}

extension BinaryTraceWriter: LayerTimingSink {}
extension NPZWriter: LayerTimingSink {}

/// Per-layer sums over the timing records of a trace.
public struct TraceTimingTotals: Sendable, Equatable {
    /// Timing records (steps) counted.
    public var steps: Int
    /// Rows summed over the steps.
    public var rows: Int
    /// Per layer: routing nanoseconds summed over the steps.
    public var routingNanoseconds: [Int64]
    /// Per layer: MoE layer nanoseconds summed over the steps.
    public var moeNanoseconds: [Int64]

    /// Zero totals for `layers` layers.
    public init(layers: Int) {
        steps = 0
        rows = 0
        routingNanoseconds = Array(repeating: 0, count: max(0, layers))
        moeNanoseconds = Array(repeating: 0, count: max(0, layers))
    }

    /// Adds one record (values beyond this total's layers are ignored; sums saturate).
    public mutating func add(_ record: LayerTimingRecord) {
        steps += 1
        rows = Self.saturatingAdd(rows, Int(record.rows))
        for l in 0..<min(routingNanoseconds.count, record.routingNanoseconds.count) {
            routingNanoseconds[l] = Self.saturatingAdd(routingNanoseconds[l], record.routingNanoseconds[l])
        }
        for l in 0..<min(moeNanoseconds.count, record.moeNanoseconds.count) {
            moeNanoseconds[l] = Self.saturatingAdd(moeNanoseconds[l], record.moeNanoseconds[l])
        }
    }

    /// Routing's share of MoE layer time per layer (0 where the layer took no time).
    public var routingShare: [Double] {
        zip(routingNanoseconds, moeNanoseconds).map { r, m in m > 0 ? Double(r) / Double(m) : 0 }
    }

    /// Adds another total (of another trace or shard); layers beyond the shorter are dropped.
    public mutating func merge(_ other: TraceTimingTotals) {
        let L = min(routingNanoseconds.count, other.routingNanoseconds.count)
        steps += other.steps
        rows = Self.saturatingAdd(rows, other.rows)
        routingNanoseconds = (0..<L).map { Self.saturatingAdd(routingNanoseconds[$0], other.routingNanoseconds[$0]) }
        moeNanoseconds = (0..<L).map { Self.saturatingAdd(moeNanoseconds[$0], other.moeNanoseconds[$0]) }
    }

    /// For reports: `{"steps", "rows", "layers": [{"layer", "routing_ms", "moe_ms", "routing_share"}]}`.
    public var reportValue: ReportValue {
        let share = routingShare
        return .object([
            .init("steps", .int(steps)),
            .init("rows", .int(rows)),
            .init(
                "layers",
                .array(
                    share.indices.map { l in
                        .object([
                            .init("layer", .int(l)),
                            .init("routing_ms", .double(Double(routingNanoseconds[l]) / 1e6)),
                            .init("moe_ms", .double(Double(moeNanoseconds[l]) / 1e6)),
                            .init("routing_share", .double(share[l])),
                        ])
                    }
                )
            ),
        ])
    }

    private static func saturatingAdd<T: FixedWidthInteger>(_ a: T, _ b: T) -> T {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? T.max : T.min) : sum
    }
}

// MARK: - Encoding

extension LayerTimingRecord {
    /// Bytes of one encoded record for `layers` layers.
    static func encodedSize(layers: Int) -> Int { BinaryTraceFormat.timingRecordPrefixSize + 16 * layers }
}

/// Decodes a layer-timings payload (kind 16) into records, checking it against the shape.
func binaryDecodeTimings(_ p: UnsafeRawBufferPointer, layers: Int) throws(BinaryFormatProblem) -> [LayerTimingRecord] {
    guard p.count >= BinaryTraceFormat.timingPrefixSize else {
        throw BinaryFormatProblem(.malformed, "layer-timings chunk of \(p.count) bytes is too short")
    }
    let n = Int(p.binaryLoadLE(UInt32.self, at: 0))
    let l = Int(p.binaryLoadLE(UInt32.self, at: 4))
    guard l == layers else {
        throw BinaryFormatProblem(
            .malformed,
            "layer-timings chunk holds \(l) layers per record, but the trace has \(layers)"
        )
    }
    let size = LayerTimingRecord.encodedSize(layers: l)
    guard n <= (p.count - BinaryTraceFormat.timingPrefixSize) / size else {
        throw BinaryFormatProblem(
            .malformed,
            "layer-timings chunk claims \(n) records of \(size) bytes, more than its \(p.count) bytes hold"
        )
    }
    var out: [LayerTimingRecord] = []
    out.reserveCapacity(n)
    for r in 0..<n {
        let base = BinaryTraceFormat.timingPrefixSize + r * size
        let step = p.binaryLoadLE(Int64.self, at: base)
        let rows = p.binaryLoadLE(Int32.self, at: base + 8)
        let valuesAt = base + BinaryTraceFormat.timingRecordPrefixSize
        let routing = (0..<l).map { p.binaryLoadLE(Int64.self, at: valuesAt + 8 * $0) }
        let moe = (0..<l).map { p.binaryLoadLE(Int64.self, at: valuesAt + 8 * (l + $0)) }
        guard rows >= 0, routing.allSatisfy({ $0 >= 0 }), moe.allSatisfy({ $0 >= 0 }) else {
            throw BinaryFormatProblem(
                .malformed,
                "layer-timings record \(r) (step \(step)) holds a negative row count or time"
            )
        }
        out.append(LayerTimingRecord(step: step, rows: rows, routingNanoseconds: routing, moeNanoseconds: moe))
    }
    return out
}
