// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Errors raised by the core: bad shapes, bad records and analyzer failures.
///
/// Every case carries a message meant for a person: it names what was wrong and, where it can,
/// how to fix it. ``description`` is one line.
public enum RoutingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A model shape with a dimension out of range.
    case invalidShape(String)
    /// A routing record that does not fit the shape or breaks an invariant.
    case invalidRecord(RecordIssue)
    /// Two analyzers of different types were asked to merge.
    case incompatibleMerge(String)
    /// An analyzer name that no registry entry has.
    case unknownAnalyzer(name: String, known: [String])
    /// An analyzer failed; the message says which and why.
    case analyzerFailed(name: String, message: String)
    /// An analyzer could not be registered: a malformed name, or one that is already taken.
    case registrationFailed(name: String, message: String)

    public var description: String {
        switch self {
        case .invalidShape(let m): return "invalid model shape: \(m)"
        case .invalidRecord(let issue): return issue.detail
        case .incompatibleMerge(let m): return "cannot merge analyzers: \(m)"
        case .unknownAnalyzer(let name, let known):
            return "unknown analyzer '\(name)'; known analyzers: \(known.sorted().joined(separator: ", "))"
        case .analyzerFailed(let name, let message): return "analyzer '\(name)' failed: \(message)"
        case .registrationFailed(let name, let message): return "cannot register analyzer '\(name)': \(message)"
        }
    }
}
