// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Loads analyzer plugins from shared libraries through the C entry point declared in
// `moe_routing_plugin.h`, and wraps each analyzer they provide as a `RoutingAnalyzer`.

import CMoERoutingPlugin
public import MoERouting

/// A loaded plugin library and the analyzers it provides.
///
/// ```swift
/// let library = try PluginLibrary(path: "libTokenHistogramPlugin.so")
/// var registry = AnalyzerRegistry()
/// try library.register(into: &registry)
/// ```
///
/// The library stays loaded for the life of the process (analyzers made from it point into it).
public final class PluginLibrary: Sendable {
    /// The plugin ABI versions this host loads: 1 (blocks without `step`) through the version of
    /// `moe_routing_plugin.h` it was built with (see the header's comment on versions).
    public static let supportedABIVersions: ClosedRange<UInt32> =
        MOE_ROUTING_PLUGIN_MIN_ABI_VERSION...MOE_ROUTING_PLUGIN_ABI_VERSION

    /// The path it was loaded from.
    public let path: String
    /// The ABI version the library declares (one of ``supportedABIVersions``).
    public let abiVersion: UInt32
    /// The analyzers it provides: name and one-line summary.
    public let analyzers: [(name: String, summary: String)]
    private let plugin: PluginTable

    /// Loads a plugin library.
    ///
    /// - Throws: ``PluginError`` when the file cannot be loaded, lacks the entry point, or was built
    ///   for an ABI version outside ``supportedABIVersions``.
    public convenience init(path: String) throws {
        let handle: UnsafeMutableRawPointer
        switch LibC.openLibrary(path) {
        case .success(let h): handle = h
        case .failure(let why): throw PluginError(path: path, message: "cannot load: \(why.message)")
        }
        guard let sym = LibC.symbol(handle, MOE_ROUTING_PLUGIN_ENTRY_SYMBOL) else {
            throw PluginError(
                path: path,
                message:
                    "no symbol '\(MOE_ROUTING_PLUGIN_ENTRY_SYMBOL)': not a speculative-moe plugin (see docs/plugins.md)"
            )
        }
        let entry = unsafeBitCast(sym, to: moe_routing_plugin_entry_fn.self)
        guard let table = entry() else { throw PluginError(path: path, message: "the entry point returned NULL") }
        try self.init(table: UnsafeRawPointer(table), path: path)
    }

    /// Wraps a `moe_routing_plugin` table already in memory (e.g. one built in-process by
    /// ``PluginExporter``), checking it as a loaded library's table is checked; `path` names it in
    /// errors. The table must outlive every analyzer made from it.
    package init(table rawTable: UnsafeRawPointer, path: String) throws {
        let table = rawTable.assumingMemoryBound(to: moe_routing_plugin.self)
        let version = table.pointee.abi_version
        let supported = Self.supportedABIVersions
        guard supported.contains(version) else {
            throw PluginError(
                path: path,
                message: "built for plugin ABI version \(version), but this host loads versions "
                    + "\(supported.lowerBound) to \(supported.upperBound); rebuild the plugin against this host's moe_routing_plugin.h"
            )
        }
        let count = Int(table.pointee.analyzer_count)
        guard count >= 0, count < 10_000, count == 0 || table.pointee.analyzers != nil else {
            throw PluginError(path: path, message: "bad analyzer count \(count)")
        }
        var list: [(String, String)] = []
        for i in 0..<count {
            let vt = table.pointee.analyzers[i]
            guard let n = vt.name, vt.create != nil, vt.destroy != nil, vt.begin != nil, vt.consume != nil,
                vt.merge != nil, vt.finish != nil, vt.free_string != nil
            else {
                throw PluginError(path: path, message: "analyzer \(i) has a NULL name or function pointer")
            }
            list.append((String(cString: n), vt.summary.map { String(cString: $0) } ?? ""))
        }
        self.path = path
        self.abiVersion = version
        self.analyzers = list
        self.plugin = PluginTable(pointer: table)
    }

    /// Makes a fresh instance of the `index`-th analyzer.
    ///
    /// - Throws: ``PluginError`` when there is no analyzer at `index` or the plugin's `create`
    ///   returns NULL.
    public func makeAnalyzer(at index: Int) throws -> any RoutingAnalyzer {
        guard analyzers.indices.contains(index) else {
            throw PluginError(path: path, message: "no analyzer at index \(index)")
        }
        return try DynamicPluginAnalyzer(vtable: plugin.pointer.pointee.analyzers + index, library: path)
    }

    /// Registers every analyzer of the library, with origin `"plugin <path>"`.
    ///
    /// - Throws: ``RoutingError/registrationFailed(name:message:)`` when an analyzer's name is
    ///   malformed or already registered; the message names both origins.
    public func register(into registry: inout AnalyzerRegistry) throws {
        for (i, a) in analyzers.enumerated() {
            try registry.register(a.name, summary: a.summary + " (plugin \(path))", origin: "plugin \(path)") {
                [self] in
                (try? self.makeAnalyzer(at: i)) ?? FailedAnalyzer(name: a.name, message: "could not create an instance")
            }
        }
    }
}

extension PluginLibrary {
    /// Loads every library in `paths` and registers their analyzers, refusing a library given
    /// twice (two spellings of one file, after symlinks) and any analyzer name already taken (by a
    /// built-in or by another plugin), with a message that names both.
    ///
    /// ```swift
    /// var registry = AnalyzerRegistry()
    /// let libraries = try PluginLibrary.registerAll(paths: ["libA.so", "libB.so"], into: &registry)
    /// ```
    ///
    /// - Returns: The loaded libraries, in the order given.
    /// - Throws: ``PluginError`` when a library cannot be loaded (see ``init(path:)``) or is given
    ///   twice; ``RoutingError/registrationFailed(name:message:)`` when an analyzer name is taken.
    @discardableResult
    public static func registerAll(paths: [String], into registry: inout AnalyzerRegistry) throws -> [PluginLibrary] {
        var loaded: [(library: PluginLibrary, file: FileIdentity?)] = []
        for path in paths {
            let file = FileIdentity(path: path)
            if let file, let first = loaded.first(where: { $0.file == file }) {
                throw PluginError(
                    path: path,
                    message: "is the same library as \(first.library.path), given before; give each plugin once"
                )
            }
            let library = try PluginLibrary(path: path)
            try library.register(into: &registry)
            loaded.append((library, file))
        }
        return loaded.map(\.library)
    }
}

/// A file's device and inode (after symlinks): two spellings of one path compare equal.
private struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        guard let identity = LibC.fileIdentity(path) else { return nil }
        device = identity.device
        inode = identity.inode
    }
}

/// The plugin's table pointer; immutable static data inside the loaded library.
private struct PluginTable: @unchecked Sendable {
    let pointer: UnsafePointer<moe_routing_plugin>
}

/// A plugin that could not be loaded or that broke the ABI.
public struct PluginError: Error, Sendable, CustomStringConvertible {
    /// The library.
    public var path: String
    /// What went wrong.
    public var message: String
    /// Creates an error about the library at `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "plugin \(path): \(message)" }
}

/// Stands in for an analyzer whose instance could not be made: it fails at `begin`, so the
/// dispatcher reports and drops it like any failing analyzer.
final class FailedAnalyzer: RoutingAnalyzer {
    let name: String
    let message: String
    init(name: String, message: String) {
        self.name = name
        self.message = message
    }
    func begin(_ context: AnalysisContext) throws { throw RoutingError.analyzerFailed(name: name, message: message) }
    func consume(_ block: RoutingBlock) throws { throw RoutingError.analyzerFailed(name: name, message: message) }
    func merge(_ other: any RoutingAnalyzer) throws { throw RoutingError.analyzerFailed(name: name, message: message) }
    func finish() throws -> AnalyzerReport { throw RoutingError.analyzerFailed(name: name, message: message) }
}
