// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import ArgumentParser
public import MoERouting
public import MoERoutingTraces

/// `--shape` or `--layers/--experts/--top-k`: the model shape a JSONL trace must follow.
struct ShapeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A named model shape: \(ModelShape.presets.keys.sorted().joined(separator: ", ")).",
            valueName: "preset"
        )
    )
    var shape: String?

    @Option(help: "MoE layer count L (with --experts and --top-k).")
    var layers: Int?

    @Option(help: "Experts per layer E.")
    var experts: Int?

    @Option(help: "Experts each token selects per layer k.")
    var topK: Int?

    func validate() throws { _ = try statedShape() }

    /// The shape the user stated, or nil to infer it.
    func statedShape() throws -> ModelShape? {
        do {
            return try ModelShape.stated(preset: shape, layers: layers, experts: experts, topK: topK)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Options for reading traces.
struct ReadOptions: ParsableArguments {
    @OptionGroup var shape: ShapeOptions

    @Flag(help: "Skip bad records and report how many of each kind were skipped, instead of stopping at the first.")
    var lenient = false

    @Option(help: ArgumentHelp("Domain label for records that carry no dataset field.", valueName: "label"))
    var domain: String?

    @Flag(
        help:
            "JSONL traces whose problems' records interleave (a per-engine-step dump): hold every problem in memory until the end, two to three times the trace's .moetrace size, instead of one problem at a time."
    )
    var interleaved = false

    @Option(
        help: ArgumentHelp(
            "JSONL token positions: as-written (token_idx/token_pos/token_id), or by-order: the n-th record of a (problem, layer) in file order is token n, for the seed's raw per-step capture whose token_pos restarts every step (docs/trace-format.md).",
            valueName: "as-written|by-order"
        )
    )
    var positions: TracePositions = .asWritten

    func traceOptions() throws -> TraceReadOptions {
        TraceReadOptions(
            shape: try shape.statedShape(),
            lenient: lenient,
            defaultDomain: domain,
            interleavedProblems: interleaved,
            positions: positions
        )
    }
}

extension TracePositions: ExpressibleByArgument {}
extension PhaseSelection: ExpressibleByArgument {}

/// `--phase prefill|decode|all`: which tokens a command analyzes.
struct PhaseOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Tokens to keep by phase: prefill (prompt), decode (generated) or all. JSONL records without a 'phase' field are decode tokens.",
            valueName: "prefill|decode|all"
        )
    )
    var phase: PhaseSelection = .all

}
