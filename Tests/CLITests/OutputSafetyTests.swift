// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The tool never loses data and refuses inputs that would mislead, run as a person would run it:
// an output that is an input is refused with the input byte-identical, a failed convert leaves the
// earlier output whole and no temporary files, the same trace twice (or a trace and its converted
// copy) is refused naming both, empty inputs fail unless --allow-empty, and unwritable outputs
// fail at once with one "cannot write PATH: REASON" line.

import Foundation
import MoERouting
import MoERoutingTestKit
import MoERoutingTraces
import Testing

struct OutputSafetyTests {
    /// A JSONL trace of tiny-mixtral routing: two humaneval and two gsm8k problems of 5 tokens.
    static func syntheticJSONL(in dir: URL, name: String = "x.jsonl") throws -> String {
        let path = dir.appendingPathComponent(name).path
        var g = SyntheticRouting(shape: .tinyMixtral, seed: 11)
        let writer = try JSONLTraceWriter(path: path)
        try writer.write(g.makeBlock(problems: 2, tokensPerProblem: 5, domain: "humaneval"))
        try writer.write(g.makeBlock(problems: 2, tokensPerProblem: 5, domain: "gsm8k"))
        try writer.close()
        return path
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func listing(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    /// The non-empty lines of a text.
    static func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    // MARK: - An output that is an input

    @Test func convertOntoItsInputLeavesItByteIdenticalAndFails() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let before = try Self.bytes(x)
        let r = try tool(["convert", x, x])
        #expect(r.status != 0)
        #expect(try Self.bytes(x) == before)
        #expect(r.stderr.contains("cannot write \(x): it is also an input"), "\(r.stderr)")
        #expect(try Self.listing(dir) == ["x.jsonl"])

        // The same through a symbolic link, and with another input first.
        let link = dir.appendingPathComponent("link.jsonl").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: x)
        let other = try Self.syntheticJSONL(in: dir, name: "other.jsonl")
        let viaLink = try tool(["convert", other, x, link, "--format", "jsonl"])
        #expect(viaLink.status != 0)
        #expect(
            viaLink.stderr.contains("cannot write \(link): it is the same file as the input \(x)"),
            "\(viaLink.stderr)"
        )
        #expect(try Self.bytes(x) == before)
        #expect(try Self.listing(dir) == ["link.jsonl", "other.jsonl", "x.jsonl"])
    }

    // MARK: - A convert that fails midway

    @Test func aConvertThatFailsMidwayLeavesTheEarlierOutputByteIdenticalAndNoTemporaryFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Self.syntheticJSONL(in: dir)
        let out = dir.appendingPathComponent("out.moetrace").path
        let first = try tool(["convert", good, out])
        #expect(first.status == 0, "\(first.stderr)")
        let before = try Self.bytes(out)
        // Good records, then a bad one in the last problem (strict mode stops there). With the shape
        // stated there is no pre-pass: the failure comes after the writer has written blocks.
        var text = try String(contentsOfFile: good, encoding: .utf8)
        let badLine = Self.lines(text).count + 1
        text +=
            #"{"dataset":"gsm8k","problem_id":3,"layer":0,"token_idx":99,"experts":[1,9],"gating_probs":[0.5,0.5]}"#
            + "\n"
        let bad = dir.appendingPathComponent("bad.jsonl").path
        try text.write(toFile: bad, atomically: true, encoding: .utf8)
        for format in ["moetrace", "jsonl", "npz"] {
            let target = format == "moetrace" ? out : dir.appendingPathComponent("out.\(format)").path
            if format != "moetrace" { try before.write(to: URL(fileURLWithPath: target)) }
            let r = try tool([
                "convert", bad, target, "--format", format == "moetrace" ? "binary" : format, "--shape", "tiny-mixtral",
            ])
            #expect(r.status != 0, "\(format)")
            #expect(r.stderr.contains("bad.jsonl:\(badLine):"), "\(format): \(r.stderr)")
            #expect(try Self.bytes(target) == before, "\(format)")
        }
        #expect(try Self.listing(dir) == ["bad.jsonl", "out.jsonl", "out.moetrace", "out.npz", "x.jsonl"])
    }

    // MARK: - The same data twice

    @Test func theSameTraceTwiceIsRefusedNamingBoth() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let trace = dir.appendingPathComponent("x.moetrace").path
        #expect(try tool(["convert", x, trace]).status == 0)
        let twice = try tool(["analyze", trace, trace, "--analyzer", "transition"])
        #expect(twice.status != 0)
        #expect(twice.stdout.isEmpty)
        #expect(twice.stderr.contains("\(trace): given twice"), "\(twice.stderr)")
        let link = dir.appendingPathComponent("again.moetrace").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: trace)
        let viaLink = try tool(["analyze", trace, link, "--analyzer", "transition"])
        #expect(viaLink.status != 0)
        #expect(viaLink.stderr.contains("\(link): the same file as \(trace), given twice"), "\(viaLink.stderr)")
        // A copy under another inode: caught by the problems it holds.
        let copy = dir.appendingPathComponent("copy.moetrace").path
        try FileManager.default.copyItem(atPath: trace, toPath: copy)
        let copied = try tool(["analyze", trace, copy, "--analyzer", "transition"])
        #expect(copied.status != 0)
        #expect(copied.stderr.contains("problem 0 (humaneval) is in both \(trace) and \(copy)"), "\(copied.stderr)")
    }

    @Test func aJSONLTraceAndItsConvertedCopyAreRefusedNamingBoth() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let trace = dir.appendingPathComponent("x.moetrace").path
        #expect(try tool(["convert", x, trace]).status == 0)
        for args in [[x, trace], [trace, x]] {
            let r = try tool(["analyze"] + args + ["--analyzer", "transition"])
            #expect(r.status != 0)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("problem 0 (humaneval) is in both \(x) and \(trace)"), "\(r.stderr)")
        }
        let both = dir.appendingPathComponent("both.moetrace").path
        let converted = try tool(["convert", x, trace, both])
        #expect(converted.status != 0)
        #expect(!FileManager.default.fileExists(atPath: both))
        // Other problems (the same ids in another domain) in another format: one stream.
        let other = dir.appendingPathComponent("other.jsonl").path
        var g = SyntheticRouting(shape: .tinyMixtral, seed: 5)
        let w = try JSONLTraceWriter(path: other)
        try w.write(g.makeBlock(problems: 2, tokensPerProblem: 4, domain: "mbpp"))
        try w.close()
        let fine = try tool(["analyze", trace, other, "--analyzer", "summary", "--format", "json"])
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(try ReportValue.parse(json: fine.stdout)["summary"]?["tokens"] == .int(20 + 8))
    }

    // MARK: - Empty inputs

    @Test func emptyInputsFailUnlessAllowedAndLeaveNoOutput() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.jsonl").path
        try Data().write(to: URL(fileURLWithPath: empty))
        let out = dir.appendingPathComponent("e.moetrace").path
        let refused = try tool(["convert", empty, out, "--shape", "tiny-mixtral"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("no routing records in \(empty)"), "\(refused.stderr)")
        #expect(!refused.stdout.contains("wrote"))
        #expect(try Self.listing(dir) == ["empty.jsonl"])

        let allowed = try tool(["convert", empty, out, "--shape", "tiny-mixtral", "--allow-empty"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stdout.contains("0 tokens"))
        let (blocks, reader) = try { () throws -> (Int, BinaryTraceReader) in
            let r = try BinaryTraceReader(path: out)
            var n = 0
            while try r.nextBlock() != nil { n += 1 }
            return (n, r)
        }()
        #expect(blocks == 0)
        #expect(reader.isComplete)

        let analyzed = try tool(["analyze", out])
        #expect(analyzed.status != 0)
        #expect(analyzed.stdout.isEmpty)
        #expect(analyzed.stderr.contains("no routing records in \(out)"), "\(analyzed.stderr)")
        let anyway = try tool(["analyze", out, "--allow-empty", "--analyzer", "summary", "--format", "json"])
        #expect(anyway.status == 0, "\(anyway.stderr)")
        #expect(try ReportValue.parse(json: anyway.stdout)["summary"]?["tokens"] == .int(0))
    }

    @Test func aFullySkippedLenientInputSaysSo() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.jsonl").path
        let line = #"{"dataset":"d","problem_id":0,"layer":9,"token_idx":0,"experts":[1,2],"gating_probs":[0.5,0.5]}"#
        try (line + "\n" + line + "\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try tool([
            "convert", bad, dir.appendingPathComponent("o.moetrace").path, "--shape", "tiny-mixtral", "--lenient",
        ])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no routing records in \(bad): all 2 records were skipped as bad"), "\(r.stderr)")
        #expect(try Self.listing(dir) == ["bad.jsonl"])
    }

    // MARK: - Unwritable outputs

    @Test func analyzeToAnUnwritableDirectoryFailsBeforeAnyAnalysis() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let r = try tool(["analyze", x, "--output", "/proc/x"])
        #expect(r.status != 0)
        #expect(r.stdout.isEmpty, "printed the analysis first: \(r.stdout.prefix(200))")
        #expect(Self.lines(r.stderr) == ["Error: cannot write /proc/x: No such file or directory"], "\(r.stderr)")
        // A file in the way of the directory.
        let blocked = try tool(["analyze", x, "--output", x + "/reports"])
        #expect(blocked.status != 0)
        #expect(blocked.stderr.contains("cannot write \(x): it exists and is not a directory"), "\(blocked.stderr)")
    }

    /// A guard (main wrote these atomically too, through Foundation): the report files now go
    /// through AtomicOutputFile and leave no temporary file.
    @Test func analyzeWritesItsReportFilesWithNoTemporaryFilesLeft() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let reports = dir.appendingPathComponent("reports/deeper")
        let r = try tool(["analyze", x, "--output", reports.path, "--analyzer", "summary"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.listing(reports) == ["report.html", "report.json", "report.md", "report.txt", "run.json"])
    }

    @Test func demoToAnUnwritableDirectoryIsOneLine() throws {
        let r = try tool(["demo", "--output", "/proc/x"])
        #expect(r.status != 0)
        #expect(!r.stderr.contains("NSCocoaErrorDomain"))
        #expect(Self.lines(r.stderr) == ["Error: cannot write /proc/x: No such file or directory"], "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func convertToAMissingDirectoryOrADirectoryNamesTheReason() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = try Self.syntheticJSONL(in: dir)
        let missing = dir.appendingPathComponent("no/such/out.moetrace").path
        let r = try tool(["convert", x, missing])
        #expect(r.status != 0)
        #expect(Self.lines(r.stderr) == ["Error: cannot write \(missing): No such file or directory"], "\(r.stderr)")
        let intoDir = try tool(["convert", x, dir.path, "--format", "binary"])
        #expect(intoDir.status != 0)
        #expect(intoDir.stderr.contains("cannot write \(dir.path): it is a directory"), "\(intoDir.stderr)")
    }

    @Test func collectChecksItsOutputsBeforeStartingPython() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // No venv is needed: the check comes first.
        let r = try tool([
            "collect", "--output", "/proc/x/t.moetrace", "--venv", dir.appendingPathComponent("no-venv").path,
        ])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot write /proc/x: No such file or directory"), "\(r.stderr)")
        #expect(!r.stderr.contains("venv"), "\(r.stderr)")
        // A dataset file that the JSONL trace would overwrite.
        let data = dir.appendingPathComponent("t.jsonl").path
        try Data("{\"prompt\":\"hi\"}\n".utf8).write(to: URL(fileURLWithPath: data))
        let clash = try tool([
            "collect", "--dataset", "jsonl:\(data)", "--jsonl", "--output",
            dir.appendingPathComponent("t.moetrace").path,
            "--venv", dir.appendingPathComponent("no-venv").path,
        ])
        #expect(clash.status != 0)
        #expect(clash.stderr.contains("cannot write \(data): it is also an input"), "\(clash.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: data)) == Data("{\"prompt\":\"hi\"}\n".utf8))
    }
}
