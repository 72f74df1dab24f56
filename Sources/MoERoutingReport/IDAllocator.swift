// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Hands out document-unique element ids: section ids (the analyzer name when it is a valid id),
/// then gradient and pattern ids of figures, so two figures never share an id.
///
/// ```swift
/// var ids = IDAllocator()
/// ids.claim("transition")   // "transition"
/// ids.claim("transition")   // "transition-2"
/// ids.fresh("moe-grad")     // "moe-grad-1"
/// ```
struct IDAllocator {
    private var used: Set<String> = []
    private var counter = 0

    /// `preferred` when it is a valid, unused id; otherwise `preferred` with every character
    /// outside `[A-Za-z0-9_.:-]` replaced by "-", and "-2", "-3", ... appended until unused.
    mutating func claim(_ preferred: String) -> String {
        var base = String(
            preferred.map { c -> Character in
                c.isASCII && (c.isLetter || c.isNumber || "_.:-".contains(c)) ? c : "-"
            }
        )
        if base.isEmpty { base = "section" }
        var candidate = base
        var n = 2
        while used.contains(candidate) {
            candidate = "\(base)-\(n)"
            n += 1
        }
        used.insert(candidate)
        return candidate
    }

    /// A fresh id such as "moe-grad-3" for defs (gradients, patterns).
    mutating func fresh(_ prefix: String) -> String {
        counter += 1
        return claim("\(prefix)-\(counter)")
    }
}
