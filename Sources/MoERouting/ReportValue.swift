// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A JSON value whose objects keep their keys in order, so that a report encodes to the same
/// bytes every time.
///
/// Doubles encode with Swift's shortest round-trip spelling; NaN and infinities encode as `null`
/// (JSON has no spelling for them). Integers encode exactly, up to `UInt64.max` (64-bit seeds
/// and hashes included), never through a `Double`.
///
/// ```swift
/// let v: ReportValue = ["layer": 3, "top1_same": 0.125, "matrix": [[1, 0], [0, 1]]]
/// print(v.jsonString())   // {"layer":3,"top1_same":0.125,"matrix":[[1,0],[0,1]]}
/// ```
public enum ReportValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    /// A whole number above `Int.max`, up to `UInt64.max`, written exactly.
    ///
    /// Make unsigned values with ``integer(_:)``: it gives ``int(_:)`` for every value that fits
    /// one, as the parser does, so a value and its parsed JSON compare equal.
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([ReportValue])
    /// An object; keys keep the order given.
    case object([Member])

    /// One key and value of an object.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: ReportValue
        public init(_ key: String, _ value: ReportValue) {
            self.key = key
            self.value = value
        }
    }

    /// An unsigned 64-bit integer, exactly: ``int(_:)`` when it fits an `Int`, otherwise
    /// ``unsigned(_:)``. Seeds are written this way.
    ///
    /// ```swift
    /// ReportValue.integer(24301)            // .int(24301)
    /// ReportValue.integer(UInt64.max)       // .unsigned(18446744073709551615)
    /// ReportValue.integer(UInt64.max).jsonString()   // "18446744073709551615"
    /// ```
    public static func integer(_ x: UInt64) -> ReportValue {
        x <= UInt64(Int.max) ? .int(Int(x)) : .unsigned(x)
    }

    /// A double, or `null` when it is not finite.
    public static func number(_ x: Double) -> ReportValue { x.isFinite ? .double(x) : .null }

    /// An optional double: `null` when absent or not finite.
    public static func number(_ x: Double?) -> ReportValue { x.map { number($0) } ?? .null }

    /// A matrix of doubles as an array of arrays.
    public static func matrix(_ rows: [[Double]]) -> ReportValue { .array(rows.map { .array($0.map { number($0) }) }) }

    /// The value under `key` when this is an object.
    public subscript(key: String) -> ReportValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    /// The element at `index` when this is an array.
    public subscript(index: Int) -> ReportValue? {
        guard case .array(let a) = self, a.indices.contains(index) else { return nil }
        return a[index]
    }

    /// The number this value holds (int or double), if any.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .unsigned(let u): return Double(u)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The integer this value holds, if any.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }

    /// The unsigned 64-bit integer this value holds exactly (a non-negative ``int(_:)`` or an
    /// ``unsigned(_:)``), if any; doubles give `nil`, as they may have been rounded.
    public var uint64Value: UInt64? {
        switch self {
        case .int(let i) where i >= 0: return UInt64(i)
        case .unsigned(let u): return u
        default: return nil
        }
    }

    /// The string this value holds, if any.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// The elements when this is an array.
    public var arrayValue: [ReportValue]? { if case .array(let a) = self { return a } else { return nil } }

    /// The members when this is an object.
    public var objectMembers: [Member]? { if case .object(let m) = self { return m } else { return nil } }

    // MARK: - Encoding

    /// Encodes as JSON. `indent` > 0 pretty-prints with that many spaces per level.
    public func jsonString(indent: Int = 0) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0)
        return out
    }

    private func write(to out: inout String, indent: Int, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .unsigned(let u): out += String(u)
        case .double(let d):
            if !d.isFinite {
                out += "null"
            } else if d == d.rounded(), abs(d) < 1e15 {
                out += String(Int(d))
                if d == 0, d.sign == .minus { out = String(out.dropLast()) + "0" }
            } else {
                out += "\(d)"
            }
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let a):
            if a.isEmpty {
                out += "[]"
                return
            }
            let scalarOnly = a.allSatisfy { !$0.isContainer }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                if indent > 0 && !scalarOnly { newline(&out, indent, level + 1) }
                v.write(to: &out, indent: indent, level: level + 1)
            }
            if indent > 0 && !scalarOnly { newline(&out, indent, level) }
            out += "]"
        case .object(let members):
            if members.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += "," }
                if indent > 0 { newline(&out, indent, level + 1) }
                Self.writeString(m.key, to: &out)
                out += indent > 0 ? ": " : ":"
                m.value.write(to: &out, indent: indent, level: level + 1)
            }
            if indent > 0 { newline(&out, indent, level) }
            out += "}"
        }
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    private func newline(_ out: inout String, _ indent: Int, _ level: Int) {
        out += "\n"
        out += String(repeating: " ", count: indent * level)
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

// MARK: - Literals

extension ReportValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: ReportValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, ReportValue)...) {
        self = .object(elements.map { Member($0.0, $0.1) })
    }
}
