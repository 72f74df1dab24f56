// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// LayerPair: a pair of MoE layers (l, j), l < j, that the multihop analyzer keeps in full, and
// the parser of the `l:j,l:j` lists users write on the command line.

/// A pair of MoE layers (l, j) with l < j, written `l:j`.
///
/// ```swift
/// let pairs = try LayerPair.parseList("0:5,3:10")   // [0:5, 3:10]
/// let m = MultiHopAnalyzer(detailPairs: pairs)
/// ```
public struct LayerPair: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The earlier layer l (0-based among the MoE layers).
    public var earlier: Int
    /// The later layer j.
    public var later: Int

    /// The pair (l, j).
    public init(_ earlier: Int, _ later: Int) {
        self.earlier = earlier
        self.later = later
    }

    /// `l:j`.
    public var description: String { "\(earlier):\(later)" }

    /// Orders by the earlier layer, then the later.
    public static func < (a: LayerPair, b: LayerPair) -> Bool {
        a.earlier != b.earlier ? a.earlier < b.earlier : a.later < b.later
    }

    /// A malformed pair list, with a one-line message naming the bad entry and the fix.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// The message.
        public var description: String
    }

    /// Parses `l:j[,l:j...]`: non-negative integers with l < j, and, when `layers` is given,
    /// j < layers.
    ///
    /// - Throws: ``ParseError`` naming the entry, e.g. `pair '5:3': l must be below j (write 3:5)`.
    public static func parseList(_ text: String, layers: Int? = nil) throws -> [LayerPair] {
        var out: [LayerPair] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = entry.trimmingCharacters(in: " ")
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let l = Int(parts[0]), let j = Int(parts[1]) else {
                throw ParseError(
                    description:
                        "pair '\(item)' is malformed: write layer pairs as l:j separated by commas, e.g. 0:5,3:10"
                )
            }
            guard l >= 0, j >= 0 else {
                throw ParseError(description: "pair '\(item)': layers are 0-based, so they cannot be negative")
            }
            guard l < j else {
                throw ParseError(
                    description: l == j
                        ? "pair '\(item)': the two layers must differ (l < j)"
                        : "pair '\(item)': l must be below j (write \(j):\(l))"
                )
            }
            if let layers, j >= layers {
                throw ParseError(
                    description:
                        "pair '\(item)' is out of range: the model has \(layers) MoE layers (0...\(layers - 1))"
                )
            }
            out.append(LayerPair(l, j))
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
