// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import CMoERoutingPlugin
public import MoERouting

/// Exposes Swift analyzers through the plugin C entry point, for plugin libraries written in
/// Swift.
///
/// In the plugin's dynamic library target:
///
/// ```swift
/// import MoERoutingPlugins
///
/// private let plugin = PluginExporter.export([
///     .init(name: "expert-load", summary: "per-layer expert load") { ExpertLoadAnalyzer() }
/// ])
///
/// @_cdecl("moe_routing_plugin_entry")
/// public func moeRoutingPluginEntry() -> UnsafeRawPointer { plugin.table }
/// ```
///
/// The returned table lives for the life of the process; export once into a `let` global (the
/// entry point may be called more than once and must return the same table).
public enum PluginExporter {
    /// One analyzer to export.
    public struct Entry: Sendable {
        public var name: String
        public var summary: String
        public var factory: AnalyzerRegistry.Factory
        public init(name: String, summary: String, factory: @escaping AnalyzerRegistry.Factory) {
            self.name = name
            self.summary = summary
            self.factory = factory
        }
    }

    /// The C table of an exported plugin; immutable once built, so safe to share.
    public struct ExportedPlugin: @unchecked Sendable {
        /// The `moe_routing_plugin` table, to return from the entry point.
        public let table: UnsafeRawPointer
    }

    /// Builds the C table for `entries`. The memory is never freed.
    public static func export(_ entries: [Entry]) -> ExportedPlugin {
        let vtables = UnsafeMutablePointer<moe_routing_analyzer_vtable>.allocate(capacity: max(1, entries.count))
        for (i, e) in entries.enumerated() {
            let factoryBox = Unmanaged.passRetained(FactoryBox(e.factory)).toOpaque()
            vtables[i] = moe_routing_analyzer_vtable(
                name: UnsafePointer(LibC.duplicate(e.name)),
                summary: UnsafePointer(LibC.duplicate(e.summary)),
                userdata: UnsafeRawPointer(factoryBox),
                create: { userdata in
                    guard let userdata else { return nil }
                    let factory = Unmanaged<FactoryBox>.fromOpaque(userdata).takeUnretainedValue().factory
                    return Unmanaged.passRetained(InstanceBox(factory())).toOpaque()
                },
                destroy: { instance in
                    guard let instance else { return }
                    Unmanaged<InstanceBox>.fromOpaque(instance).release()
                },
                begin: { instance, json, error in
                    guarded(instance, error) { a in
                        let text = json.map { String(cString: $0) } ?? "{}"
                        try a.begin(AnalysisContext(reportValue: ReportValue.parse(json: text)))
                    }
                },
                consume: { instance, block, error in
                    guarded(instance, error) { a in
                        guard let block else { throw RoutingError.invalidRecord(RecordIssue(.malformed, "NULL block")) }
                        try a.consume(RoutingBlock(borrowing: block.pointee))
                    }
                },
                merge: { instance, other, error in
                    guarded(instance, error) { a in
                        guard let other else { throw RoutingError.incompatibleMerge("NULL instance") }
                        try a.merge(Unmanaged<InstanceBox>.fromOpaque(other).takeUnretainedValue().analyzer)
                    }
                },
                finish: { instance, report, error in
                    guarded(instance, error) { a in
                        let text = try a.finish().reportValue.jsonString()
                        report?.pointee = LibC.duplicate(text)
                    }
                },
                free_string: { s in LibC.free(s) }
            )
        }
        let table = UnsafeMutablePointer<moe_routing_plugin>.allocate(capacity: 1)
        table.pointee = moe_routing_plugin(
            abi_version: MOE_ROUTING_PLUGIN_ABI_VERSION,
            analyzer_count: Int32(entries.count),
            analyzers: UnsafePointer(vtables)
        )
        return ExportedPlugin(table: UnsafeRawPointer(table))
    }
}

private final class FactoryBox {
    let factory: AnalyzerRegistry.Factory
    init(_ f: @escaping AnalyzerRegistry.Factory) { factory = f }
}

private final class InstanceBox {
    let analyzer: any RoutingAnalyzer
    init(_ a: any RoutingAnalyzer) { analyzer = a }
}

/// Runs `body` on the instance, turning a thrown error into code 1 and a message.
private func guarded(
    _ instance: UnsafeMutableRawPointer?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ body: (any RoutingAnalyzer) throws -> Void
) -> Int32 {
    guard let instance else {
        error?.pointee = LibC.duplicate("NULL instance")
        return 1
    }
    do {
        try body(Unmanaged<InstanceBox>.fromOpaque(instance).takeUnretainedValue().analyzer)
        return 0
    } catch let thrown {
        error?.pointee = LibC.duplicate("\(thrown)")
        return 1
    }
}

extension RoutingBlock {
    /// Copies a C block into a Swift block, validating it. A non-NULL `step` becomes
    /// ``RoutingBlock/step``; NULL gives `nil`.
    init(borrowing c: moe_routing_block) throws {
        let shape = try ModelShape(layers: Int(c.layers), experts: Int(c.experts), topK: Int(c.top_k))
        let t = Int(c.token_count)
        guard t >= 0 else { throw RoutingError.invalidRecord(RecordIssue(.malformed, "negative token count")) }
        let n = t * shape.layers * shape.topK
        let cells = t * shape.layers
        func copy<T>(_ p: UnsafePointer<T>?, _ count: Int, _ field: String) throws -> [T] {
            if count == 0 { return [] }
            guard let p else { throw RoutingError.invalidRecord(RecordIssue(.malformed, "NULL column '\(field)'")) }
            return Array(UnsafeBufferPointer(start: p, count: count))
        }
        let wide = try copy(c.ids, n, "ids")
        let ids: ExpertIDs = shape.usesNarrowIDs ? .narrow(wide.map { UInt8(truncatingIfNeeded: $0) }) : .wide(wide)
        if shape.usesNarrowIDs, let bad = wide.first(where: { $0 > 255 }) {
            throw RoutingError.invalidRecord(
                RecordIssue(.expertOutOfRange, "expert id \(bad) is outside 0..<\(shape.experts) (E)")
            )
        }
        var names: [String] = []
        for i in 0..<Int(max(0, c.domain_count)) {
            guard let base = c.domain_names, let s = base[i] else {
                throw RoutingError.invalidRecord(RecordIssue(.malformed, "NULL domain name \(i)"))
            }
            names.append(String(cString: s))
        }
        try self.init(
            shape: shape,
            ids: ids,
            weights: try copy(c.weights, n, "weights"),
            present: try copy(c.present, cells, "present").map { $0 != 0 },
            domain: try copy(c.domain, t, "domain"),
            domains: names,
            problemID: try copy(c.problem_id, t, "problem_id"),
            position: try copy(c.position, t, "position"),
            phase: try copy(c.phase, t, "phase").map { RoutingPhase(rawValue: $0) ?? .decode },
            tokenID: try copy(c.token_id, t, "token_id"),
            // ABI version 2 (what this exporter declares): NULL means the block has no steps.
            step: c.step == nil ? nil : try copy(c.step, t, "step")
        )
    }
}
