// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import CMoERoutingPlugin
import MoERouting

/// An analyzer living in a plugin library, driven through its C function table.
final class DynamicPluginAnalyzer: RoutingAnalyzer {
    let name: String
    private let vtable: UnsafePointer<moe_routing_analyzer_vtable>
    private let instance: UnsafeMutableRawPointer
    private let library: String

    init(vtable: UnsafePointer<moe_routing_analyzer_vtable>, library: String) throws {
        self.vtable = vtable
        self.library = library
        self.name = String(cString: vtable.pointee.name)
        guard let inst = vtable.pointee.create(vtable.pointee.userdata) else {
            throw PluginError(path: library, message: "analyzer '\(name)': create returned NULL")
        }
        self.instance = inst
    }

    deinit { vtable.pointee.destroy(instance) }

    /// Runs one call; turns a non-zero code into a Swift error carrying the plugin's message.
    private func call(_ stage: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32) throws {
        var error: UnsafeMutablePointer<CChar>? = nil
        let rc = body(&error)
        let message = error.map { String(cString: $0) }
        if let error { vtable.pointee.free_string(error) }
        guard rc == 0 else {
            throw RoutingError.analyzerFailed(
                name: name,
                message: "\(stage) returned \(rc): \(message ?? "no message")"
            )
        }
    }

    func begin(_ context: AnalysisContext) throws {
        let json = context.reportValue.jsonString()
        try call("begin") { err in json.withCString { vtable.pointee.begin(instance, $0, err) } }
    }

    func consume(_ block: RoutingBlock) throws {
        // Widen to the C layout: ids as uint16, phases as uint8.
        let ids: [UInt16]
        switch block.ids {
        case .narrow(let a): ids = a.map(UInt16.init)
        case .wide(let a): ids = a
        }
        let phase = block.phase.map(\.rawValue)
        let present = block.present.map { $0 ? UInt8(1) : 0 }
        let names = block.domains.map { LibC.duplicate($0) }
        defer { for name in names { LibC.free(name) } }
        let namePointers = names.map { UnsafePointer<CChar>($0) }
        try call("consume") { err in
            ids.withUnsafeBufferPointer { idsP in
                block.weights.withUnsafeBufferPointer { wP in
                    present.withUnsafeBufferPointer { prP in
                        block.domain.withUnsafeBufferPointer { dP in
                            block.problemID.withUnsafeBufferPointer { pP in
                                block.position.withUnsafeBufferPointer { posP in
                                    phase.withUnsafeBufferPointer { phP in
                                        block.tokenID.withUnsafeBufferPointer { tP in
                                            namePointers.withUnsafeBufferPointer { nP in
                                                withStepPointer(block.step) { sP in
                                                    var c = moe_routing_block(
                                                        layers: Int32(block.shape.layers),
                                                        experts: Int32(block.shape.experts),
                                                        top_k: Int32(block.shape.topK),
                                                        domain_count: Int32(block.domains.count),
                                                        token_count: Int64(block.tokenCount),
                                                        ids: idsP.baseAddress,
                                                        weights: wP.baseAddress,
                                                        present: prP.baseAddress,
                                                        domain: dP.baseAddress,
                                                        problem_id: pP.baseAddress,
                                                        position: posP.baseAddress,
                                                        phase: phP.baseAddress,
                                                        token_id: tP.baseAddress,
                                                        domain_names: nP.baseAddress,
                                                        step: sP
                                                    )
                                                    return vtable.pointee.consume(instance, &c, err)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls `body` with the block's step column (ABI version 2): NULL when the block has no
    /// steps, and never NULL when it has them, even for zero tokens (an empty array may have no
    /// base address). Plugins of version 1 never read it.
    private func withStepPointer<R>(_ step: [UInt32]?, _ body: (UnsafePointer<UInt32>?) -> R) -> R {
        guard let step else { return body(nil) }
        if step.isEmpty { return withUnsafePointer(to: UInt32.max) { body($0) } }
        return step.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        guard o.vtable == vtable else {
            throw RoutingError.incompatibleMerge("'\(name)' from \(library) cannot merge '\(o.name)' from \(o.library)")
        }
        try call("merge") { vtable.pointee.merge(instance, o.instance, $0) }
    }

    func finish() throws -> AnalyzerReport {
        var out: UnsafeMutablePointer<CChar>? = nil
        try call("finish") { vtable.pointee.finish(instance, &out, $0) }
        guard let out else { throw RoutingError.analyzerFailed(name: name, message: "finish returned no report") }
        let text = String(cString: out)
        vtable.pointee.free_string(out)
        do {
            return try AnalyzerReport(reportValue: ReportValue.parse(json: text))
        } catch {
            throw RoutingError.analyzerFailed(name: name, message: "its report is not valid: \(error)")
        }
    }
}
