// speculative-moe example plugin
// SPDX-License-Identifier: Apache-2.0

// The shared library's C entry point: `moe-routing analyze --plugin libExpertLoadPlugin.so`
// finds `moe_routing_plugin_entry` with dlsym and reads the analyzers it exports.

import ExpertLoad
import MoERoutingPlugins

private let plugin = PluginExporter.export([
    .init(name: "expert-load", summary: ExpertLoadAnalyzer.summary) { ExpertLoadAnalyzer() }
])

/// The plugin entry point (see `moe_routing_plugin.h`).
@_cdecl("moe_routing_plugin_entry")
public func moeRoutingPluginEntry() -> UnsafeRawPointer { plugin.table }
