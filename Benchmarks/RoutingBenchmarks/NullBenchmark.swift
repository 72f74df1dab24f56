// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import ArgumentParser
import Foundation
import MoERoutingTestKit

/// The `null` suite's options.
struct NullBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "null",
        abstract: "Cost of the MI shuffled null (ContingencyTable.shuffledNull) by table size and tokens per cell."
    )
    @Option(parsing: .upToNextOption, help: "Experts per layer (the table is E x E).")
    var experts: [Int] = [128, 256, 384]
    @Option(parsing: .upToNextOption, help: "Tokens per cell of the table.")
    var perCell: [Double] = [0.5, 1, 2, 4, 8, 32, 128]
    @Option(help: "Replicates per null.")
    var replicates = 20
    @Option(help: "Skew of the row and column shares (share of rank i proportional to 1/i^skew).")
    var skew = 0.5

    func validate() throws {
        guard experts.allSatisfy({ (2...1024).contains($0) }) else {
            throw ValidationError("--experts needs integers in 2...1024, got \(experts)")
        }
        guard perCell.allSatisfy({ $0 > 0 && $0 <= 1024 }) else {
            throw ValidationError("--per-cell needs numbers in (0, 1024], got \(perCell)")
        }
        guard replicates > 0 else { throw ValidationError("--replicates needs a positive integer, got \(replicates)") }
        guard skew >= 0 && skew <= 4 else { throw ValidationError("--skew needs a number in [0, 4], got \(skew)") }
    }

    func run() throws { runNullBenchmark(self) }
}

/// Times one null per configuration: `shuffledNull` as the analyzers call it (the method it
/// picks), the moments alone, and the drawn replicates alone (`shuffledNullValues`, whichever
/// sampler `.automatic` takes), each on one core. The tables are independent, with routing-like
/// skewed margins, drawn once per configuration (not timed).
func runNullBenchmark(_ options: NullBenchmark) {
    print("E      per cell  tokens      method      shuffledNull ms  moments ms  replicates ms")
    for e in options.experts {
        for perCell in options.perCell {
            let tokens = Int(perCell * Double(e * e))
            let table = SyntheticContingency.independentTable(
                experts: e,
                tokens: tokens,
                skew: options.skew,
                seed: UInt64(e)
            )
            let clock = ContinuousClock()
            var picked = table.shuffledNull(replicates: options.replicates, seed: 1)
            let chosen = clock.measure { picked = table.shuffledNull(replicates: options.replicates, seed: 1) }
            var moments = picked
            let momentsTime = clock.measure { moments = table.permutationNullMoments() }
            var values: [Double] = []
            let replicatesTime = clock.measure {
                values = table.shuffledNullValues(replicates: options.replicates, seed: 1)
            }
            precondition(moments.mean.isFinite && values.count == options.replicates)
            func ms(_ d: Duration) -> String { String(format: "%.2f", durationSeconds(d) * 1000) }
            let columns = [
                String(e).padding(toLength: 7, withPad: " ", startingAt: 0),
                String(perCell).padding(toLength: 10, withPad: " ", startingAt: 0),
                String(tokens).padding(toLength: 12, withPad: " ", startingAt: 0),
                picked.method.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0),
                ms(chosen).padding(toLength: 17, withPad: " ", startingAt: 0),
                ms(momentsTime).padding(toLength: 12, withPad: " ", startingAt: 0),
                ms(replicatesTime),
            ]
            print(columns.joined())
            flushStandardOutput()
        }
    }
}
