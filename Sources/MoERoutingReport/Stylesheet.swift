// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The report's inline CSS: page layout, tables, and the classes the SVG charts use. System fonts
/// only (no web fonts), so the file needs no network.
enum Stylesheet {
    /// Chart rules, also embedded in standalone SVGs (``HTMLReport/svg(for:)``).
    static let svg = """
        svg.chart{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;overflow:visible}
        svg.chart .tk{font-size:11px;fill:#57606a}
        svg.chart .tk.sm{font-size:9.5px}
        svg.chart .ax{font-size:12px;font-weight:600;fill:#24292f}
        svg.chart .ax.sm{font-size:10px;font-weight:500}
        svg.chart .lg{font-size:11.5px}
        svg.chart .cv{font-size:10px;fill:#1f2328}
        svg.chart .cv.lt{fill:#fff}
        svg.chart .vl{font-size:10px;fill:#57606a}
        svg.chart .grid{stroke:#eaeef2;stroke-width:1}
        svg.chart .axis{stroke:#8c959f;stroke-width:1}
        svg.chart .zero{stroke:#57606a;stroke-width:1}
        svg.chart .frame{fill:none;stroke:#d0d7de;stroke-width:1}
        svg.chart .series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
        svg.chart .series.dashed{stroke-width:1.6;stroke-dasharray:6 4}
        svg.chart .pt{stroke:#fff;stroke-width:1}
        svg.chart .pt.hollow{fill:#fff;stroke-width:1.4}
        svg.chart .band{fill-opacity:.18;stroke:none}
        svg.chart .err{stroke-width:1.3;fill:none}
        svg.chart .ref{stroke:#1f2328;stroke-width:2.2}
        svg.chart .raster{image-rendering:pixelated;image-rendering:crisp-edges}
        svg.chart .cells rect:hover,svg.chart .bar:hover,svg.chart .pt:hover{stroke:#111;stroke-width:1.5}
        """

    /// The whole page's CSS.
    static let page = """
        :root{color-scheme:light}
        *{box-sizing:border-box}
        body{margin:0;background:#f6f8fa;color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
        header{background:#24292f;color:#fff;padding:22px 32px 16px}
        header h1{margin:0;font-size:24px;font-weight:650}
        header .subtitle{margin:4px 0 0;color:#d0d7de}
        header nav{margin-top:12px;display:flex;flex-wrap:wrap;gap:6px}
        header nav a{color:#fff;text-decoration:none;background:#3a424b;border-radius:12px;padding:2px 10px;font-size:13px}
        header nav a.failed{background:#8c2b2b}
        main{max-width:1360px;margin:0 auto;padding:20px 32px 40px}
        section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 22px 20px;margin:0 0 20px}
        section h2{margin:0 0 12px;font-size:19px}
        section h2 .name{font-weight:400;color:#57606a;font-size:13px;margin-left:8px;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
        h3{font-size:15px;margin:18px 0 8px}
        table{border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{padding:4px 10px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
        th{background:#f6f8fa;font-weight:600;border-bottom:1px solid #d0d7de;white-space:nowrap}
        td.num,th.num{text-align:right;white-space:nowrap}
        caption{text-align:left;font-weight:600;padding:0 0 6px;caption-side:top}
        .tablewrap{overflow-x:auto;margin:14px 0}
        table.summary{width:100%}
        table.summary td.value{font-weight:650;text-align:right;white-space:nowrap}
        table.summary td.ref{color:#57606a}
        table.summary tr.first td{border-top:1px solid #d0d7de}
        table.summary td.analyzer{white-space:nowrap}
        table.summary td.analyzer a{color:#0969da;text-decoration:none;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}
        .stats{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 12px}
        .stat{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:150px;background:#f6f8fa}
        .stat b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
        .stat span{color:#57606a;font-size:12.5px}
        .stat.warn{border-color:#d4a72c;background:#fff8c5}
        table.kv th{background:none;border:none;color:#57606a;font-weight:500;text-align:right}
        table.kv td{border:none;word-break:break-word}
        section.failures{border-color:#cf222e;background:#fff5f5}
        section.failures h2{color:#a40e26}
        section.notices{border-color:#d4a72c;background:#fff8c5;font-weight:600}
        section.notices p{margin:4px 0}
        .empty{color:#57606a;font-style:italic}
        .figures{display:flex;flex-wrap:wrap;gap:18px 32px;align-items:flex-start;margin:8px 0;overflow-x:auto}
        figure{margin:0;width:min-content;min-width:340px}
        figure>figcaption{font-weight:600;margin:0 0 6px}
        figure svg{display:block}
        figure.multiples{flex-basis:100%;width:auto}
        .alike{display:grid;grid-auto-flow:column;grid-template-rows:auto auto;grid-auto-columns:min-content;gap:0 32px}
        .alike>figure{display:contents}
        .alike>figure>figcaption{min-width:300px;align-self:end}
        figcaption .meta,figure.multiples .axes{font-weight:400;color:#57606a}
        .omitted{flex-basis:100%}
        .moe-tip{position:fixed;display:none;pointer-events:none;z-index:9;background:#24292f;color:#fff;font-size:12px;padding:3px 8px;border-radius:4px;white-space:nowrap}
        .panels{display:flex;flex-wrap:wrap;gap:14px 18px;margin-top:8px}
        .panel{width:min-content;max-width:100%}
        .panel>svg{max-width:none}
        .panel .ptitle{font-size:11.5px;color:#24292f;margin:0 0 2px;line-height:1.3}
        ul.notes{margin:12px 0 0;padding-left:20px;color:#3d444d}
        ul.notes li{margin:3px 0}
        details>summary{cursor:pointer;font-weight:600;margin:10px 0}
        footer{max-width:1360px;margin:0 auto;padding:0 32px 32px;color:#57606a;font-size:12.5px}
        @media print{body{background:#fff}section{break-inside:avoid-page;border:none}header{background:#fff;color:#000}}
        """
}
