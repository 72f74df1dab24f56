// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `moe-routing` command-line tool: a thin layer over the libraries. Each subcommand lives in
// its own file as an extension of the root command.

import ArgumentParser
import Foundation

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
        subcommands: [
            Run.self, Collect.self, Inspect.self, Convert.self, Analyze.self, Demo.self, Setup.self, Doctor.self,
        ]
    )

    /// The exit code of a usage error (an unknown option, a missing or malformed value, a value
    /// out of range): 2, as for other command-line tools, instead of ArgumentParser's 64.
    static let usageExitCode: Int32 = 2

    /// Parses and runs a subcommand like ArgumentParser's own `main()`, with one change: usage
    /// errors exit with ``usageExitCode``.
    static func main() {
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(usageExitCode)
        }
    }
}
