// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Escaping for text that comes from analyzers and plugins (names, labels, table cells) before it
/// goes into HTML or SVG: safe both in element content and in quoted attributes, and valid XML.
///
/// ```swift
/// HTMLEscaping.escape(#"<script>&"'"#)   // "&lt;script&gt;&amp;&quot;&#39;"
/// ```
enum HTMLEscaping {
    /// Replaces `&`, `<`, `>`, `"` and `'` with entities, and control characters that XML 1.0
    /// forbids (all below U+0020 but tab, newline and carriage return) with U+FFFD.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// `s` shortened to `limit` characters with a trailing ellipsis, for tick labels (the full
    /// text stays in tooltips).
    static func truncated(_ s: String, to limit: Int) -> String {
        guard s.count > limit, limit > 1 else { return s }
        return String(s.prefix(limit - 1)) + "…"
    }

    /// Estimated rendered width in pixels of `s` at `fontSize` in a sans-serif font (0.6 em per
    /// character): used to lay out tick labels and legends without a font engine.
    static func estimatedWidth(_ s: String, fontSize: Double) -> Double { Double(s.count) * fontSize * 0.6 }
}
