// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Analyzers by name: each entry makes a fresh instance.
///
/// There is no process-wide registry: the command-line tool builds one (the built-in analyzers
/// plus the plugins named on its command line) and passes it on, and library code takes one
/// explicitly, so tests and hosts never share global state.
///
/// ```swift
/// var registry = AnalyzerRegistry()
/// try registry.register("token-counter", summary: "counts tokens") { TokenCounter() }
/// let analyzer = try registry.make("token-counter")
/// ```
public struct AnalyzerRegistry: Sendable {
    /// Makes a fresh analyzer instance.
    public typealias Factory = @Sendable () -> any RoutingAnalyzer

    /// One registered analyzer.
    public struct Entry: Sendable {
        /// Registry name.
        public var name: String
        /// One line saying what it measures.
        public var summary: String
        /// Makes an instance.
        public var factory: Factory
        /// Where it comes from, for messages: "the built-in analyzers", "plugin /path/libX.so".
        public var origin: String
    }

    private var entries: [String: Entry] = [:]

    /// An empty registry.
    public init() {}

    /// Registers a factory under a name.
    ///
    /// - Parameters:
    ///   - name: The registry name: non-empty, without spaces or commas.
    ///   - summary: One line saying what it measures.
    ///   - origin: Where the analyzer comes from, named in the error when two register one name
    ///     (for example `"plugin /opt/libX.so"`).
    ///   - factory: Makes a fresh instance.
    /// - Throws: ``RoutingError/registrationFailed(name:message:)`` when the name is empty or malformed,
    ///   or already taken; the message names both origins.
    public mutating func register(
        _ name: String,
        summary: String,
        origin: String = "the built-in analyzers",
        factory: @escaping Factory
    ) throws {
        guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "," }) else {
            throw RoutingError.registrationFailed(
                name: name,
                message: "analyzer names must be non-empty, without spaces or commas"
            )
        }
        if let taken = entries[name] {
            throw RoutingError.registrationFailed(
                name: name,
                message: "\(origin) registers an analyzer named '\(name)', but \(taken.origin) already has one; "
                    + "rename one of them or load only one"
            )
        }
        entries[name] = Entry(name: name, summary: summary, factory: factory, origin: origin)
    }

    /// Registered names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Registered entries, sorted by name.
    public var allEntries: [Entry] { names.map { entries[$0]! } }

    /// Whether a name is registered.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// Makes a fresh instance of a registered analyzer.
    ///
    /// - Throws: ``RoutingError/unknownAnalyzer(name:known:)`` when no analyzer is registered under
    ///   `name`; the error lists the registered names.
    public func make(_ name: String) throws -> any RoutingAnalyzer {
        guard let e = entries[name] else { throw RoutingError.unknownAnalyzer(name: name, known: names) }
        return e.factory()
    }
}
