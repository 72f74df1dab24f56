// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Renders an ``AnalysisResult`` as one self-contained HTML page: inline CSS and inline SVG
/// charts, no scripts, fonts or images loaded from anywhere, readable in any browser offline.
///
/// The page opens on a summary table of every report's headline figures beside what they
/// should be compared with (chance, baselines), then the run's statistics (tokens, records,
/// complete and incomplete journeys) and run facts, then the analyzers that failed, if any, then
/// one `<section>` per report (`id` = the analyzer's name) with its title, figures, tables and
/// notes. Figures are drawn generically from ``ReportFigure``, so a plugin's figures get a
/// section like any built-in analyzer's:
///
/// - heatmaps: viridis colour scale with a legend, labelled axes, every cell's value in a tooltip,
///   non-finite cells hatched; consecutive alike heatmaps (same size, labels and axis titles up
///   to numbers) share one colour scale, and four or more become a grid of small multiples with
///   one legend; a heatmap over 4,096 cells (or a grid over 16,384) is embedded as a compressed
///   palette PNG `data:` image, one pixel per cell in 255 colour levels, instead of one rectangle
///   per cell; expert × expert matrices over 16 experts are drawn in usage order (``HeatmapOrder``),
///   stated on the chart; all heatmaps share a page budget (3.5 MB): over it, grids draw every s-th
///   panel and a table summarises each heatmap left out;
/// - line charts: ticks, grid, one line per series (dashed for `dashed` series), a point with a
///   tooltip at each value, a legend;
/// - bar charts: vertical bars, or horizontal ones when labels are long; `highlighted` bars in an
///   accent colour with a legend.
///
/// Text from analyzers and plugins is escaped everywhere, and the output is deterministic: the
/// same result gives the same bytes.
///
/// ```swift
/// let html = HTMLReport.render(result, title: "MoE routing report", subtitle: "mixtral, 2 traces")
/// try html.write(toFile: "out/report.html", atomically: true, encoding: .utf8)
/// ```
public enum HTMLReport {
    /// The whole HTML document.
    ///
    /// - Parameters:
    ///   - result: The reports, failures and statistics of one analysis run.
    ///   - title: The page's heading and `<title>`.
    ///   - subtitle: An optional line under the heading (inputs, model, date), shown as given.
    /// - Returns: A UTF-8 HTML5 document.
    /// - Complexity: O(total figure cells + table cells).
    public static func render(
        _ result: AnalysisResult,
        title: String = "MoE routing report",
        subtitle: String? = nil
    ) -> String {
        var page = ReportPage()
        return page.document(result, title: title, subtitle: subtitle)
    }

    /// One figure as a standalone SVG document (with its own `<style>`), for embedding elsewhere.
    /// Heatmaps are drawn at full size with their own legend.
    ///
    /// ```swift
    /// try HTMLReport.svg(for: report.figures[0]).write(toFile: "fig.svg", atomically: true, encoding: .utf8)
    /// ```
    public static func svg(for figure: ReportFigure) -> String {
        var ids = IDAllocator()
        switch figure {
        case .heatmap(let h): return HeatmapChart(h, size: .full).svg(scale: nil, ids: &ids, standalone: true)
        case .lines(let c): return LineChartView(chart: c).svg(standalone: true)
        case .bars(let b): return BarChartView(chart: b).svg(standalone: true)
        }
    }
}
