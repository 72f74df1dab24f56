// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// One routing record of a JSONL line, as the parser found it. Its experts and weights are in
/// the ``JSONLScratch`` the parser was given.
struct JSONLRecord {
    /// Problem (request) id.
    var problemID: Int64 = 0
    /// MoE layer.
    var layer: Int = 0
    /// Token position in its problem (`token_idx`, `token_pos` or `token_id`).
    var position: Int = 0
    /// Phase; `decode` when the record has none (the seed kept decode tokens only).
    var phase: RoutingPhase = .decode
    /// Vocabulary id, -1 when the record has none.
    var tokenID: Int32 = -1
    /// Engine step that routed the token, `UInt32.max` when the record has none.
    var step: UInt32 = .max
    /// Number of experts (equal to the number of weights).
    var expertCount = 0
    /// Byte range of the raw `dataset` string in the line; `datasetStart < 0` when absent.
    var datasetStart = -1
    var datasetEnd = -1
    /// Whether the raw `dataset` string holds escapes.
    var datasetEscaped = false
    /// Index of the first weight that is NaN, infinite, negative or beyond `Float`, or -1.
    var invalidWeightIndex = -1
    /// That weight, as parsed.
    var invalidWeight: Double = 0
}

/// Scratch space one record's experts and weights are parsed into, allocated once per reader.
final class JSONLScratch {
    /// The most experts (and weights) one record may hold.
    static let capacity = ModelShape.maximumExperts
    /// Expert ids of the record last parsed.
    let experts: UnsafeMutablePointer<Int>
    /// Weights of the record last parsed.
    let weights: UnsafeMutablePointer<Float>
    /// A bitmap of `capacity` bits, all clear between uses (duplicate-expert checks).
    let seen: UnsafeMutablePointer<UInt64>

    init() {
        experts = .allocate(capacity: Self.capacity)
        weights = .allocate(capacity: Self.capacity)
        seen = .allocate(capacity: Self.capacity / 64)
        seen.initialize(repeating: 0, count: Self.capacity / 64)
    }

    deinit {
        experts.deallocate()
        weights.deallocate()
        seen.deallocate()
    }
}

/// A byte-level parser for one JSONL routing record, made for this schema.
///
/// It accepts both spellings of a record (`experts`/`gating_probs`/`token_idx` or `token_pos`,
/// and the seed's `expert_ids`/`weights`/`token_id`), the optional `dataset`, `phase`, `token`
/// and `step`, keys in any order, and skips unknown keys' values of any shape. Numbers are parsed by
/// hand: integers exactly, floats through ``JSONLDecimal`` (correctly rounded, as `Double(text)`),
/// with a fallback to `Double(_:)` for unusual spellings. `NaN`, `Infinity` and `-Infinity` are
/// read as numbers so that they are reported as invalid weights, not syntax errors.
///
/// The line must be followed by a NUL byte in memory (``JSONLLineSource`` guarantees it); the
/// parser relies on it instead of checking the end before every byte.
struct JSONLRecordParser {
    /// Which record field a key names.
    enum Key: Int {
        case dataset, problemID, layer, tokenIdx, tokenPos, tokenID, experts, expertIDs, gatingProbs, weights
        case phase, token, step, unknown

        /// The key as spelled in the file.
        var name: String {
            switch self {
            case .dataset: return "dataset"
            case .problemID: return "problem_id"
            case .layer: return "layer"
            case .tokenIdx: return "token_idx"
            case .tokenPos: return "token_pos"
            case .tokenID: return "token_id"
            case .experts: return "experts"
            case .expertIDs: return "expert_ids"
            case .gatingProbs: return "gating_probs"
            case .weights: return "weights"
            case .phase: return "phase"
            case .token: return "token"
            case .step: return "step"
            case .unknown: return "?"
            }
        }

        /// The field the key fills: aliases share one (a record may hold only one of them).
        var field: Int {
            switch self {
            case .dataset: return 0
            case .problemID: return 1
            case .layer: return 2
            case .tokenIdx, .tokenPos, .tokenID: return 3
            case .experts, .expertIDs: return 4
            case .gatingProbs, .weights: return 5
            case .phase: return 6
            case .token: return 7
            case .step: return 8
            case .unknown: return 9
            }
        }
    }

    /// The deepest nesting of skipped values accepted.
    static let maximumDepth = 512

    private let base: UnsafePointer<UInt8>
    private let count: Int
    private let scratch: JSONLScratch
    private var i = 0

    /// Creates a parser for one NUL-terminated line of `count` bytes.
    init(line: UnsafePointer<UInt8>, count: Int, scratch: JSONLScratch) {
        self.base = line
        self.count = count
        self.scratch = scratch
    }

    // MARK: - Record

    /// Parses the line: `nil` for a blank line, else the record.
    ///
    /// - Throws: a ``RecordIssue`` of kind `malformed` naming the field or column.
    mutating func parse() throws(RecordIssue) -> JSONLRecord? {
        skipWhitespace()
        if i == 0, count >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF {
            i = 3  // UTF-8 byte order mark
            skipWhitespace()
        }
        if i == count { return nil }
        guard base[i] == UInt8(ascii: "{") else {
            throw malformed("expected a JSON object ('{') but found \(found()) at column \(i + 1)")
        }
        i += 1
        var record = JSONLRecord()
        var seenKeys: (Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?) = (
            nil, nil, nil, nil, nil, nil, nil, nil, nil
        )
        var seenMask: UInt16 = 0
        var weightCount = 0
        skipWhitespace()
        if base[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                guard base[i] == UInt8(ascii: "\"") else {
                    throw malformed("expected a quoted key but found \(found()) at column \(i + 1)")
                }
                let key: Key
                if let known = fastKey() {
                    key = known
                } else {
                    key = try scanKey()
                }
                skipWhitespace()
                guard base[i] == UInt8(ascii: ":") else {
                    throw malformed("expected ':' after key '\(key.name)' but found \(found()) at column \(i + 1)")
                }
                i += 1
                skipWhitespace()
                let field = key.field
                if field < 9 {
                    let bit: UInt16 = 1 << UInt16(field)
                    if seenMask & bit != 0 {
                        let first = Self.seenKey(seenKeys, field) ?? key
                        if first == key { throw malformed("field '\(key.name)' appears twice in one record") }
                        throw malformed("record has both '\(first.name)' and '\(key.name)'; keep one")
                    }
                    seenMask |= bit
                    Self.setSeenKey(&seenKeys, field, key)
                }
                switch key {
                case .dataset:
                    guard base[i] == UInt8(ascii: "\"") else { throw typeError(key, "a string") }
                    let s = try scanString()
                    record.datasetStart = s.start
                    record.datasetEnd = s.end
                    record.datasetEscaped = s.escaped
                case .problemID:
                    record.problemID = try integer(key)
                case .layer:
                    let v = try integer(key)
                    record.layer = Int(v)
                case .tokenIdx, .tokenPos, .tokenID:
                    let v = try integer(key)
                    guard v >= 0, v <= Int64(Int32.max) else {
                        throw malformed(
                            "field '\(key.name)' (the token position) must be in 0...\(Int32.max), found \(v)"
                        )
                    }
                    record.position = Int(v)
                case .experts, .expertIDs:
                    record.expertCount = try expertArray(key)
                case .gatingProbs, .weights:
                    weightCount = try weightArray(key, record: &record)
                case .phase:
                    guard base[i] == UInt8(ascii: "\"") else { throw typeError(key, "\"prefill\" or \"decode\"") }
                    let s = try scanString()
                    let n = s.end - s.start
                    if !s.escaped, n == 6, Self.equal(base + s.start, "decode") {
                        record.phase = .decode
                    } else if !s.escaped, n == 7, Self.equal(base + s.start, "prefill") {
                        record.phase = .prefill
                    } else {
                        throw malformed("field 'phase' must be \"prefill\" or \"decode\" (column \(s.start))")
                    }
                case .token:
                    if base[i] == UInt8(ascii: "n") {
                        try literal("null")
                        record.tokenID = -1
                    } else {
                        let v = try integer(key)
                        guard v >= -1, v <= Int64(Int32.max) else {
                            throw malformed(
                                "field 'token' (the vocabulary id) must be in -1...\(Int32.max), found \(v)"
                            )
                        }
                        record.tokenID = Int32(v)
                    }
                case .step:
                    if base[i] == UInt8(ascii: "n") {
                        try literal("null")
                        record.step = .max
                    } else {
                        let v = try integer(key)
                        guard v >= 0, v < Int64(UInt32.max) else {
                            throw malformed(
                                "field 'step' (the engine step) must be in 0...\(UInt32.max - 1), found \(v)"
                            )
                        }
                        record.step = UInt32(v)
                    }
                case .unknown:
                    try skipValue()
                }
                skipWhitespace()
                let b = base[i]
                if b == UInt8(ascii: ",") {
                    i += 1
                    skipWhitespace()
                    continue
                }
                if b == UInt8(ascii: "}") {
                    i += 1
                    break
                }
                throw malformed(
                    "expected ',' or '}' after the value of '\(key.name)' but found \(found()) at column \(i + 1)"
                )
            }
        }
        skipWhitespace()
        guard i == count else {
            throw malformed("unexpected \(found()) after the end of the record at column \(i + 1)")
        }
        if seenMask & (1 << 1) == 0 { throw malformed("record lacks 'problem_id'") }
        if seenMask & (1 << 2) == 0 { throw malformed("record lacks 'layer'") }
        if seenMask & (1 << 3) == 0 {
            throw malformed("record lacks the token position ('token_idx', 'token_pos' or 'token_id')")
        }
        if seenMask & (1 << 4) == 0 { throw malformed("record lacks 'experts' (or 'expert_ids')") }
        if seenMask & (1 << 5) == 0 { throw malformed("record lacks 'gating_probs' (or 'weights')") }
        if record.expertCount != weightCount {
            let e = seenKeys.4?.name ?? "experts"
            let w = seenKeys.5?.name ?? "gating_probs"
            throw malformed("'\(e)' holds \(record.expertCount) ids but '\(w)' holds \(weightCount) weights")
        }
        return record
    }

    private static func seenKey(_ t: (Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?), _ f: Int) -> Key? {
        switch f {
        case 0: return t.0
        case 1: return t.1
        case 2: return t.2
        case 3: return t.3
        case 4: return t.4
        case 5: return t.5
        case 6: return t.6
        case 7: return t.7
        default: return t.8
        }
    }

    private static func setSeenKey(
        _ t: inout (Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?, Key?),
        _ f: Int,
        _ k: Key
    ) {
        switch f {
        case 0: t.0 = k
        case 1: t.1 = k
        case 2: t.2 = k
        case 3: t.3 = k
        case 4: t.4 = k
        case 5: t.5 = k
        case 6: t.6 = k
        case 7: t.7 = k
        default: t.8 = k
        }
    }

    // MARK: - Fields

    /// Recognises a known key, spelled without escapes, at the cursor's opening quote, and moves
    /// past its closing quote; `nil` (cursor unchanged) for anything else.
    @inline(__always)
    private mutating func fastKey() -> Key? {
        @inline(__always) func match(_ word: StaticString, _ key: Key) -> Key? {
            let n = word.utf8CodeUnitCount
            guard i + 1 + n <= count, LibC.memcmp(base + i + 1, word.utf8Start, n) == 0 else { return nil }
            i += 1 + n
            return key
        }
        switch base[i + 1] {
        case UInt8(ascii: "d"): return match("dataset\"", .dataset)
        case UInt8(ascii: "p"): return match("problem_id\"", .problemID) ?? match("phase\"", .phase)
        case UInt8(ascii: "l"): return match("layer\"", .layer)
        case UInt8(ascii: "e"): return match("experts\"", .experts) ?? match("expert_ids\"", .expertIDs)
        case UInt8(ascii: "g"): return match("gating_probs\"", .gatingProbs)
        case UInt8(ascii: "w"): return match("weights\"", .weights)
        case UInt8(ascii: "s"): return match("step\"", .step)
        case UInt8(ascii: "t"):
            return match("token_idx\"", .tokenIdx) ?? match("token_pos\"", .tokenPos) ?? match("token_id\"", .tokenID)
                ?? match("token\"", .token)
        default: return nil
        }
    }

    /// Parses a key string and names it.
    private mutating func scanKey() throws(RecordIssue) -> Key {
        let s = try scanString()
        if s.escaped {
            let bytes = Self.unescape(UnsafeBufferPointer(start: base + s.start, count: s.end - s.start))
            return bytes.withUnsafeBufferPointer { b in
                guard let p = b.baseAddress else { return Key.unknown }
                return Self.classify(p, b.count)
            }
        }
        return Self.classify(base + s.start, s.end - s.start)
    }

    /// Whether the bytes at `p` spell `word` (the caller checked the length).
    @inline(__always)
    private static func equal(_ p: UnsafePointer<UInt8>, _ word: StaticString) -> Bool {
        LibC.memcmp(p, word.utf8Start, word.utf8CodeUnitCount) == 0
    }

    /// Names a key from its bytes.
    @inline(__always)
    private static func classify(_ p: UnsafePointer<UInt8>, _ n: Int) -> Key {
        @inline(__always) func eq(_ s: StaticString) -> Bool { LibC.memcmp(p, s.utf8Start, n) == 0 }
        switch n {
        case 4:
            if eq("step") { return .step }
        case 5:
            if eq("layer") { return .layer }
            if eq("phase") { return .phase }
            if eq("token") { return .token }
        case 7:
            if eq("experts") { return .experts }
            if eq("dataset") { return .dataset }
            if eq("weights") { return .weights }
        case 8:
            if eq("token_id") { return .tokenID }
        case 9:
            if eq("token_idx") { return .tokenIdx }
            if eq("token_pos") { return .tokenPos }
        case 10:
            if eq("problem_id") { return .problemID }
            if eq("expert_ids") { return .expertIDs }
        case 12:
            if eq("gating_probs") { return .gatingProbs }
        default:
            break
        }
        return .unknown
    }

    /// Parses a JSON integer into an `Int64`.
    @inline(__always)
    private mutating func integer(_ key: Key) throws(RecordIssue) -> Int64 {
        var negative = false
        if base[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var d = base[i] &- 0x30
        guard d < 10 else {
            if negative { i -= 1 }
            throw typeError(key, "an integer")
        }
        var v: UInt64 = 0
        repeat {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { throw malformed("field '\(key.name)' holds an integer too large for 64 bits") }
            v = s
            i += 1
            d = base[i] &- 0x30
        } while d < 10
        let b = base[i]
        if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
            throw malformed("field '\(key.name)' must hold integers, found a fraction or exponent at column \(i + 1)")
        }
        if negative {
            guard v <= UInt64(Int64.max) + 1 else {
                throw malformed("field '\(key.name)' holds an integer too large for 64 bits")
            }
            return Int64(truncatingIfNeeded: 0 &- v)
        }
        guard v <= UInt64(Int64.max) else {
            throw malformed("field '\(key.name)' holds an integer too large for 64 bits")
        }
        return Int64(v)
    }

    /// Parses an array of integers into the scratch experts; returns the count.
    private mutating func expertArray(_ key: Key) throws(RecordIssue) -> Int {
        guard base[i] == UInt8(ascii: "[") else { throw typeError(key, "an array of expert ids") }
        i += 1
        skipWhitespace()
        if base[i] == UInt8(ascii: "]") { throw malformed("field '\(key.name)' is empty") }
        let out = scratch.experts
        var n = 0
        while true {
            let v = try integer(key)
            guard n < JSONLScratch.capacity else {
                throw malformed("field '\(key.name)' holds more than \(JSONLScratch.capacity) ids")
            }
            out[n] = Int(v)
            n += 1
            if try !arrayContinues(key) { return n }
        }
    }

    /// Parses an array of numbers into the scratch weights; returns the count and notes the
    /// first invalid weight in `record`.
    private mutating func weightArray(_ key: Key, record: inout JSONLRecord) throws(RecordIssue) -> Int {
        guard base[i] == UInt8(ascii: "[") else { throw typeError(key, "an array of weights") }
        i += 1
        skipWhitespace()
        if base[i] == UInt8(ascii: "]") { throw malformed("field '\(key.name)' is empty") }
        let out = scratch.weights
        var n = 0
        while true {
            let d = try number(key)
            guard n < JSONLScratch.capacity else {
                throw malformed("field '\(key.name)' holds more than \(JSONLScratch.capacity) weights")
            }
            let f = Float(d)
            if !(d >= 0 && f.isFinite), record.invalidWeightIndex < 0 {
                record.invalidWeightIndex = n
                record.invalidWeight = d
            }
            out[n] = f
            n += 1
            if try !arrayContinues(key) { return n }
        }
    }

    /// After an array element: consumes `,` (and the whitespace after it) and returns true, or
    /// consumes `]` and returns false; anything else is malformed.
    @inline(__always)
    private mutating func arrayContinues(_ key: Key) throws(RecordIssue) -> Bool {
        skipWhitespace()
        let b = base[i]
        if b == UInt8(ascii: ",") {
            i += 1
            skipWhitespace()
            return true
        }
        if b == UInt8(ascii: "]") {
            i += 1
            return false
        }
        throw malformed("expected ',' or ']' in '\(key.name)' but found \(found()) at column \(i + 1)")
    }

    // MARK: - Numbers

    /// Parses a JSON number (or `NaN`, `Infinity`, `-Infinity`) to the nearest `Double`.
    @inline(__always)
    private mutating func number(_ key: Key) throws(RecordIssue) -> Double {
        let start = i
        var negative = false
        if base[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var d = base[i] &- 0x30
        if d >= 10 {
            if base[i] == UInt8(ascii: "N") {
                try literal("NaN")
                return .nan
            }
            if base[i] == UInt8(ascii: "I") {
                try literal("Infinity")
                return negative ? -.infinity : .infinity
            }
            i = start
            throw typeError(key, key == .unknown ? "a value" : "an array of numbers")
        }
        var mantissa: UInt64 = 0
        var digits = 0  // digits in the mantissa, leading zeros of a fraction included
        var exponent = 0
        if d == 0 {
            i += 1
            d = base[i] &- 0x30
        } else {
            repeat {
                digits += 1
                mantissa = mantissa &* 10 &+ UInt64(d)
                i += 1
                d = base[i] &- 0x30
            } while d < 10
        }
        if base[i] == UInt8(ascii: ".") {
            i += 1
            let fractionStart = i
            while i + 8 <= count, let eight = Self.eightDigits(base + i) {
                mantissa = mantissa &* 100_000_000 &+ eight
                i += 8
            }
            d = base[i] &- 0x30
            while d < 10 {
                mantissa = mantissa &* 10 &+ UInt64(d)
                i += 1
                d = base[i] &- 0x30
            }
            let fractionDigits = i - fractionStart
            guard fractionDigits > 0 else { throw malformed("a number has no digits after '.' at column \(i + 1)") }
            digits += fractionDigits
            exponent = -fractionDigits
        }
        let e = base[i]
        if e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            i += 1
            var negativeExponent = false
            if base[i] == UInt8(ascii: "-") {
                negativeExponent = true
                i += 1
            } else if base[i] == UInt8(ascii: "+") {
                i += 1
            }
            d = base[i] &- 0x30
            guard d < 10 else { throw malformed("a number has no digits in its exponent at column \(i + 1)") }
            var x = 0
            repeat {
                if x < 1_000_000 { x = x * 10 + Int(d) }
                i += 1
                d = base[i] &- 0x30
            } while d < 10
            exponent += negativeExponent ? -x : x
        }
        if digits <= 19, let v = JSONLDecimal.double(mantissa: mantissa, exponent: exponent) {
            return negative ? -v : v
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
        guard let v = Double(text) else { throw malformed("cannot read the number \(text) at column \(start + 1)") }
        return v
    }

    /// The value of eight ASCII digits at `p`, or `nil` when they are not all digits.
    @inline(__always)
    private static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
        let v = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
        guard
            (v & 0xF0F0_F0F0_F0F0_F0F0) | (((v &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
                == 0x3333_3333_3333_3333
        else { return nil }
        var x = v & 0x0F0F_0F0F_0F0F_0F0F
        x = (x &* 2561) >> 8
        x = ((x & 0x00FF_00FF_00FF_00FF) &* 6_553_601) >> 16
        return ((x & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) >> 32
    }

    // MARK: - Strings, literals, skipping

    /// Scans a string at its opening quote; returns the raw contents' byte range.
    private mutating func scanString() throws(RecordIssue) -> (start: Int, end: Int, escaped: Bool) {
        i += 1
        let start = i
        var escaped = false
        while true {
            let b = base[i]
            if b == UInt8(ascii: "\"") {
                let end = i
                i += 1
                return (start, end, escaped)
            }
            if b == UInt8(ascii: "\\") {
                escaped = true
                switch base[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    for j in 2...5 where Self.hexValue(base[i + j]) == nil {
                        throw malformed("invalid \\u escape in a string at column \(i + 1)")
                    }
                    i += 6
                default:
                    throw malformed("invalid escape in a string at column \(i + 1)")
                }
                continue
            }
            if b < 0x20 {
                if i >= count { throw malformed("unterminated string starting at column \(start)") }
                throw malformed("control character (byte 0x\(String(b, radix: 16))) inside a string at column \(i + 1)")
            }
            i += 1
        }
    }

    /// Matches a literal (`true`, `null`, `NaN`, ...) at the cursor.
    private mutating func literal(_ word: StaticString) throws(RecordIssue) {
        let p = word.utf8Start
        for j in 0..<word.utf8CodeUnitCount {
            guard base[i] == p[j] else { throw malformed("invalid literal at column \(i + 1), expected '\(word)'") }
            i += 1
        }
    }

    /// Skips one JSON value of any shape (the value of an unknown key), checking its syntax.
    private mutating func skipValue() throws(RecordIssue) {
        var stack: [UInt8] = []
        while true {
            skipWhitespace()
            switch base[i] {
            case UInt8(ascii: "\""):
                _ = try scanString()
            case UInt8(ascii: "{"):
                i += 1
                skipWhitespace()
                if base[i] == UInt8(ascii: "}") {
                    i += 1
                } else {
                    guard stack.count < Self.maximumDepth else {
                        throw malformed("values nested deeper than \(Self.maximumDepth) levels at column \(i + 1)")
                    }
                    stack.append(UInt8(ascii: "}"))
                    try memberKey()
                    continue
                }
            case UInt8(ascii: "["):
                i += 1
                skipWhitespace()
                if base[i] == UInt8(ascii: "]") {
                    i += 1
                } else {
                    guard stack.count < Self.maximumDepth else {
                        throw malformed("values nested deeper than \(Self.maximumDepth) levels at column \(i + 1)")
                    }
                    stack.append(UInt8(ascii: "]"))
                    continue
                }
            case UInt8(ascii: "t"):
                try literal("true")
            case UInt8(ascii: "f"):
                try literal("false")
            case UInt8(ascii: "n"):
                try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "N"), UInt8(ascii: "I"):
                _ = try number(.unknown)
            default:
                throw malformed("expected a value but found \(found()) at column \(i + 1)")
            }
            // After a complete value: close containers or move to the next element.
            while let top = stack.last {
                skipWhitespace()
                let b = base[i]
                if b == UInt8(ascii: ",") {
                    i += 1
                    if top == UInt8(ascii: "}") {
                        skipWhitespace()
                        try memberKey()
                    }
                    break
                }
                if b == top {
                    i += 1
                    stack.removeLast()
                    continue
                }
                throw malformed(
                    "expected ',' or '\(Character(Unicode.Scalar(top)))' but found \(found()) at column \(i + 1)"
                )
            }
            if stack.isEmpty { return }
        }
    }

    /// Scans `"key" :` inside a skipped object.
    private mutating func memberKey() throws(RecordIssue) {
        guard base[i] == UInt8(ascii: "\"") else {
            throw malformed("expected a quoted key but found \(found()) at column \(i + 1)")
        }
        _ = try scanString()
        skipWhitespace()
        guard base[i] == UInt8(ascii: ":") else {
            throw malformed("expected ':' but found \(found()) at column \(i + 1)")
        }
        i += 1
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while true {
            let b = base[i]
            guard b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A else { return }
            i += 1
        }
    }

    // MARK: - Errors

    private func malformed(_ message: String) -> RecordIssue { RecordIssue(.malformed, message) }

    private func typeError(_ key: Key, _ expected: String) -> RecordIssue {
        if key == .unknown { return malformed("expected \(expected) but found \(found()) at column \(i + 1)") }
        return malformed("field '\(key.name)' must be \(expected), found \(found()) at column \(i + 1)")
    }

    /// The byte at the cursor, described for a message.
    private func found() -> String {
        if i >= count { return "the end of the line" }
        let b = base[i]
        if b >= 0x20, b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    // MARK: - Unescaping

    private static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// Decodes the escapes of a raw JSON string (already checked by `scanString`) into UTF-8.
    /// A lone surrogate becomes U+FFFD.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var j = 0
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= raw.count else { return nil }
            var v: UInt32 = 0
            for m in at..<(at + 4) {
                guard let h = hexValue(raw[m]) else { return nil }
                v = v << 4 | h
            }
            return v
        }
        func append(_ scalar: Unicode.Scalar) {
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
        while j < raw.count {
            let b = raw[j]
            guard b == UInt8(ascii: "\\"), j + 1 < raw.count else {
                out.append(b)
                j += 1
                continue
            }
            let c = raw[j + 1]
            j += 2
            switch c {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard let u = hex4(j) else {
                    append("\u{FFFD}")
                    continue
                }
                j += 4
                if (0xD800..<0xDC00).contains(u), j + 6 <= raw.count, raw[j] == UInt8(ascii: "\\"),
                    raw[j + 1] == UInt8(ascii: "u"), let low = hex4(j + 2), (0xDC00..<0xE000).contains(low)
                {
                    j += 6
                    let scalar = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
                } else {
                    append(Unicode.Scalar(u) ?? "\u{FFFD}")
                }
            default: out.append(c)
            }
        }
        return out
    }
}
