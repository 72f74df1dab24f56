// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The library example (examples/capture-and-analyze): the built program runs a capture end to
// end on the tiny model and writes what `moe-routing run` writes, and the README shows its code.

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct CaptureAndAnalyzeExampleTests {
    /// The built example, beside the `moe-routing` binary.
    static let examplePath = (toolPath as NSString).deletingLastPathComponent + "/capture-and-analyze-example"

    static let mainSwift = packageRoot.appendingPathComponent("examples/capture-and-analyze/main.swift")

    @Test(.enabled(if: venvReady, "needs the project venv (scripts/setup-python.sh)"))
    func theExampleCapturesAnalyzesAndWritesTheRun() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.examplePath), "\(Self.examplePath) is not built")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try tool([dir.path], timeout: 600, executable: Self.examplePath)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("trace: \(dir.path)/trace.moetrace ("), "\(r.stdout)")

        // The trace: the tiny model's shape, two problems from each built-in dataset, 16 new
        // tokens each, closed normally.
        let reader = try BinaryTraceReader(path: dir.appendingPathComponent("trace.moetrace").path)
        #expect(reader.shape.layers == 4)
        var problems = Set<String>()
        var tokens = 0
        while let b = try reader.nextBlock() {
            tokens += b.tokenCount
            for t in 0..<b.tokenCount { problems.insert("\(b.domainName(token: t))/\(b.problemID[t])") }
        }
        #expect(reader.closure.name == "closed")
        #expect(problems.count == 4, "\(problems)")
        #expect(Set(problems.map { $0.split(separator: "/")[0] }) == ["humaneval", "gsm8k"])
        let outputs = try String(contentsOf: dir.appendingPathComponent("outputs.jsonl"), encoding: .utf8)
        #expect(outputs.split(separator: "\n").count == 4)
        let longestPrompt =
            try outputs.split(separator: "\n").map {
                try ReportValue.parse(json: String($0))["prompt_token_ids"]?.arrayValue?.count ?? 0
            }.max() ?? 0

        // report.json: one member per analyzer asked for, the live counts matching the trace.
        let report = try ReportValue.parse(
            json: String(contentsOf: dir.appendingPathComponent("report.json"), encoding: .utf8)
        )
        #expect(report.objectMembers?.map(\.key) == ["summary", "transition", "multihop", "domain"])
        #expect(report["summary"]?["tokens"] == .int(tokens))
        #expect(report["domain"]?["domains"]?.arrayValue?.count == 2)

        // run.json: the facts of the run.
        let run = try ReportValue.parse(
            json: String(contentsOf: dir.appendingPathComponent("run.json"), encoding: .utf8)
        )
        #expect(run["trace"] == .string(dir.appendingPathComponent("trace.moetrace").path))
        #expect(run["inputs"] == .array([.string(dir.appendingPathComponent("trace.moetrace").path)]))
        #expect(run["tokens"] == .int(tokens))
        #expect(run["shape"]?["layers"] == .int(4))
        #expect(run["settings"]?["capture.problems"] == .string("4"))
        #expect(run["settings"]?["engine.max_tokens"] == .string("16"))
        // No --max-model-len: the longest prompt plus the new tokens (below the model's 2048).
        #expect(run["settings"]?["capture.max_model_len"] == .string(String(longestPrompt + 16)))
        #expect(run["settings"]?["capture.max_model_len_source"] == .string("prompts"))
        #expect(run["settings"]?["capture.model_length_limit"] == .string("2048"))
        #expect(run["settings"]?["capture.dtype"] == .string("float32"))
        #expect(
            r.stderr.contains(
                "dtype float32 (asked: float32), max model length \(longestPrompt + 16) (what the prompts need; the model allows 2048)"
            ),
            "\(r.stderr)"
        )
        #expect(run["capture"] != nil)
        #expect(run["failures"] == .array([]))
        for f in ["report.html", "report.md", "report.txt"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f)")
        }
    }

    /// The README's "Use it as a library" snippet is the example's code, line for line.
    @Test func theReadmeShowsTheExamplesCode() throws {
        let source = try String(contentsOf: Self.mainSwift, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let start = try #require(lines.firstIndex(of: "// MARK: - Use it as a library"))
        let end = try #require(lines.firstIndex(of: "// MARK: - End of the snippet"))
        let snippet = lines[(start + 1)..<end].filter { !$0.isEmpty }
        #expect(snippet.count >= 5)

        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(
            readme.range(of: "## Use it as a library"),
            "README.md has no \"Use it as a library\" section"
        )
        let after = readme[section.upperBound...]
        let open = try #require(after.range(of: "```swift\n"))
        let close = try #require(after[open.upperBound...].range(of: "```"))
        let block = after[open.upperBound..<close.lowerBound].split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let found = block.indices.contains { i in Array(block[i...].prefix(snippet.count)) == Array(snippet) }
        #expect(
            found,
            "README.md's snippet differs from examples/capture-and-analyze/main.swift:\n\(snippet.joined(separator: "\n"))"
        )
    }
}
