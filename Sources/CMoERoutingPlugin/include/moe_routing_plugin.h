// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// The C entry point of a speculative-moe analyzer plugin (a shared library).
//
// A plugin library exports one function, `moe_routing_plugin_entry`, returning a table of the
// analyzers it provides. The host (`moe-routing analyze --plugin libX.so`) loads the library
// with dlopen, calls the entry point once, checks `abi_version`, and from then on talks to each
// analyzer only through the function pointers below. Nothing but C types crosses the boundary,
// so a plugin may be written in Swift (see MoERoutingPlugins' PluginExporter), C, C++ or Rust,
// and may be built by another compiler version than the host.
//
// Memory rules: every pointer in a moe_routing_block is valid only during the `consume` call.
// Strings a plugin returns through `char **` are freed by the host with the plugin's own
// `free_string`. All calls to one instance come from one thread at a time.
//
// Return codes: 0 on success; non-zero on failure, with `*error` set to a message (or NULL).
//
// ABI versions. Version 2 appended `step` as the last member of moe_routing_block; every other
// offset is unchanged. Structs only grow at the end, and a plugin never reads past the struct it
// was built against, so:
//   - a host of version 2 loads plugins of versions 1 and 2 (MOE_ROUTING_PLUGIN_MIN_ABI_VERSION
//     ... MOE_ROUTING_PLUGIN_ABI_VERSION); a version-1 plugin simply never reads `step`;
//   - a version-2 plugin must not be loaded by a version-1 host (which would hand it a block
//     without `step`); a version-1 host refuses every version but 1, so this holds;
//   - a host refuses any version outside its range, naming the library and the versions it loads.

#ifndef MOE_ROUTING_PLUGIN_H
#define MOE_ROUTING_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The ABI version this header describes; a plugin built against it declares this version.
#define MOE_ROUTING_PLUGIN_ABI_VERSION 2u

/// The oldest plugin ABI version a host built against this header still loads.
#define MOE_ROUTING_PLUGIN_MIN_ABI_VERSION 1u

/// The name of the symbol every plugin library exports.
#define MOE_ROUTING_PLUGIN_ENTRY_SYMBOL "moe_routing_plugin_entry"

/// A columnar block of token journeys, borrowed for one `consume` call.
/// Layout of ids/weights: token-major, [token_count][layers][top_k]; present: [token_count][layers].
typedef struct moe_routing_block {
    int32_t layers;                 ///< L
    int32_t experts;                ///< E
    int32_t top_k;                  ///< k
    int32_t domain_count;           ///< number of names in domain_names
    int64_t token_count;            ///< T
    const uint16_t *ids;            ///< expert ids, ordered by weight within a cell
    const float *weights;           ///< gating weights
    const uint8_t *present;         ///< 1 where the (token, layer) cell was routed
    const uint16_t *domain;         ///< per token: index into domain_names
    const int64_t *problem_id;      ///< per token
    const int32_t *position;        ///< per token
    const uint8_t *phase;           ///< per token: 0 prefill, 1 decode
    const int32_t *token_id;        ///< per token: vocabulary id, -1 unknown
    const char *const *domain_names;///< UTF-8, NUL-terminated
    // Added in ABI version 2; keep new members after this one.
    const uint32_t *step;           ///< per token: engine step, UINT32_MAX unknown; NULL when the block has no steps
} moe_routing_block;

/// One analyzer a plugin provides.
typedef struct moe_routing_analyzer_vtable {
    const char *name;               ///< registry name, e.g. "token-histogram"
    const char *summary;            ///< one line
    const void *userdata;           ///< passed to create
    void *(*create)(const void *userdata);
    void (*destroy)(void *instance);
    /// context_json: {"shape":{"layers":L,"experts":E,"top_k":k,"name":...},"settings":{...},"seed":N}
    /// where N, the analysis seed, is a JSON integer from 0 to 2^64-1 (parse it as uint64_t, not as a double)
    int32_t (*begin)(void *instance, const char *context_json, char **error);
    int32_t (*consume)(void *instance, const moe_routing_block *block, char **error);
    /// Merge `other` (an instance made by the same vtable) into `instance`.
    int32_t (*merge)(void *instance, void *other, char **error);
    /// On success *report_json holds the report (see docs/plugins.md for its schema).
    int32_t (*finish)(void *instance, char **report_json, char **error);
    void (*free_string)(char *string);
} moe_routing_analyzer_vtable;

/// What the entry point returns.
typedef struct moe_routing_plugin {
    uint32_t abi_version;           ///< MOE_ROUTING_PLUGIN_ABI_VERSION
    int32_t analyzer_count;
    const moe_routing_analyzer_vtable *analyzers;
} moe_routing_plugin;

/// The entry point's type.
typedef const moe_routing_plugin *(*moe_routing_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
