// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

/// The package root, found from this file's path.
let packageRoot: URL =
    TestPaths.packageRoot(from: #filePath) ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)

/// ../shared/data, when present.
let sharedData: URL? = {
    let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    return FileManager.default.fileExists(
        atPath: url.appendingPathComponent("mixtral_gsm8k_2problems_routing.jsonl").path
    ) ? url : nil
}()

let humaneval = sharedData?.appendingPathComponent("mixtral_humaneval_2problems_routing.jsonl").path ?? ""
let gsm8k = sharedData?.appendingPathComponent("mixtral_gsm8k_2problems_routing.jsonl").path ?? ""

/// The built `moe-routing` binary, beside the test bundle.
let toolPath: String = {
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [bundleDir, bundleDir.deletingLastPathComponent()].map {
        $0.appendingPathComponent("moe-routing").path
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

struct ToolResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the tool (or another built program, `executable`) with arguments in the package root;
/// never hangs longer than `timeout` seconds.
func tool(_ arguments: [String], timeout: TimeInterval = 300, executable: String = toolPath) throws -> ToolResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.currentDirectoryURL = packageRoot
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    // Drain pipes on background threads so a large output cannot block the child.
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        outData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    group.wait()
    return ToolResult(
        status: p.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self)
    )
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("moe-routing-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

struct CLITests {
    @Test(arguments: ["inspect", "convert", "analyze", "demo", "setup", "doctor"])
    func everyCommandHasHelpWithExamples(command: String) throws {
        let r = try tool([command, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE"))
        if ["inspect", "convert", "analyze", "demo"].contains(command) { #expect(r.stdout.contains("Example")) }
    }

    @Test(.enabled(if: sharedData != nil, "needs ../shared/data"))
    func inspectCountsTheSharedTraces() throws {
        let r = try tool(["inspect", humaneval, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try ReportValue.parse(json: r.stdout)
        #expect(v["records"] == .int(10779))
        #expect(v["shape"]?["layers"] == .int(32))
        #expect(v["shape"]?["experts"] == .int(8))
        #expect(v["shape"]?["top_k"] == .int(2))
        #expect(v["shape_inferred"] == .bool(true))
        #expect(v["domains"]?[0]?["name"] == .string("humaneval"))
        #expect(v["domains"]?[0]?["problems"] == .int(2))
        // Tokens and complete journeys, counted independently from the raw lines.
        let lines = try String(contentsOfFile: humaneval, encoding: .utf8).split(separator: "\n")
        var layersPerToken: [String: Int] = [:]
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            layersPerToken["\(o["problem_id"]!)/\(o["token_idx"]!)", default: 0] += 1
        }
        #expect(v["tokens"]?.intValue == layersPerToken.count)
        #expect(v["complete_journeys"]?.intValue == layersPerToken.values.filter { $0 == 32 }.count)
        #expect(v["incomplete_journeys"]?.intValue == layersPerToken.values.filter { $0 < 32 }.count)
        #expect(v["incomplete_journeys"]!.intValue! > 0)

        let text = try tool(["inspect", humaneval, gsm8k])
        #expect(text.status == 0)
        #expect(text.stdout.contains("gsm8k") && text.stdout.contains("humaneval"))
        #expect(text.stdout.contains("18668"))  // 10779 + 7889 records
    }

    @Test(.enabled(if: sharedData != nil, "needs ../shared/data"))
    func analyzeBothSharedTracesAsJSON() throws {
        let dir = try temporaryDirectory()
        let r = try tool([
            "analyze", humaneval, gsm8k, "--analyzer", "transition", "multihop", "domain", "--format", "json",
            "--output", dir.path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try ReportValue.parse(json: r.stdout)
        #expect(v.objectMembers?.map(\.key) == ["transition", "multihop", "domain", "input"])
        #expect(v["transition"]?["layers"]?.arrayValue?.count == 31)
        #expect(v["multihop"]?["distances"]?.arrayValue?.count == 31)
        #expect(v["domain"]?["layers"]?.arrayValue?.count == 32)
        // Real Mixtral routing sits at chance on same-id rates (science.md).
        let top1 = v["transition"]?["pooled"]?["top1_same"]?.doubleValue ?? -1
        #expect(abs(top1 - 0.125) < 0.02)
        for f in ["report.json", "report.md", "report.txt", "run.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f)")
        }
        let written = try ReportValue.parse(
            json: String(contentsOf: dir.appendingPathComponent("report.json"), encoding: .utf8)
        )
        #expect(written == v)
        // Deterministic: a second run prints the same bytes.
        let again = try tool([
            "analyze", humaneval, gsm8k, "--analyzer", "transition", "multihop", "domain", "--format", "json",
        ])
        #expect(again.stdout == r.stdout)
    }

    @Test func badInputGivesOneLineNamingFileAndLine() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("bad.jsonl").path
        let good = #"{"dataset":"d","problem_id":0,"layer":0,"experts":[1,0],"gating_probs":[0.6,0.4],"token_idx":0}"#
        let bad = #"{"dataset":"d","problem_id":0,"layer":1,"experts":[9,0],"gating_probs":[0.6,0.4],"token_idx":0}"#
        try (good + "\n" + bad + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try tool(["inspect", path, "--experts", "8", "--layers", "2", "--top-k", "2"])
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("bad.jsonl:2"))
        #expect(r.stderr.contains("9"))

        let lenient = try tool([
            "inspect", path, "--experts", "8", "--layers", "2", "--top-k", "2", "--lenient", "--format", "json",
        ])
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(lenient.stderr.contains("skipped 1"))
        let v = try ReportValue.parse(json: lenient.stdout)
        #expect(v["records"] == .int(1))
        #expect(v["skipped_records"]?["expert_out_of_range"] == .int(1))

        let missing = try tool(["inspect", dir.appendingPathComponent("nope.jsonl").path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.jsonl"))
    }

    @Test func unknownAnalyzerAndBadOptionsAreRefused() throws {
        let r = try tool(["analyze", "x.jsonl", "--analyzer", "nope"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("unknown analyzer 'nope'"))
        #expect(r.stderr.contains("transition"))
        let s = try tool(["inspect", "x.jsonl", "--layers", "4"])
        #expect(s.status != 0)
        #expect(s.stderr.contains("go together"))
    }

    @Test func demoThenConvertRoundTrips() throws {
        let dir = try temporaryDirectory()
        let demo = try tool([
            "demo", "--output", dir.path, "--problems", "3", "--tokens", "40", "--shape", "tiny-mixtral",
        ])
        #expect(demo.status == 0, "\(demo.stderr)")
        let trace = dir.appendingPathComponent("demo.moetrace").path
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report.md").path))
        let jsonl = dir.appendingPathComponent("demo.jsonl").path
        let npz = dir.appendingPathComponent("demo.npz").path
        let back = dir.appendingPathComponent("back.moetrace").path
        #expect(try tool(["convert", trace, jsonl]).status == 0)
        #expect(try tool(["convert", jsonl, back, "--shape", "tiny-mixtral"]).status == 0)
        #expect(try tool(["convert", back, npz]).status == 0)
        #expect(FileManager.default.fileExists(atPath: npz))
        let a = try tool(["analyze", trace, "--format", "json"])
        let b = try tool(["analyze", back, "--format", "json"])
        #expect(a.status == 0 && b.status == 0)
        #expect(a.stdout == b.stdout)
        let i = try ReportValue.parse(json: try tool(["inspect", back, "--format", "json"]).stdout)
        #expect(i["tokens"] == .int(2 * 3 * 40))
    }
}

/// Whether the project venv (MOE_ROUTING_VENV, else .venv) has been set up; under CI=true or
/// MOE_ROUTING_REQUIRE_PYTHON=1 always true, so the tests that need it fail instead of skipping.
let venvReady: Bool = {
    let configured = ProcessInfo.processInfo.environment["MOE_ROUTING_VENV"].flatMap { $0.isEmpty ? nil : $0 }
    let venv = configured ?? packageRoot.appendingPathComponent(".venv").path
    if FileManager.default.fileExists(atPath: venv + "/bin/python") { return true }
    return TestRequirements.unavailable(
        "the CLI capture tests need the project venv",
        because: "\(venv)/bin/python does not exist"
    )
}()

struct RunCommandTests {
    @Test(.enabled(if: venvReady, "needs the project venv (scripts/setup-python.sh)"))
    func runWithNoModelWritesTraceAndReportsWithTimings() throws {
        let dir = try temporaryDirectory()
        let r = try tool(
            ["run", "--output", dir.path, "--max-tokens", "24", "--timing", "--format", "json"],
            timeout: 600
        )
        #expect(r.status == 0, "\(r.stderr)")
        let v = try ReportValue.parse(json: r.stdout)
        #expect(v.objectMembers?.map(\.key) == ["summary", "transition", "multihop", "domain", "capture"])
        #expect(v["domain"]?["domains"]?.arrayValue?.count == 2)
        let shares =
            v["capture"]?["timing"]?["layers"]?.arrayValue?.compactMap { $0["routing_share"]?.doubleValue } ?? []
        #expect(shares.count == 4)
        #expect(shares.allSatisfy { $0 > 0 && $0 < 1 })
        for f in ["trace.moetrace", "outputs.jsonl", "timings.jsonl", "report.html", "report.md", "report.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f)")
        }
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("id=\"capture\""))
        #expect(html.contains("Routing&#39;s share") || html.contains("Routing's share"))
        // The trace reads back with the same token count the live analyzers saw.
        let i = try ReportValue.parse(
            json: try tool(["inspect", dir.appendingPathComponent("trace.moetrace").path, "--format", "json"]).stdout
        )
        #expect(i["tokens"] == v["summary"]?["tokens"])
        #expect(i["incomplete_journeys"] == .int(0))
    }
}

/// Capture under vLLM's graph compilation (`collect --compile`): routing arrives through the
/// custom op instead of the eager hook, and must be the routing of eager mode.
struct CompiledCaptureTests {
    @Test(.enabled(if: venvReady, "needs the project venv (scripts/setup-python.sh)"))
    func collectUnderGraphCompilationMatchesEagerMode() throws {
        let dir = try temporaryDirectory()
        let common = ["collect", "--num-problems", "2", "--max-tokens", "12", "--dtype", "float32", "--no-progress"]
        let eager = try tool(common + ["--output", dir.appendingPathComponent("eager.moetrace").path], timeout: 600)
        #expect(eager.status == 0, "\(eager.stderr)")
        let compiled = try tool(
            common + ["--compile", "--output", dir.appendingPathComponent("compiled.moetrace").path],
            timeout: 900
        )
        #expect(compiled.status == 0, "\(compiled.stderr)")
        let timingRefused = try tool(
            common + ["--compile", "--timing", "--output", dir.appendingPathComponent("x.moetrace").path]
        )
        #expect(timingRefused.status != 0)
        #expect(timingRefused.stderr.contains("--timing needs eager mode"))

        func blocks(_ name: String) throws -> [String: RoutingBlock] {
            let reader = try BinaryTraceReader(path: dir.appendingPathComponent(name).path)
            var out: [String: RoutingBlock] = [:]
            while let b = try reader.nextBlock() {
                guard let first = b.problemID.first else { continue }
                out["\(b.domainName(token: 0))/\(first)"] = b
            }
            return out
        }
        let a = try blocks("eager.moetrace")
        let b = try blocks("compiled.moetrace")
        #expect(a.count == 4, "two problems of each built-in dataset")
        #expect(Set(a.keys) == Set(b.keys))
        var cells = 0
        var sameSets = 0
        var maxWeightDifference: Float = 0
        for (key, x) in a {
            guard let y = b[key] else { continue }
            #expect(x.position == y.position && x.tokenID == y.tokenID, "\(key): same tokens")
            #expect(y.present.allSatisfy { $0 }, "\(key): every layer of every token under compilation")
            #expect(y.step != nil, "\(key): steps recorded")
            guard x.tokenCount == y.tokenCount else { continue }
            let L = x.shape.layers
            let k = x.shape.topK
            for t in 0..<x.tokenCount {
                for l in 0..<L where x.isPresent(token: t, layer: l) && y.isPresent(token: t, layer: l) {
                    cells += 1
                    let ex = (0..<k).map { x.expert(token: t, layer: l, slot: $0) }
                    let ey = (0..<k).map { y.expert(token: t, layer: l, slot: $0) }
                    guard Set(ex) == Set(ey) else { continue }
                    sameSets += 1
                    for s in 0..<k {
                        let j = try #require(ey.firstIndex(of: ex[s]))
                        maxWeightDifference = max(
                            maxWeightDifference,
                            abs(x.weight(token: t, layer: l, slot: s) - y.weight(token: t, layer: l, slot: j))
                        )
                    }
                }
            }
        }
        print(
            "compiled vs eager: \(sameSets)/\(cells) (token, layer) expert sets agree, max weight difference \(maxWeightDifference)"
        )
        #expect(cells > 0)
        #expect(Double(sameSets) >= 0.999 * Double(cells))
        #expect(maxWeightDifference <= 1e-4)
    }
}
