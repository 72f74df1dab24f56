// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Number spellings for the HTML report, without Foundation: short SVG coordinates, tick labels
/// with a fixed number of decimals, and values for tooltips and tables.
///
/// Every function gives the same bytes for the same input on every platform, so a report is
/// reproducible.
///
/// ```swift
/// NumberFormat.coordinate(17.549)          // "17.5"
/// NumberFormat.fixed(0.1, decimals: 2)     // "0.10"
/// NumberFormat.value(0.012345)             // "0.01235"
/// NumberFormat.grouped(1234567)            // "1,234,567"
/// ```
enum NumberFormat {
    /// An SVG coordinate: one decimal, trailing ".0" dropped.
    static func coordinate(_ x: Double) -> String { fixed(x, decimals: 1, trimZeros: true) }

    /// `x` rounded half away from zero to `decimals` places (0...9). Non-finite values spell
    /// "n/a"; magnitudes too large for fixed notation fall back to ``value(_:)``.
    static func fixed(_ x: Double, decimals: Int, trimZeros: Bool = false) -> String {
        guard x.isFinite else { return "n/a" }
        let d = min(max(decimals, 0), 9)
        var scale: UInt64 = 1
        for _ in 0..<d { scale *= 10 }
        let scaled = (abs(x) * Double(scale)).rounded()
        guard scaled < 9.0e15 else { return value(x) }
        let n = UInt64(scaled)
        var out = (x < 0 && n != 0) ? "-" : ""
        out += String(n / scale)
        if d > 0 {
            var frac = String(n % scale)
            frac = String(repeating: "0", count: d - frac.count) + frac
            if trimZeros {
                while frac.last == "0" { frac.removeLast() }
            }
            if !frac.isEmpty { out += "." + frac }
        }
        return out
    }

    /// A value for people: four significant digits (trailing zeros dropped), scientific
    /// notation below 0.001 and from 1,000,000; "n/a" when not finite.
    static func value(_ x: Double) -> String {
        guard x.isFinite else { return "n/a" }
        let a = abs(x)
        if a == 0 { return "0" }
        if a < 1e-3 || a >= 1e6 {
            var exponent = 0
            var m = a
            while m >= 10 {
                m /= 10
                exponent += 1
            }
            while m < 1 {
                m *= 10
                exponent -= 1
            }
            var mantissa = fixed(m, decimals: 3, trimZeros: true)
            if mantissa == "10" {
                mantissa = "1"
                exponent += 1
            }
            return (x < 0 ? "-" : "") + mantissa + "e" + String(exponent)
        }
        let decimals = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 3 : a >= 0.1 ? 4 : a >= 0.01 ? 5 : 6
        return fixed(x, decimals: decimals, trimZeros: true)
    }

    /// A short value to print inside a heatmap cell: 0-2 decimals by magnitude (the tooltip
    /// has the precise value).
    static func cell(_ x: Double) -> String {
        guard x.isFinite else { return "n/a" }
        let a = abs(x)
        if a >= 10_000 { return value(x) }
        let s = fixed(x, decimals: a >= 100 ? 0 : a >= 10 ? 1 : 2)
        return s.hasPrefix("-") && s.allSatisfy({ "-0.".contains($0) }) ? String(s.dropFirst()) : s
    }

    /// An integer with thousands separators: "1,234,567".
    static func grouped(_ n: some BinaryInteger) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
