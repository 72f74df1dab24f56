// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import MoERoutingPipeline

/// `--pairs l:j,...`: the layer pairs the multihop analyzer keeps in full (count tables, exact
/// MI and null, d-hop prediction) beside the adjacent ones, shared by analyze, run and demo.
struct PairsOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Layer pairs the multihop analyzer keeps in full beside the adjacent ones (0-based MoE layers, l < j), e.g. 0:5,3:10.",
            valueName: "l:j,..."
        )
    )
    var pairs: String?

    /// The parsed pairs (empty without the option).
    func layerPairs() throws -> [(earlier: Int, later: Int)] {
        guard let pairs else { return [] }
        do {
            return try BuiltinAnalyzers.parseLayerPairs(pairs)
        } catch {
            throw ValidationError("--pairs: \(error)")
        }
    }

    /// Checks the pairs against a known number of MoE layers.
    func check(layers: Int) throws {
        for p in try layerPairs() where p.later >= layers {
            throw ValidationError(
                "--pairs: pair '\(p.earlier):\(p.later)' is out of range: the model has \(layers) MoE layers (0...\(layers - 1))"
            )
        }
    }

    func validate() throws { _ = try layerPairs() }
}
