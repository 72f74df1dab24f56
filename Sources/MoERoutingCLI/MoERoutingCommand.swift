// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `moe-routing` command-line tool: a thin layer over the libraries. Each subcommand lives in
// its own file as an extension of the root command.

import ArgumentParser

@main
struct MoERoutingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moe-routing",
        abstract: "Capture and analyze Mixture-of-Experts routing decisions.",
        discussion: """
            Reads routing traces (seed JSONL, the binary .moetrace format, NumPy .npz), converts \
            between them, and runs analyzer plugins that measure how routing chains across layers.

            Examples:
              moe-routing inspect ../shared/data/mixtral_gsm8k_2problems_routing.jsonl
              moe-routing analyze ../shared/data/mixtral_*_routing.jsonl --output report/
              moe-routing convert trace.jsonl trace.moetrace
            """,
        version: "0.1.0",
        subcommands: [Run.self, Collect.self, Inspect.self, Convert.self, Analyze.self, Demo.self, Setup.self, Doctor.self]
    )
}
