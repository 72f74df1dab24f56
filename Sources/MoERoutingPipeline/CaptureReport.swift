// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
public import MoERouting
public import MoERoutingTraces
public import VLLMCapture

/// The capture's own report section: routing's share of MoE layer time per layer (with
/// `--timing`) and the router's entropy and k/(k+1) margin per layer (with `--router-logits`).
/// `nil` when neither was collected.
public enum CaptureReport {
    /// Per-layer timing sums, from a capture summary or from a binary trace's timing chunks, and
    /// where the per-step figures can be found (for the section's note).
    public struct Timing: Sendable {
        /// The per-layer sums.
        public var totals: TraceTimingTotals
        /// Where the per-step figures are, for the section's note.
        public var perStepSource: String

        /// Sums with the place of their per-step figures.
        public init(totals: TraceTimingTotals, perStepSource: String) {
            self.totals = totals
            self.perStepSource = perStepSource
        }

        /// Sums over several traces (layers beyond the shortest are dropped).
        public static func merged(_ parts: [TraceTimingTotals]) -> Timing? {
            guard var total = parts.first else { return nil }
            for t in parts.dropFirst() { total.merge(t) }
            return Timing(totals: total, perStepSource: "the trace's layer-timings chunks (docs/trace-format.md)")
        }

        /// `routing share of MoE time per layer: 0.112 0.098 ... (all layers 0.105)`.
        public var inspectLine: String {
            let routing = totals.routingNanoseconds.reduce(0, &+)
            let moe = totals.moeNanoseconds.reduce(0, &+)
            let all = moe > 0 ? CaptureReport.fixed(Double(routing) / Double(moe)) : "n/a"
            return "routing share of MoE time per layer: "
                + totals.routingShare.map { CaptureReport.fixed($0) }.joined(separator: " ")
                + " (all layers \(all), \(totals.steps) steps)"
        }
    }

    /// The section from a capture summary (`collect`, `run`).
    public static func make(_ summary: CaptureSummary) -> AnalyzerReport? {
        make(
            timing: summary.timing.map { Timing(totals: $0, perStepSource: "timings.jsonl beside the trace") },
            routerLogits: summary.routerLogits
        )
    }

    /// The section from timings alone (`analyze` of a trace with layer-timings chunks).
    public static func make(timing: Timing) -> AnalyzerReport? {
        make(timing: timing, routerLogits: nil)
    }

    /// `x` with `d` decimals, "n/a" when not finite.
    public static func fixed(_ x: Double, _ d: Int = 3) -> String {
        x.isFinite ? ReportFormat.fixed(x, d) : "n/a"
    }

    private static func make(timing: Timing?, routerLogits: RouterLogitStatistics?) -> AnalyzerReport? {
        guard timing != nil || routerLogits != nil else { return nil }
        var json: [ReportValue.Member] = []
        var tables: [ReportTable] = []
        var figures: [ReportFigure] = []
        var headlines: [AnalyzerReport.Headline] = []
        var notes: [String] = []
        func f(_ x: Double, _ d: Int = 3) -> String { fixed(x, d) }
        if let timing {
            let t = timing.totals
            json.append(.init("timing", t.reportValue))
            let share = t.routingShare
            let layers = share.indices.map(String.init)
            figures.append(
                .bars(
                    .init(
                        title: "Routing's share of MoE layer time, per layer (select_experts / whole MoE layer)",
                        xLabel: "MoE layer",
                        yLabel: "share of MoE time",
                        labels: layers,
                        values: share
                    )
                )
            )
            tables.append(
                ReportTable(
                    title: "Time per MoE layer over \(t.steps) steps (\(t.rows) rows)",
                    columns: ["layer", "routing ms", "MoE layer ms", "routing share"],
                    rows: share.indices.map { l in
                        [
                            layers[l], f(Double(t.routingNanoseconds[l]) / 1e6), f(Double(t.moeNanoseconds[l]) / 1e6),
                            f(share[l]),
                        ]
                    }
                )
            )
            let routing = t.routingNanoseconds.reduce(0, &+)
            let moe = t.moeNanoseconds.reduce(0, &+)
            if moe > 0 {
                headlines.append(
                    .init(
                        label: "routing's share of MoE time (all layers)",
                        value: f(Double(routing) / Double(moe)),
                        reference: "\(f(Double(moe) / 1e6, 1)) ms of MoE time"
                    )
                )
            }
            notes.append(
                "Wall time per layer call with the device synchronised around it; per-step figures are in \(timing.perStepSource)."
            )
        }
        if let r = routerLogits {
            json.append(.init("router_logits", r.reportValue))
            let n = r.rows.count
            let entropy = (0..<n).map { r.rows[$0] > 0 ? r.entropySum[$0] / Double(r.rows[$0]) : .nan }
            let margin = (0..<n).map { r.rows[$0] > 0 ? r.marginSum[$0] / Double(r.rows[$0]) : .nan }
            figures += decisivenessFigures(entropy: entropy, margin: margin)
            tables.append(
                ReportTable(
                    title: "Router distribution per layer",
                    columns: ["layer", "rows", "mean entropy (nats)", "mean k/(k+1) margin"],
                    rows: (0..<n).map { ["\($0)", "\(r.rows[$0])", f(entropy[$0]), f(margin[$0], 4)] }
                )
            )
            notes.append(
                "A small k/(k+1) margin means near-ties: the selected set could flip with small numeric changes (dtype, kernels)."
            )
        }
        return AnalyzerReport(
            analyzer: "capture",
            title: "Capture: routing time and router decisiveness",
            json: .object(json),
            tables: tables,
            figures: figures,
            headlines: headlines,
            notes: notes
        )
    }

    /// The router's decisiveness per layer as two line charts, one unit per axis: the mean
    /// entropy of the softmax over all experts (nats, 0...ln E), and the mean margin between the
    /// k-th and (k+1)-th probability (a probability, 0...1). NaN where a layer saw no rows.
    public static func decisivenessFigures(entropy: [Double], margin: [Double]) -> [ReportFigure] {
        let x = (0..<max(entropy.count, margin.count)).map(Double.init)
        return [
            .lines(
                .init(
                    title: "Router entropy per layer (mean over rows)",
                    xLabel: "MoE layer",
                    yLabel: "entropy (nats)",
                    x: x,
                    series: [.init(name: "entropy of the softmax over all experts (nats)", values: entropy)]
                )
            ),
            .lines(
                .init(
                    title: "Router k/(k+1) margin per layer (mean over rows)",
                    xLabel: "MoE layer",
                    yLabel: "probability margin",
                    x: x,
                    series: [.init(name: "margin between the k-th and (k+1)-th probability", values: margin)]
                )
            ),
        ]
    }
}
