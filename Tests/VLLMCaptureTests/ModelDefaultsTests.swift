// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing
import VLLMCapture

/// Defaults that come from the model: on a model with fewer positions than the old fixed
/// `--max-model-len 2048` (the tiny model with `max_position_embeddings` 256, as a new user
/// would try one), `collect` starts without being told a length and takes the model's limit; a
/// length over the limit is refused in one line naming both numbers; and the dtype the engine
/// chose is said on standard error and kept in the trace header.
@Suite(
    .enabled(
        if: CaptureTestEnvironment.vllmAvailable || ToolProcess.requiredByCI,
        "needs the project venv with vLLM (scripts/setup-python.sh)"
    )
)
struct ModelDefaultsTests {
    /// A copy of the tiny model that allows 256 positions (RoPE: no weight depends on it).
    static let shortModel: Result<String, any Error> = Result {
        let source = try CaptureTestEnvironment.tinyModel.get()
        let dir = try CaptureTestEnvironment.temporaryDirectory("short-model") + "/tiny-256"
        try FileManager.default.copyItem(atPath: source, toPath: dir)
        let configPath = dir + "/config.json"
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
        let edited = config.replacingOccurrences(
            of: "\"max_position_embeddings\": 2048",
            with: "\"max_position_embeddings\": 256"
        )
        guard edited != config else {
            throw CaptureError.invalidOption("the tiny model's config has no 2048 positions")
        }
        try edited.write(toFile: configPath, atomically: true, encoding: .utf8)
        return dir
    }

    @Test func theDefaultLengthFitsASmallModelAndAnOverLongOneIsRefused() throws {
        try #require(
            CaptureTestEnvironment.vllmAvailable,
            "vLLM is not installed in the venv (CI=true: this test must run)"
        )
        try #require(ToolProcess.isBuilt, "\(ToolProcess.path) is not built (swift build --build-tests)")
        let model = try Self.shortModel.get()
        let dir = try CaptureTestEnvironment.temporaryDirectory("model-defaults")
        let trace = dir + "/trace.moetrace"

        // Over the limit: one line naming both numbers, before vLLM starts, no trace.
        let refused = try ToolProcess.run(
            [
                "collect", "--model", model, "--num-problems", "1", "--max-model-len", "4096", "--output",
                dir + "/x.moetrace",
            ],
            timeout: 300
        )
        #expect(refused.status != 0)
        let errorLines = refused.stderr.split(separator: "\n").filter { $0.contains("Error") || $0.contains("error") }
        #expect(errorLines.count == 1, "\(refused.stderr)")
        #expect(
            errorLines.first?.contains("--max-model-len 4096 is over the model's limit of 256 positions") == true,
            "\(refused.stderr)"
        )
        #expect(!refused.stderr.contains("ValidationError"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.moetrace"))

        // No --max-model-len, prompts plus 200 new tokens need more than 256: the model's limit,
        // and generation stops there. --dtype auto on the CPU: vLLM's choice is said and kept.
        let r = try ToolProcess.run(
            [
                "collect", "--model", model, "--num-problems", "1", "--max-tokens", "200", "--no-progress", "--output",
                trace,
            ],
            timeout: 600
        )
        #expect(r.status == 0, "\(r.stderr)")
        let reader = try BinaryTraceReader(path: trace)
        let settings = reader.header.settings
        #expect(settings["capture.max_model_len"] == "256", "\(settings)")
        #expect(settings["capture.max_model_len_source"] == "model")
        #expect(settings["capture.model_length_limit"] == "256")
        #expect(settings["engine.dtype"] == "auto")
        let chosen = try #require(settings["capture.dtype"])
        #expect(["bfloat16", "float32", "float16"].contains(chosen), "\(chosen)")
        #expect(
            r.stderr.contains("dtype \(chosen) (asked: auto), max model length 256 (the model's own limit)"),
            "\(r.stderr)"
        )
        var longest = 0
        var tokens = [String: Int]()
        while let b = try reader.nextBlock() {
            for t in 0..<b.tokenCount {
                longest = max(longest, Int(b.position[t]) + 1)
                tokens["\(b.domainName(token: t))/\(b.problemID[t])", default: 0] += 1
            }
        }
        #expect(longest <= 256, "no position at or past the model's limit")
        #expect(!tokens.isEmpty)
    }
}
