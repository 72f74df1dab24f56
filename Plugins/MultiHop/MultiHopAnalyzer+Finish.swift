// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// MultiHopAnalyzer+Finish: hands the counts to the report builder.

import AnalysisSupport
public import MoERouting

extension MultiHopAnalyzer {
    public func finish() throws -> AnalyzerReport {
        guard let ctx = context else { return MultiHopReportBuilder.emptyReport(name: name) }
        flushPaths()
        let kept = sample.finalized()
        var windows: [MultiHopReportBuilder.WindowCounts] = []
        // Complete tokens' windows counted apart: 4 layers as they are, 3 and 2 layers (ending
        // at layer 3 or later) as their marginals over the first layers.
        var windowDense = Array(windowDense)
        if !windowComplete4.isEmpty {
            let e2 = experts * experts
            let e3 = e2 * experts
            for code in windowComplete4.indices where windowComplete4[code] > 0 {
                let x = windowComplete4[code]
                windowDense[windowOffset[2] + code] += x
                windowDense[windowOffset[1] + code % e3] += x
                windowDense[windowOffset[0] + code % e2] += x
            }
        }
        for (wi, w) in Self.windowLengths.enumerated() where w <= layers {
            var entries: [(code: UInt64, count: Int)] = []
            if windowOverflowed[wi] {
                windows.append(sampledWindows(kept, length: w))
                continue
            }
            if windowOffset[wi] >= 0 {
                let size = Self.product(Array(repeating: experts, count: w)) ?? 0
                let off = windowOffset[wi]
                for code in 0..<size where windowDense[off + code] > 0 {
                    entries.append((UInt64(code), windowDense[off + code]))
                }
            } else {
                entries = windowSparse[wi].map { ($0.key, $0.value) }
            }
            windows.append(
                MultiHopReportBuilder.WindowCounts(
                    length: w,
                    dense: windowOffset[wi] >= 0,
                    entries: entries,
                    starts: Array(windowStarts[(wi * layers)..<((wi + 1) * layers)])
                )
            )
        }
        return MultiHopReportBuilder(
            shape: ctx.shape,
            seed: ctx.seed,
            folds: folds,
            maxOrder: maxOrder,
            effectiveMaxOrder: effectiveMaxOrder,
            nullReplicates: nullReplicates,
            tokens: tokens,
            records: records,
            completeTokens: completeTokens,
            problems: problems,
            pairStats: Array(pairStats),
            pairCounts: pairCounts,
            pairSlot: pairSlot,
            pairTop1Same: Array(pairTop1Same),
            detailed: detailed,
            droppedDetail: droppedDetail,
            sample: kept,
            layerTop1: Array(layerTop1),
            pathCounts: pathCounts,
            orderOffset: Array(orderOffset),
            windows: windows,
            bitsPerID: bitsPerID,
            distinctFullPaths: fullPaths.distinct,
            fullPathEntropy: fullPaths.entropyBits,
            fullPathsOverflowed: fullPaths.overflowed,
            fullPathCapacity: fullPathCapacity
        ).build()
    }

    /// The windows of one length over the sampled tokens (for a length whose dictionary
    /// overflowed), packed like the sparse table.
    func sampledWindows(_ kept: TokenSample, length w: Int) -> MultiHopReportBuilder.WindowCounts {
        var counts: [UInt64: Int] = [:]
        var starts = [Int](repeating: 0, count: layers)
        let bits = UInt64(bitsPerID)
        for i in 0..<kept.count {
            for start in 0...(layers - w) {
                var key: UInt64 = 0
                var ok = true
                for l in start..<(start + w) {
                    guard let x = kept.top1(i, l) else {
                        ok = false
                        break
                    }
                    key = (key << bits) | UInt64(x)
                }
                guard ok else { continue }
                counts[key, default: 0] += 1
                starts[start] += 1
            }
        }
        return MultiHopReportBuilder.WindowCounts(
            length: w,
            dense: false,
            entries: counts.map { ($0.key, $0.value) },
            starts: starts,
            sampledTokens: kept.count
        )
    }
}
