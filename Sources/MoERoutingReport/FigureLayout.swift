// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// Groups a report's figures for drawing: consecutive heatmaps that look alike share one colour
/// scale, so they can be compared; a run of ``minimumRun`` or more becomes one grid of small
/// multiples with a single legend. Every other figure stands alone.
///
/// Heatmaps look alike when they have the same number of rows and columns, the same row and
/// column labels, and the same axis titles once every run of digits is masked ("top-1 expert at
/// layer 3" and "... layer 4" match). Nothing depends on which analyzer made the figures.
///
/// ```swift
/// FigureLayout.blocks(report.figures)   // [.multiples([31 heatmaps]), .single(pooled), .single(lines), ...]
/// FigureLayout.blocks([usageCode, usageMath, bars])   // [.alike([usageCode, usageMath]), .single(bars)]
/// ```
enum FigureLayout {
    /// One drawing unit of a section.
    enum Block: Equatable {
        /// A figure on its own.
        case single(ReportFigure)
        /// Two or more (fewer than ``minimumRun``) alike heatmaps, drawn full size on one scale.
        case alike([ReportFigure.Heatmap])
        /// A grid of small multiples on one scale.
        case multiples([ReportFigure.Heatmap])
    }

    /// Runs of at least this many alike heatmaps become small multiples.
    static let minimumRun = 4

    static func blocks(_ figures: [ReportFigure], minimumRun: Int = minimumRun) -> [Block] {
        var out: [Block] = []
        var run: [ReportFigure.Heatmap] = []
        func flush() {
            if run.count >= minimumRun {
                out.append(.multiples(run))
            } else if run.count > 1 {
                out.append(.alike(run))
            } else if let only = run.first {
                out.append(.single(.heatmap(only)))
            }
            run = []
        }
        for figure in figures {
            if case .heatmap(let h) = figure {
                if let first = run.first, !alike(first, h) { flush() }
                run.append(h)
            } else {
                flush()
                out.append(.single(figure))
            }
        }
        flush()
        return out
    }

    /// Whether two heatmaps belong in one grid of small multiples.
    static func alike(_ a: ReportFigure.Heatmap, _ b: ReportFigure.Heatmap) -> Bool {
        a.values.count == b.values.count
            && (a.values.map(\.count).max() ?? 0) == (b.values.map(\.count).max() ?? 0)
            && a.rowLabels == b.rowLabels && a.columnLabels == b.columnLabels
            && maskDigits(a.xLabel) == maskDigits(b.xLabel) && maskDigits(a.yLabel) == maskDigits(b.yLabel)
    }

    /// `s` with every run of ASCII digits replaced by "#".
    static func maskDigits(_ s: String) -> String {
        var out = ""
        var inDigits = false
        for c in s {
            if c.isASCII && c.isNumber {
                if !inDigits { out += "#" }
                inDigits = true
            } else {
                out.append(c)
                inDigits = false
            }
        }
        return out
    }
}
