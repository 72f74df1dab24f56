// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Reads a NumPy `.npz` routing trace back as blocks: the archives ``NPZWriter`` writes, and
/// those a Python user saves with `numpy.savez` or `numpy.savez_compressed` using the same
/// array names.
///
/// | array | needed | dtype read | shape |
/// |---|---|---|---|
/// | `ids` | yes | any integer | [T, L, k] |
/// | `weights` | yes | float16/32/64 | [T, L, k] |
/// | `mask` | no (all present) | bool or integer | [T, L] |
/// | `problem_id` | no (all 0) | integer | [T] |
/// | `position` | no (order within the problem) | integer | [T] |
/// | `phase` | no (all decode) | integer, 0 prefill, 1 decode | [T] |
/// | `token_id` | no (-1) | integer | [T] |
/// | `domain` | no (the file's base name) | integer index into `domains`, or unicode names | [T] |
/// | `domains` | with an integer `domain` | unicode | [D] |
/// | `step` | no (no step column) | integer, -1 or 0xFFFFFFFF unknown | [T] |
/// | `shape` | no (L and k from `ids`, E = highest id + 1) | integer L, E, k | [3] |
/// | `settings` | no | unicode (key, value) rows | [S, 2] |
/// | `model_name` | no | unicode | [] |
/// | `timing_step`, `timing_rows`, `timing_routing_ns`, `timing_moe_ns` | no | integer | [N], [N], [N, L], [N, L] |
///
/// Members may be stored or deflate-compressed; dtypes may be little- or big-endian; integer
/// widths of 1 to 8 bytes are accepted wherever an integer is read. Every member's CRC-32 is
/// checked. The archive's arrays are held in memory while it is read (an `.npz` is a whole-run
/// export); blocks of ``TraceReadOptions/blockTokens`` tokens come out in the archive's token
/// order, each cell's experts ordered by weight, highest first.
///
/// Bad input is a ``TraceFileError`` (not a zip, a damaged member, an array missing or of the
/// wrong dtype or shape) or a ``TraceError`` naming the array, token and layer of a bad value
/// (an expert id outside 0..<E, a duplicate expert, a bad weight); lenient mode skips bad cells
/// and counts them in ``summary``.
///
/// ```swift
/// let reader = try NPZTraceReader(path: "run.npz")
/// while let block = try reader.nextBlock() { try analyzers.consume(block) }
/// ```
public final class NPZTraceReader: RoutingBlockSource {
    /// The archive read.
    public let path: String
    /// The shape: the `shape` array's, the stated one, or inferred from `ids`.
    public let shape: ModelShape
    /// Whether ``shape`` was inferred from `ids` (no `shape` array and none stated).
    public let shapeWasInferred: Bool
    /// Capture settings from the `settings` array.
    public let settings: [String: String]
    /// The `domains` array (or the names met in a unicode `domain` array).
    public let domains: [String]
    /// Tokens in the archive (T).
    public let tokenCount: Int
    /// Cells skipped in lenient mode, by kind, with examples.
    public private(set) var summary = TraceReadSummary()
    /// Sums of the `timing_*` arrays' records; `nil` when the archive has none.
    public let timingTotals: TraceTimingTotals?

    private let options: TraceReadOptions
    private let ids: [Int64]
    private let weights: [Float]
    private let mask: [Bool]?
    private let problemID: [Int64]
    private let position: [Int32]
    private let phase: [RoutingPhase]
    private let tokenID: [Int32]
    private let domain: [UInt16]
    private let step: [UInt32]?
    private var timings: [LayerTimingRecord]
    private var next = 0

    /// Opens an archive and reads its arrays.
    ///
    /// - Parameters:
    ///   - path: A `.npz` file.
    ///   - options: ``TraceReadOptions/shape``, when stated, must agree with the archive's;
    ///     ``TraceReadOptions/lenient`` skips bad cells; ``TraceReadOptions/blockTokens`` sizes
    ///     the blocks; ``TraceReadOptions/defaultDomain`` names the domain when the archive has
    ///     no `domain` array.
    /// - Throws: ``TraceFileError`` or ``TraceError`` as described above.
    public init(path: String, options: TraceReadOptions = TraceReadOptions()) throws {
        self.path = path
        self.options = options
        let archive = try NPZArchiveReader(path: path)
        func fail(_ message: String) -> TraceFileError { TraceFileError(path: path, message: message) }
        func array(_ name: String) throws -> NPYArray? {
            guard let m = archive.member(name) else { return nil }
            do {
                return try NPYArray(npy: try archive.contents(of: m))
            } catch let p as NPZProblem {
                throw fail("array '\(name)' \(p.message)")
            }
        }
        func required(_ name: String) throws -> NPYArray {
            guard let a = try array(name) else {
                throw fail(
                    "not a routing trace: the archive has no '\(name)' array (members: \(archive.members.map(\.name).joined(separator: ", ")))"
                )
            }
            return a
        }
        func convert<T>(_ name: String, _ a: NPYArray, _ f: (NPYArray) throws(NPZProblem) -> T) throws -> T {
            do { return try f(a) } catch { throw fail("array '\(name)' \(error.message)") }
        }

        let idsArray = try required("ids")
        guard idsArray.shape.count == 3 else {
            throw fail("array 'ids' has shape \(idsArray.shape), but [T, L, k] (3 dimensions) is needed")
        }
        let (T, L, k) = (idsArray.shape[0], idsArray.shape[1], idsArray.shape[2])
        let weightsArray = try required("weights")
        guard weightsArray.shape == idsArray.shape else {
            throw fail(
                "array 'weights' has shape \(weightsArray.shape), but 'ids' has \(idsArray.shape); they must match"
            )
        }
        let ids = try convert("ids", idsArray) { a throws(NPZProblem) in try a.integers() }
        self.weights = try convert("weights", weightsArray) { a throws(NPZProblem) in try a.floats() }

        if let m = try array("mask") {
            guard m.shape == [T, L] else {
                throw fail("array 'mask' has shape \(m.shape), but [T, L] = [\(T), \(L)] is needed")
            }
            mask = try convert("mask", m) { a throws(NPZProblem) in try a.integers() }.map { $0 != 0 }
        } else {
            mask = nil
        }
        func perToken(_ name: String) throws -> [Int64]? {
            guard let a = try array(name) else { return nil }
            guard a.shape == [T] else { throw fail("array '\(name)' has shape \(a.shape), but [T] = [\(T)] is needed") }
            return try convert(name, a) { a throws(NPZProblem) in try a.integers() }
        }
        func narrow<I: FixedWidthInteger>(_ name: String, _ values: [Int64], _: I.Type, _ what: String) throws -> [I] {
            var out: [I] = []
            out.reserveCapacity(values.count)
            for (t, v) in values.enumerated() {
                guard let x = I(exactly: v) else { throw fail("array '\(name)', token \(t): \(v) is not \(what)") }
                out.append(x)
            }
            return out
        }

        // Shape: the archive's `shape` array, else L and k from `ids` and E from the highest id.
        var archiveShape: ModelShape?
        if let s = try array("shape") {
            let v = try convert("shape", s) { a throws(NPZProblem) in try a.integers() }
            guard v.count == 3, let sl = Int(exactly: v[0]), let se = Int(exactly: v[1]), let sk = Int(exactly: v[2])
            else {
                throw fail("array 'shape' must hold three integers L, E, k; it holds \(v)")
            }
            guard sl == L, sk == k else {
                throw fail("array 'shape' says L=\(sl) k=\(sk), but 'ids' has shape \(idsArray.shape) (T, L, k)")
            }
            do {
                archiveShape = try ModelShape(layers: sl, experts: se, topK: sk)
            } catch {
                throw fail("array 'shape' holds an impossible shape: \(error)")
            }
        }
        var modelName: String?
        if let m = try array("model_name") {
            let names = try convert("model_name", m) { a throws(NPZProblem) in try a.strings() }
            if let n = names.first, !n.isEmpty { modelName = n }
        }
        let resolved: ModelShape
        if let stated = options.shape {
            guard stated.layers == L, stated.topK == k, archiveShape.map({ $0.experts == stated.experts }) ?? true
            else {
                throw TraceError(
                    path: path,
                    issue: RecordIssue(
                        .malformed,
                        "the stated shape \(stated) differs from the archive's, L=\(L) E=\(archiveShape.map { String($0.experts) } ?? "?") k=\(k)"
                    ),
                    hint: "drop the shape options or state the archive's"
                )
            }
            resolved = stated
            shapeWasInferred = false
        } else if var s = archiveShape {
            s.name = modelName
            resolved = s
            shapeWasInferred = false
        } else {
            var highest: Int64 = -1
            for t in 0..<T {
                for l in 0..<L where mask?[t * L + l] ?? true {
                    for j in 0..<k { highest = max(highest, ids[(t * L + l) * k + j]) }
                }
            }
            guard highest < Int64(ModelShape.maximumExperts) else {
                throw fail(
                    "array 'ids' holds the expert id \(highest), beyond the \(ModelShape.maximumExperts) experts supported"
                )
            }
            do {
                resolved = try ModelShape(layers: L, experts: max(Int(highest) + 1, k), topK: k, name: modelName)
            } catch {
                throw fail("cannot infer a model shape from 'ids' of shape \(idsArray.shape): \(error)")
            }
            shapeWasInferred = true
        }
        self.shape = resolved
        self.ids = ids
        self.tokenCount = T

        let problems = try perToken("problem_id") ?? [Int64](repeating: 0, count: T)
        self.problemID = problems
        if let p = try perToken("position") {
            position = try narrow("position", p, Int32.self, "a position in 0...\(Int32.max)")
            if let bad = position.firstIndex(where: { $0 < 0 }) {
                throw fail("array 'position', token \(bad): \(position[bad]) is not a position in 0...\(Int32.max)")
            }
        } else {
            var counts: [Int64: Int32] = [:]
            position = problems.map { p in
                defer { counts[p, default: 0] &+= 1 }
                return counts[p, default: 0]
            }
        }
        if let p = try perToken("phase") {
            phase = try p.enumerated().map { t, v in
                guard let ph = UInt8(exactly: v).flatMap(RoutingPhase.init(rawValue:)) else {
                    throw fail("array 'phase', token \(t): \(v) is not a phase (0 prefill, 1 decode)")
                }
                return ph
            }
        } else {
            phase = [RoutingPhase](repeating: .decode, count: T)
        }
        tokenID =
            try perToken("token_id").map { try narrow("token_id", $0, Int32.self, "a vocabulary id that fits int32") }
            ?? [Int32](repeating: -1, count: T)
        if let s = try perToken("step") {
            step = try s.enumerated().map { t, v in
                if v == -1 || v == Int64(UInt32.max) { return .max }
                guard let x = UInt32(exactly: v) else {
                    throw fail(
                        "array 'step', token \(t): \(v) is not an engine step in 0...4294967294 (or -1 for unknown)"
                    )
                }
                return x
            }
        } else {
            step = nil
        }

        // Domains: indices into `domains`, unicode names per token, or the file's base name.
        let names = try array("domains").map { a in
            try convert("domains", a) { a throws(NPZProblem) in try a.strings() }
        }
        if let names {
            guard names.count <= Int(UInt16.max) + 1 else { throw fail("array 'domains' holds more than 65536 names") }
            guard Set(names).count == names.count else { throw fail("array 'domains' names a domain twice") }
        }
        if let d = try array("domain") {
            guard d.shape == [T] else { throw fail("array 'domain' has shape \(d.shape), but [T] = [\(T)] is needed") }
            if d.kind == "U" {
                let perToken = try convert("domain", d) { a throws(NPZProblem) in try a.strings() }
                var table = names ?? []
                var index: [String: UInt16] = [:]
                for (i, n) in table.enumerated() where index[n] == nil { index[n] = UInt16(truncatingIfNeeded: i) }
                var out: [UInt16] = []
                out.reserveCapacity(T)
                for n in perToken {
                    if let i = index[n] {
                        out.append(i)
                    } else {
                        guard table.count <= Int(UInt16.max) else {
                            throw fail("array 'domain' names more than 65536 domains")
                        }
                        index[n] = UInt16(table.count)
                        out.append(UInt16(table.count))
                        table.append(n)
                    }
                }
                domain = out
                domains = table
            } else {
                let table = names ?? []
                let v = try convert("domain", d) { a throws(NPZProblem) in try a.integers() }
                domain = try v.enumerated().map { t, i in
                    guard i >= 0, i < table.count else {
                        throw fail(
                            "array 'domain', token \(t): index \(i) is outside the \(table.count) names of 'domains'"
                        )
                    }
                    return UInt16(i)
                }
                domains = table
            }
        } else {
            domain = [UInt16](repeating: 0, count: T)
            domains = [options.defaultDomain ?? JSONLReaderCore.baseName(path)]
        }

        var settings: [String: String] = [:]
        if let s = try array("settings") {
            let v = try convert("settings", s) { a throws(NPZProblem) in try a.strings() }
            guard s.shape.count == 2, s.shape[1] == 2 || s.shape[0] == 0 else {
                throw fail("array 'settings' has shape \(s.shape), but [S, 2] (key, value rows) is needed")
            }
            for r in 0..<(s.shape[0]) { settings[v[2 * r]] = v[2 * r + 1] }
        }
        self.settings = settings

        // Layer timings.
        var timings: [LayerTimingRecord] = []
        if let st = try array("timing_step") {
            guard st.shape.count == 1 else {
                throw fail("array 'timing_step' has shape \(st.shape), but [N] is needed")
            }
            let steps = try convert("timing_step", st) { a throws(NPZProblem) in try a.integers() }
            let N = steps.count
            func matrix(_ name: String) throws -> [Int64] {
                guard let a = try array(name) else { throw fail("array 'timing_step' needs '\(name)' beside it") }
                guard a.shape == [N, L] else {
                    throw fail("array '\(name)' has shape \(a.shape), but [N, L] = [\(N), \(L)] is needed")
                }
                let v = try convert(name, a) { a throws(NPZProblem) in try a.integers() }
                guard v.allSatisfy({ $0 >= 0 }) else { throw fail("array '\(name)' holds a negative time") }
                return v
            }
            guard let rowsArray = try array("timing_rows"), rowsArray.shape == [N] else {
                throw fail("array 'timing_step' needs 'timing_rows' of shape [N] = [\(N)] beside it")
            }
            let rows = try narrow(
                "timing_rows",
                try convert("timing_rows", rowsArray) { a throws(NPZProblem) in try a.integers() },
                Int32.self,
                "a row count that fits int32"
            )
            let routing = try matrix("timing_routing_ns")
            let moe = try matrix("timing_moe_ns")
            for i in 0..<N {
                guard rows[i] >= 0 else { throw fail("array 'timing_rows', record \(i): a negative row count") }
                timings.append(
                    LayerTimingRecord(
                        step: steps[i],
                        rows: rows[i],
                        routingNanoseconds: Array(routing[(i * L)..<((i + 1) * L)]),
                        moeNanoseconds: Array(moe[(i * L)..<((i + 1) * L)])
                    )
                )
            }
        }
        self.timings = timings
        if timings.isEmpty {
            timingTotals = nil
        } else {
            var totals = TraceTimingTotals(layers: L)
            for r in timings { totals.add(r) }
            timingTotals = totals
        }
    }

    /// The archive's layer-timing records (from the `timing_*` arrays), once: later calls return
    /// none. Convert uses this to carry them into another file.
    public func takeTimingRecords() -> [LayerTimingRecord] {
        defer { timings = [] }
        return timings
    }

    /// The next block of up to ``TraceReadOptions/blockTokens`` tokens, or `nil` at the end.
    ///
    /// - Throws: ``TraceError`` naming the token and layer of a bad cell (strict mode).
    public func nextBlock() throws -> RoutingBlock? {
        guard next < tokenCount else { return nil }
        let L = shape.layers
        let k = shape.topK
        let end = min(tokenCount, next + max(1, options.blockTokens))
        var builder = RoutingBlockBuilder(shape: shape, domains: domains)
        try ids.withUnsafeBufferPointer { ids in
            try weights.withUnsafeBufferPointer { weights in
                for t in next..<end {
                    let bt = builder.appendToken(
                        domainIndex: domain[t],
                        problemID: problemID[t],
                        position: position[t],
                        phase: phase[t],
                        tokenID: tokenID[t],
                        step: step?[t] ?? .max
                    )
                    for l in 0..<L where mask?[t * L + l] ?? true {
                        let base = (t * L + l) * k
                        do {
                            try builder.setCell(
                                token: bt,
                                layer: l,
                                experts: UnsafeBufferPointer(rebasing: ids[base..<(base + k)]),
                                weights: UnsafeBufferPointer(rebasing: weights[base..<(base + k)])
                            )
                        } catch let RoutingError.invalidRecord(issue) {
                            let error = TraceError(
                                path: path,
                                issue: RecordIssue(
                                    issue.kind,
                                    "token \(t) (problem \(problemID[t]), position \(position[t])), layer \(l): \(issue.detail)"
                                ),
                                hint: options.lenient ? nil : "use --lenient to skip bad cells"
                            )
                            guard options.lenient else { throw error }
                            summary.skip(error)
                        }
                    }
                }
            }
        }
        next = end
        return builder.makeBlock()
    }
}
