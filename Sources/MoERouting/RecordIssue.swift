// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// What was wrong with one routing record, with a kind that lenient readers count by.
///
/// ```swift
/// throw RoutingError.invalidRecord(RecordIssue(.expertOutOfRange, "expert id 9 is outside 0..<8 (E)"))
/// ```
public struct RecordIssue: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of bad record a reader can meet. Lenient reading counts skipped records by kind.
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
        /// Not valid JSON, a missing or mistyped field, or a column of the wrong length.
        case malformed = "malformed"
        /// An expert id at or above E (or negative).
        case expertOutOfRange = "expert_out_of_range"
        /// A layer index at or above L (or negative).
        case layerOutOfRange = "layer_out_of_range"
        /// A NaN, infinite or negative weight.
        case invalidWeight = "invalid_weight"
        /// A record whose number of experts differs from top-k.
        case topKMismatch = "top_k_mismatch"
        /// The same expert twice within one cell.
        case duplicateExpert = "duplicate_expert"
        /// A second record for a (token, layer) cell already seen.
        case duplicateCell = "duplicate_cell"
        /// Records of one problem split by records of another problem.
        case nonContiguousProblem = "non_contiguous_problem"
        /// A binary chunk whose checksum or length does not match, or a file cut off mid-chunk.
        case corruptChunk = "corrupt_chunk"

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    /// The kind of problem.
    public var kind: Kind
    /// A one-line explanation naming the offending value.
    public var detail: String

    /// Creates an issue.
    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }
}
