// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import CAnalysisKernels
import Testing

@testable import MultiHopAnalyzer

/// The C kernels (`CAnalysisKernels`) against the portable Swift loop they replace, at every
/// instruction-set level this CPU runs: the same five rates on random masks of 1 to 9 words,
/// with absent tokens, equal sets and shared top-1s, at chunk lengths around the vector width.
/// A level above the CPU's must be refused (and leave the caller's loop to run).
struct AnalysisKernelTests {
    /// A chunk of one layer pair: top-1 ids (-1 absent) and token-major set masks.
    struct Chunk {
        var sourceTop: [Int32], targetTop: [Int32], sourceMasks: [UInt64], targetMasks: [UInt64]
    }

    /// `count` tokens with top-`k` sets out of `experts`; about 1 in 10 absent at each layer,
    /// a third of the target sets copied from the source (equal sets, same top-1).
    static func chunk(count: Int, experts: Int, topK k: Int, seed: UInt64) -> Chunk {
        var rng = SeededRandom(seed: seed)
        let words = (experts + 63) / 64
        var c = Chunk(
            sourceTop: [Int32](repeating: -1, count: count),
            targetTop: [Int32](repeating: -1, count: count),
            sourceMasks: [UInt64](repeating: 0, count: count * words),
            targetMasks: [UInt64](repeating: 0, count: count * words)
        )
        func set() -> [Int] {
            var members: [Int] = []
            while members.count < k {
                let e = rng.nextIndex(below: experts)
                if !members.contains(e) { members.append(e) }
            }
            return members
        }
        for i in 0..<count {
            let source = set()
            let target = rng.nextIndex(below: 3) == 0 ? source : set()
            if rng.nextIndex(below: 10) != 0 {
                c.sourceTop[i] = Int32(source[0])
                for e in source { c.sourceMasks[i * words + e / 64] |= 1 << UInt64(e % 64) }
            }
            if rng.nextIndex(below: 10) != 0 {
                c.targetTop[i] = Int32(target[0])
                for e in target { c.targetMasks[i * words + e / 64] |= 1 << UInt64(e % 64) }
            }
        }
        return c
    }

    /// The C kernel's rates at `level`, or nil where it refuses.
    static func kernel(_ c: Chunk, words: Int, topK: Int, level: Int32) -> moe_mask_pair_rates? {
        var out = moe_mask_pair_rates(pairs: -7, overlap: -7, any: -7, same: -7, same_top1: -7)
        let ran = moe_mask_pair_rates_compute(
            c.sourceTop,
            c.sourceMasks,
            c.targetTop,
            c.targetMasks,
            Int64(c.sourceTop.count),
            Int64(words),
            Int64(topK),
            level,
            &out
        )
        return ran != 0 ? out : nil
    }

    @Test func everySupportedLevelCountsWhatTheSwiftLoopCounts() {
        let supported = moe_kernel_level_supported()
        #expect(supported == hardwareKernelLevel)
        #if arch(x86_64)
        // Every x86-64 CPU of the last fifteen years has popcnt.
        #expect(supported >= MOE_KERNEL_LEVEL_POPCNT)
        #endif
        let shapes: [(experts: Int, topK: Int)] = [
            (8, 2), (64, 8), (100, 3), (128, 8), (128, 1), (256, 8), (384, 8), (576, 4),
        ]
        var checked = 0
        for (s, shape) in shapes.enumerated() {
            let words = (shape.experts + 63) / 64
            for count in [0, 1, 7, 8, 9, 31, 1024] {
                let c = Self.chunk(
                    count: count,
                    experts: shape.experts,
                    topK: shape.topK,
                    seed: UInt64(100 * s + count)
                )
                let swift = c.sourceTop.withUnsafeBufferPointer { st in
                    c.targetTop.withUnsafeBufferPointer { tt in
                        c.sourceMasks.withUnsafeBufferPointer { sm in
                            c.targetMasks.withUnsafeBufferPointer { tm in
                                // A dummy word keeps the base addresses non-nil for count 0.
                                maskPairRates(
                                    sourceTop: st.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                    sourceMasks: sm.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                    targetTop: tt.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                    targetMasks: tm.baseAddress ?? UnsafePointer(bitPattern: 8)!,
                                    count: count,
                                    maskWords: words,
                                    topK: shape.topK
                                )
                            }
                        }
                    }
                }
                if count == 1024 {
                    // The chunk is not trivial: every rate is counted and below the pair count.
                    #expect(swift.pairs > 700 && swift.same > 100 && swift.sameTop1 >= swift.same)
                    if shape.topK == 1 {
                        // One expert per set: any overlap is the whole set, and it is the top-1.
                        #expect(swift.any == swift.same && swift.overlap == swift.any && swift.sameTop1 == swift.same)
                    } else {
                        #expect(swift.any > swift.same && swift.overlap > swift.any)
                    }
                }
                let levels = [
                    MOE_KERNEL_LEVEL_PORTABLE, MOE_KERNEL_LEVEL_POPCNT, MOE_KERNEL_LEVEL_AVX2,
                    MOE_KERNEL_LEVEL_AVX512_POPCOUNT,
                ]
                for level in levels {
                    let rates = Self.kernel(c, words: words, topK: shape.topK, level: Int32(level))
                    if level == MOE_KERNEL_LEVEL_PORTABLE || level > supported {
                        #expect(rates == nil, "level \(level) above the CPU's \(supported) must be refused")
                        continue
                    }
                    guard let r = rates else {
                        Issue.record("level \(level) refused though the CPU supports \(supported)")
                        continue
                    }
                    let label = "E=\(shape.experts) k=\(shape.topK) n=\(count) level \(level)"
                    #expect(Int(r.pairs) == swift.pairs, "\(label)")
                    #expect(Int(r.overlap) == swift.overlap, "\(label)")
                    #expect(Int(r.any) == swift.any, "\(label)")
                    #expect(Int(r.same) == swift.same, "\(label)")
                    #expect(Int(r.same_top1) == swift.sameTop1, "\(label)")
                    checked += 1
                }
            }
        }
        #expect(checked == shapes.count * 7 * Int(supported))
    }
}
