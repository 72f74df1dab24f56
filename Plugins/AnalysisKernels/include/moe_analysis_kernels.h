// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// Vector kernels for the analyzers' hottest loops, in C because Swift cannot compile one
// function for an instruction set the rest of the build does not assume.
//
// The package builds for baseline x86-64 (no `popcnt`, no AVX), so every kernel here is
// compiled for its instruction set with a `target` attribute and chosen at run time from what
// the CPU and the operating system support (CPUID and XGETBV). A caller asks
// `moe_kernel_level_supported()` once and passes a level to each kernel; a level the CPU
// lacks is never run. On other architectures the best level is MOE_KERNEL_LEVEL_PORTABLE and
// the caller keeps its own loop.
//
// Nothing here allocates, keeps state between calls, or touches Python.

#ifndef MOE_ANALYSIS_KERNELS_H
#define MOE_ANALYSIS_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels of the kernels, in increasing order.
enum {
    /// No kernel here: the caller runs its own portable loop.
    MOE_KERNEL_LEVEL_PORTABLE = 0,
    /// x86-64 with the `popcnt` instruction (x86-64-v2 and later).
    MOE_KERNEL_LEVEL_POPCNT = 1,
    /// x86-64 with `popcnt` and AVX2, enabled by the operating system (x86-64-v3: Haswell,
    /// Zen and later).
    MOE_KERNEL_LEVEL_AVX2 = 2,
    /// x86-64 with AVX2, AVX-512 F and VPOPCNTDQ, enabled by the operating system (Ice Lake,
    /// Zen 4 and later).
    MOE_KERNEL_LEVEL_AVX512_POPCOUNT = 3,
};

/// The highest level this CPU and operating system run; the same value on every call.
int32_t moe_kernel_level_supported(void);

/// The rates of one layer pair (l, j) over a chunk of tokens, from each token's top-1 expert at
/// both layers and its top-k set bitmasks at both layers.
typedef struct {
    /// Tokens present at both layers (both top-1 values >= 0).
    int64_t pairs;
    /// The sum over tokens of |set(l) ∩ set(j)|.
    int64_t overlap;
    /// Tokens whose sets intersect.
    int64_t any;
    /// Tokens whose sets are equal (an intersection of `top_k` members).
    int64_t same;
    /// Tokens present at both layers with the same top-1 id.
    int64_t same_top1;
} moe_mask_pair_rates;

/// Computes the rates of one layer pair at `level` and returns 1, or returns 0 and writes
/// nothing when `level` is MOE_KERNEL_LEVEL_PORTABLE or above `moe_kernel_level_supported()`.
///
/// `source_top` and `target_top` hold `count` top-1 ids (-1: the token is absent at that
/// layer); `source_masks` and `target_masks` hold `count * mask_words` words, token-major, bit
/// `e % 64` of word `e / 64` set for each member `e` of the token's top-k set, all zero for an
/// absent token.
int32_t moe_mask_pair_rates_compute(
    const int32_t *source_top,
    const uint64_t *source_masks,
    const int32_t *target_top,
    const uint64_t *target_masks,
    int64_t count,
    int64_t mask_words,
    int64_t top_k,
    int32_t level,
    moe_mask_pair_rates *out
);

/// Asks the CPU to bring the cache line at `address` in, to be written soon (a hint: it never
/// faults, whatever the address, and does nothing where the CPU has no such instruction).
static inline void moe_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#ifdef __cplusplus
}
#endif

#endif
