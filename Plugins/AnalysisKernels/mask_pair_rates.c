// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// The summarised layer pairs' rates (the multihop analyzer's loop over every layer pair that
// keeps no count tables) with hardware population counts, for one- and two-word masks
// (E <= 128): AVX-512 VPOPCNTDQ eight tokens a step, or AVX2 four tokens a step (a nibble
// lookup table per byte, summed per word); the scalar `popcnt` instruction otherwise.
// Each level counts exactly what the portable Swift loop counts (KernelPathTests and
// AnalysisKernelTests compare them).

#include "moe_analysis_kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define MOE_KERNELS_X86 1
#else
#define MOE_KERNELS_X86 0
#endif

// MARK: - CPU features

#if MOE_KERNELS_X86
static int32_t detect_level(void) {
    unsigned int a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) { return MOE_KERNEL_LEVEL_PORTABLE; }
    if (!(c & bit_POPCNT)) { return MOE_KERNEL_LEVEL_PORTABLE; }
    int32_t level = MOE_KERNEL_LEVEL_POPCNT;
    int osxsave = (c & bit_OSXSAVE) != 0;
    int avx = (c & bit_AVX) != 0;
    if (!osxsave || !avx || __get_cpuid_max(0, 0) < 7) { return level; }
    // The operating system must save the XMM and YMM state components (XCR0 bits 1 and 2) for
    // AVX2, and the opmask and both ZMM components too (bits 5, 6, 7) for AVX-512, or their
    // instructions fault.
    unsigned int xcr0 = 0, xcr0_high = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    (void)xcr0_high;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b & (1u << 5)) != 0;
    if (!avx2 || (xcr0 & 0x6u) != 0x6u) { return level; }
    level = MOE_KERNEL_LEVEL_AVX2;
    int avx512f = (b & (1u << 16)) != 0;
    int vpopcntdq = (c & (1u << 14)) != 0;
    if (avx512f && vpopcntdq && (xcr0 & 0xE6u) == 0xE6u) { level = MOE_KERNEL_LEVEL_AVX512_POPCOUNT; }
    return level;
}
#endif

int32_t moe_kernel_level_supported(void) {
#if MOE_KERNELS_X86
    // Detection is idempotent, so a race only repeats it.
    static int32_t cached = -1;
    int32_t level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level < 0) {
        level = detect_level();
        __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    }
    return level;
#else
    return MOE_KERNEL_LEVEL_PORTABLE;
#endif
}

// MARK: - Kernels

#if MOE_KERNELS_X86
#define MOE_POPCNT __attribute__((target("popcnt")))
#define MOE_AVX2 __attribute__((target("avx2,popcnt")))
#define MOE_AVX512 __attribute__((target("avx512f,avx512vpopcntdq,popcnt")))

/// One token's contribution, with the overlap size `ov` already counted.
#define MOE_ADD_TOKEN(a, b, ov)                                                                  \
    do {                                                                                         \
        int64_t both_ = ((a) | (b)) >= 0;                                                        \
        r.pairs += both_;                                                                        \
        r.overlap += (ov);                                                                       \
        r.any += (ov) > 0;                                                                       \
        r.same += (ov) == top_k;                                                                 \
        r.same_top1 += ((a) == (b)) & both_;                                                     \
    } while (0)

/// Tokens `first ..< count` with the scalar `popcnt` instruction; `MW` a constant where the
/// caller inlines it.
static inline __attribute__((always_inline)) MOE_POPCNT moe_mask_pair_rates scalar_range(
    const int32_t *st,
    const uint64_t *sm,
    const int32_t *tt,
    const uint64_t *tm,
    int64_t first,
    int64_t count,
    int64_t mw,
    int64_t top_k,
    moe_mask_pair_rates r
) {
    for (int64_t i = first; i < count; i++) {
        const uint64_t *x = sm + i * mw;
        const uint64_t *y = tm + i * mw;
        int64_t ov = 0;
        for (int64_t w = 0; w < mw; w++) { ov += __builtin_popcountll(x[w] & y[w]); }
        MOE_ADD_TOKEN(st[i], tt[i], ov);
    }
    return r;
}

static MOE_POPCNT moe_mask_pair_rates rates_popcnt(
    const int32_t *st,
    const uint64_t *sm,
    const int32_t *tt,
    const uint64_t *tm,
    int64_t n,
    int64_t mw,
    int64_t top_k
) {
    moe_mask_pair_rates r = {0, 0, 0, 0, 0};
    switch (mw) {
    case 1: return scalar_range(st, sm, tt, tm, 0, n, 1, top_k, r);
    case 2: return scalar_range(st, sm, tt, tm, 0, n, 2, top_k, r);
    case 4: return scalar_range(st, sm, tt, tm, 0, n, 4, top_k, r);
    default: return scalar_range(st, sm, tt, tm, 0, n, mw, top_k, r);
    }
}

/// The set bits of each 64-bit lane of `v`: a 4-bit lookup per nibble, summed per byte, then
/// per lane (`vpsadbw` against zero).
static inline __attribute__((always_inline)) MOE_AVX2 __m256i popcount_lanes_avx2(__m256i v) {
    const __m256i table = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4
    );
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i low = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble));
    __m256i high = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
    return _mm256_sad_epu8(_mm256_add_epi8(low, high), _mm256_setzero_si256());
}

/// Four tokens a step, one per 64-bit lane. For two-word masks the two vectors of word counts
/// (tokens i, i + 1, then i + 2, i + 3, word 0 and word 1 alternating) are interleaved into
/// word-0 and word-1 counts of tokens i, i + 2, i + 1, i + 3 and added: the lanes' order
/// differs from the tokens', which the sums do not see.
static MOE_AVX2 moe_mask_pair_rates rates_avx2(
    const int32_t *st,
    const uint64_t *sm,
    const int32_t *tt,
    const uint64_t *tm,
    int64_t n,
    int64_t mw,
    int64_t top_k
) {
    if (mw != 1 && mw != 2) { return rates_popcnt(st, sm, tt, tm, n, mw, top_k); }
    const __m256i zero = _mm256_setzero_si256();
    const __m256i k = _mm256_set1_epi64x(top_k);
    const __m128i minus_one = _mm_set1_epi32(-1);
    __m256i overlap = zero;
    moe_mask_pair_rates r = {0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i ov;
        if (mw == 1) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(sm + i));
            __m256i y = _mm256_loadu_si256((const __m256i *)(tm + i));
            ov = popcount_lanes_avx2(_mm256_and_si256(x, y));
        } else {
            const uint64_t *x = sm + 2 * i;
            const uint64_t *y = tm + 2 * i;
            __m256i c0 = popcount_lanes_avx2(_mm256_and_si256(
                _mm256_loadu_si256((const __m256i *)x), _mm256_loadu_si256((const __m256i *)y)
            ));
            __m256i c1 = popcount_lanes_avx2(_mm256_and_si256(
                _mm256_loadu_si256((const __m256i *)(x + 4)), _mm256_loadu_si256((const __m256i *)(y + 4))
            ));
            ov = _mm256_add_epi64(_mm256_unpacklo_epi64(c0, c1), _mm256_unpackhi_epi64(c0, c1));
        }
        overlap = _mm256_add_epi64(overlap, ov);
        int any = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(ov, zero)));
        int same = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(ov, k)));
        __m128i a = _mm_loadu_si128((const __m128i *)(st + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(tt + i));
        __m128i both = _mm_cmpgt_epi32(_mm_or_si128(a, b), minus_one);
        __m128i top1 = _mm_and_si128(_mm_cmpeq_epi32(a, b), both);
        r.pairs += __builtin_popcount((unsigned int)_mm_movemask_ps(_mm_castsi128_ps(both)));
        r.any += __builtin_popcount((unsigned int)any);
        r.same += __builtin_popcount((unsigned int)same);
        r.same_top1 += __builtin_popcount((unsigned int)_mm_movemask_ps(_mm_castsi128_ps(top1)));
    }
    __m128i sum = _mm_add_epi64(_mm256_castsi256_si128(overlap), _mm256_extracti128_si256(overlap, 1));
    r.overlap = _mm_cvtsi128_si64(sum) + _mm_extract_epi64(sum, 1);
    if (mw == 1) { return scalar_range(st, sm, tt, tm, i, n, 1, top_k, r); }
    return scalar_range(st, sm, tt, tm, i, n, 2, top_k, r);
}

/// Eight tokens a step, one per 64-bit lane. For two-word masks the two vectors of word counts
/// (tokens i ..< i + 4, then i + 4 ..< i + 8, word 0 and word 1 alternating) are split into the
/// eight tokens' word-0 counts (even lanes) and word-1 counts (odd lanes), then added.
static MOE_AVX512 moe_mask_pair_rates rates_avx512(
    const int32_t *st,
    const uint64_t *sm,
    const int32_t *tt,
    const uint64_t *tm,
    int64_t n,
    int64_t mw,
    int64_t top_k
) {
    if (mw != 1 && mw != 2) { return rates_popcnt(st, sm, tt, tm, n, mw, top_k); }
    const __m512i zero = _mm512_setzero_si512();
    const __m512i k = _mm512_set1_epi64(top_k);
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    __m512i overlap = zero;
    moe_mask_pair_rates r = {0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512i ov;
        if (mw == 1) {
            ov = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(sm + i), _mm512_loadu_si512(tm + i)));
        } else {
            const uint64_t *x = sm + 2 * i;
            const uint64_t *y = tm + 2 * i;
            __m512i c0 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(x), _mm512_loadu_si512(y)));
            __m512i c1 =
                _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(x + 8), _mm512_loadu_si512(y + 8)));
            ov = _mm512_add_epi64(_mm512_permutex2var_epi64(c0, even, c1), _mm512_permutex2var_epi64(c0, odd, c1));
        }
        overlap = _mm512_add_epi64(overlap, ov);
        __mmask8 any = _mm512_test_epi64_mask(ov, ov);
        __mmask8 same = _mm512_cmpeq_epi64_mask(ov, k);
        __m512i a = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(st + i)));
        __m512i b = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(tt + i)));
        __mmask8 both = _mm512_cmpge_epi64_mask(_mm512_or_si512(a, b), zero);
        __mmask8 top1 = _mm512_mask_cmpeq_epi64_mask(both, a, b);
        r.pairs += __builtin_popcount((unsigned int)both);
        r.any += __builtin_popcount((unsigned int)any);
        r.same += __builtin_popcount((unsigned int)same);
        r.same_top1 += __builtin_popcount((unsigned int)top1);
    }
    r.overlap = _mm512_reduce_add_epi64(overlap);
    if (mw == 1) { return scalar_range(st, sm, tt, tm, i, n, 1, top_k, r); }
    return scalar_range(st, sm, tt, tm, i, n, 2, top_k, r);
}
#endif

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
) {
    if (level <= MOE_KERNEL_LEVEL_PORTABLE || level > moe_kernel_level_supported() || mask_words < 1) { return 0; }
#if MOE_KERNELS_X86
    if (count <= 0) {
        *out = (moe_mask_pair_rates){0, 0, 0, 0, 0};
        return 1;
    }
    if (level >= MOE_KERNEL_LEVEL_AVX512_POPCOUNT) {
        *out = rates_avx512(source_top, source_masks, target_top, target_masks, count, mask_words, top_k);
    } else if (level >= MOE_KERNEL_LEVEL_AVX2) {
        *out = rates_avx2(source_top, source_masks, target_top, target_masks, count, mask_words, top_k);
    } else {
        *out = rates_popcnt(source_top, source_masks, target_top, target_masks, count, mask_words, top_k);
    }
    return 1;
#else
    (void)source_top, (void)source_masks, (void)target_top, (void)target_masks, (void)count, (void)top_k, (void)out;
    return 0;
#endif
}
