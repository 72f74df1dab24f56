// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Reading every trace honestly: what --lenient skipped is in every output, the raw per-step
// layout is named, convert carries layer timings, an inferred shape shows its evidence, .npz
// reads back, and --phase separates prefill from decode.

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct ReadHonestyCLITests {
    static func record(problem: Int = 0, layer: Int, position: Int, experts: (Int, Int), phase: String? = nil) -> String
    {
        let p = phase.map { #", "phase": "\#($0)""# } ?? ""
        return
            #"{"dataset": "d", "problem_id": \#(problem), "layer": \#(layer), "experts": [\#(experts.0), \#(experts.1)], "gating_probs": [0.7, 0.3], "token_idx": \#(position)\#(p)}"#
    }

    /// 2 layers, 6 tokens of one problem, and two bad lines (a broken line and a duplicate).
    static func traceWithBadLines(in dir: URL) throws -> String {
        var lines: [String] = []
        for l in 0..<2 {
            for t in 0..<6 { lines.append(record(layer: l, position: t, experts: ((t + l) % 4, (t + l + 1) % 4))) }
        }
        lines.insert("{not json", at: 3)
        lines.append(record(layer: 1, position: 2, experts: (0, 1)))
        let path = dir.appendingPathComponent("bad.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func lenientSkipsAreInRunJSONTheJSONOutputAndEveryReportsBanner() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.traceWithBadLines(in: dir)
        let out = dir.appendingPathComponent("out").path
        let r = try tool([
            "analyze", path, "--lenient", "--layers", "2", "--experts", "4", "--top-k", "2", "--analyzer", "transition",
            "--format", "json", "--output", out,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try ReportValue.parse(json: r.stdout)
        #expect(v.objectMembers?.map(\.key) == ["transition", "input"])
        let input = try #require(v["input"])
        #expect(input["skipped_records"]?["malformed"] == .int(1))
        #expect(input["skipped_records"]?["duplicate_cell"] == .int(1))
        #expect(input["skipped_total"] == .int(2))
        #expect(input["lost_bytes"] == .int(0))
        #expect(input["phase"] == .string("all"))
        let run = try ReportValue.parse(json: String(contentsOfFile: out + "/run.json", encoding: .utf8))
        #expect(run["input"] == input)
        #expect(run["skipped_records"]?["malformed"] == .int(1))
        #expect(run["tokens"] == .int(6))
        let banner = "2 bad records were skipped (1 duplicate_cell, 1 malformed); the figures exclude them."
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(md.contains("> **Notice:** " + banner), "\(md.prefix(400))")
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(html.contains(banner))
        let txt = try String(contentsOfFile: out + "/report.txt", encoding: .utf8)
        #expect(txt.hasPrefix("NOTICE: " + banner))
        let written = try ReportValue.parse(json: String(contentsOfFile: out + "/report.json", encoding: .utf8))
        #expect(written == v)

        // Without skips there is no banner.
        let clean = dir.appendingPathComponent("clean.jsonl").path
        try
            ((0..<2).flatMap { l in
                (0..<6).map { t in Self.record(layer: l, position: t, experts: ((t + l) % 4, (t + l + 1) % 4)) }
            }
            .joined(separator: "\n") + "\n").write(toFile: clean, atomically: true, encoding: .utf8)
        let c = try tool(["analyze", clean, "--lenient", "--analyzer", "transition", "--format", "markdown"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(!c.stdout.contains("Notice"))
    }

    @Test func rawPerStepLayoutIsNamedAndReadsWithPositionsByOrder() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Prefill batch of 4 rows (token_pos 0..3), then 3 decode steps of one row (token_pos 0).
        var lines: [String] = []
        var n = 0
        for batch in [4, 1, 1, 1] {
            for l in 0..<2 {
                for r in 0..<batch {
                    lines.append(
                        #"{"problem_id": 0, "layer": \#(l), "experts": [\#((n + r) % 4), \#((n + r + 1) % 4)], "gating_probs": [0.7, 0.3], "token_pos": \#(r)}"#
                    )
                }
            }
            n += batch
        }
        let path = dir.appendingPathComponent("raw.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let strict = try tool(["inspect", path])
        #expect(strict.status != 0)
        #expect(strict.stderr.contains("raw.jsonl:9:"), "\(strict.stderr)")
        #expect(strict.stderr.contains("read it with --positions by-order"))
        let lenient = try tool(["analyze", path, "--lenient", "--analyzer", "transition", "--format", "markdown"])
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(lenient.stderr.contains("6 of the skipped duplicates restart the positions"))
        #expect(lenient.stdout.contains("looks like the seed's raw per-step layout"))
        let byOrder = try tool(["inspect", path, "--positions", "by-order", "--format", "json"])
        #expect(byOrder.status == 0, "\(byOrder.stderr)")
        let v = try ReportValue.parse(json: byOrder.stdout)
        #expect(v["tokens"] == .int(7))
        #expect(v["complete_journeys"] == .int(7))
        #expect(v["skipped_records"] == .object([]))
        let help = try tool(["analyze", "--help"])
        #expect(help.stdout.contains("--positions"))
    }

    @Test func inferredShapeIsPrintedWithItsEvidenceAndAStatedShapeRefusesTheStrayID() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines: [String] = []
        for t in 0..<60 {
            for l in 0..<2 {
                lines.append(
                    Self.record(layer: l, position: t, experts: (t == 5 && l == 1 ? 8 : (t + l) % 8, (t + l + 1) % 8))
                )
            }
        }
        let path = dir.appendingPathComponent("stray.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try tool(["analyze", path, "--analyzer", "transition", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains(
                "shape inferred from the data: L=2 (highest layer 1 in 60 of 120 rows), E=9 (highest expert id 8 used in 1 of 120 rows; state --layers 2 --experts 8 --top-k 2 if that is a stray id), k=2"
            ),
            "\(r.stderr)"
        )
        let stated = try tool(["analyze", path, "--layers", "2", "--experts", "8", "--top-k", "2"])
        #expect(stated.status != 0)
        #expect(stated.stderr.contains("stray.jsonl:12: expert id 8 is outside 0..<8 (E)"), "\(stated.stderr)")
    }

    /// A .moetrace with layer timings, written here.
    static func timedTrace(in dir: URL) throws -> String {
        let shape = ModelShape.tinyMixtral
        var builder = RoutingBlockBuilder(shape: shape)
        for t in 0..<12 {
            let i = try builder.appendToken(
                TokenMetadata(
                    domain: "d",
                    problemID: Int64(t / 6),
                    position: Int32(t % 6),
                    phase: t % 6 < 2 ? .prefill : .decode,
                    step: UInt32(t % 6)
                )
            )
            for l in 0..<4 {
                try builder.setCell(token: i, layer: l, experts: [(t + l) % 8, (t + l + 3) % 8], weights: [0.6, 0.4])
            }
        }
        let path = dir.appendingPathComponent("timed.moetrace").path
        let writer = try BinaryTraceWriter(path: path, shape: shape, settings: ["engine": "test"])
        var timings: [LayerTimingRecord] = []
        for s in 0..<6 {
            let routing: [Int64] = (0..<4).map { l in Int64(1000 * s + l) }
            let moe: [Int64] = (0..<4).map { l in Int64(9000 * s + 5 * l + 1) }
            timings.append(LayerTimingRecord(step: Int64(s), rows: 2, routingNanoseconds: routing, moeNanoseconds: moe))
        }
        try writer.writeTimings(timings)
        try writer.write(builder.makeBlock())
        try writer.close()
        return path
    }

    @Test func convertCarriesLayerTimingsAndSaysWhatJSONLCannotHold() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = try Self.timedTrace(in: dir)
        func inspect(_ path: String) throws -> ReportValue {
            let r = try tool(["inspect", path, "--format", "json"])
            #expect(r.status == 0, "\(r.stderr)")
            return try ReportValue.parse(json: r.stdout)
        }
        let original = try inspect(trace)
        let timing = try #require(original["timing"])
        #expect(timing["steps"] == .int(6))
        for target in ["copy.moetrace", "copy.npz"] {
            let out = dir.appendingPathComponent(target).path
            let c = try tool(["convert", trace, out])
            #expect(c.status == 0, "\(c.stderr)")
            #expect(!c.stderr.contains("cannot hold"), "\(c.stderr)")
            let copy = try inspect(out)
            #expect(copy["timing"] == timing, "\(target)")
            #expect(copy["tokens"] == .int(12))
        }
        // Settings and the model name travel too.
        let binaryCopy = try BinaryTraceReader(path: dir.appendingPathComponent("copy.moetrace").path)
        #expect(binaryCopy.header.settings == ["engine": "test"])
        #expect(binaryCopy.shape.name == "tiny-mixtral")
        let npzCopy = try NPZTraceReader(path: dir.appendingPathComponent("copy.npz").path)
        #expect(npzCopy.settings == ["engine": "test"])
        #expect(npzCopy.shape.name == "tiny-mixtral")
        // npz -> moetrace carries them on.
        let back = dir.appendingPathComponent("back.moetrace").path
        #expect(try tool(["convert", dir.appendingPathComponent("copy.npz").path, back]).status == 0)
        #expect(try inspect(back)["timing"] == timing)

        let jsonl = dir.appendingPathComponent("copy.jsonl").path
        let j = try tool(["convert", trace, jsonl])
        #expect(j.status == 0, "\(j.stderr)")
        #expect(
            j.stderr.contains(
                "\(jsonl): the target format cannot hold: layer timings (6 records), capture settings (1 key), the model name (tiny-mixtral), the model shape"
            ),
            "\(j.stderr)"
        )
    }

    @Test func analyzeAndInspectReadNPZAndPhaseSeparatesPrefillFromDecode() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = try Self.timedTrace(in: dir)
        let npz = dir.appendingPathComponent("t.npz").path
        #expect(try tool(["convert", trace, npz]).status == 0)
        let a = try tool(["analyze", trace, "--format", "json"])
        let b = try tool(["analyze", npz, "--format", "json"])
        #expect(a.status == 0 && b.status == 0, "\(b.stderr)")
        #expect(a.stdout == b.stdout)

        let phases = try ReportValue.parse(json: try tool(["inspect", npz, "--format", "json"]).stdout)
        let all = try #require(phases["domains"]?.arrayValue?.first)
        let decodeTokens = try #require(all["decode"]?.intValue)
        #expect(decodeTokens == 8)
        let d = try tool([
            "analyze", npz, "--phase", "decode", "--analyzer", "transition", "--format", "json", "--output",
            dir.appendingPathComponent("out").path,
        ])
        #expect(d.status == 0, "\(d.stderr)")
        let run = try ReportValue.parse(
            json: String(contentsOfFile: dir.appendingPathComponent("out/run.json").path, encoding: .utf8)
        )
        #expect(run["tokens"] == .int(decodeTokens))
        #expect(run["input"]?["phase"] == .string("decode"))
        #expect(run["input"]?["phase_dropped_tokens"] == .int(12 - decodeTokens))
        let md = try String(contentsOfFile: dir.appendingPathComponent("out/report.md").path, encoding: .utf8)
        #expect(
            md.contains(
                "> **Notice:** Only decode tokens are analyzed (--phase decode); 4 prefill tokens were left out."
            )
        )
        let p = try tool(["inspect", npz, "--phase", "prefill", "--format", "json"])
        #expect(try ReportValue.parse(json: p.stdout)["tokens"] == .int(4))
        let help = try tool(["analyze", "--help"])
        #expect(help.stdout.contains("--phase") && help.stdout.contains(".npz"))
    }

    @Test func phaseWithNoTokensOfThatPhaseIsAClearError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("decode.jsonl").path
        try
            ((0..<2).flatMap { l in
                (0..<3).map { t in Self.record(layer: l, position: t, experts: (t % 4, (t + 1) % 4)) }
            }
            .joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try tool(["analyze", path, "--phase", "prefill"])
        #expect(r.status == 1)
        #expect(
            r.stderr.contains(
                "no prefill tokens in the input (3 tokens of the other phase were left out; JSONL records without a 'phase' field are decode tokens)"
            ),
            "\(r.stderr)"
        )
    }
}
