// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import Foundation
import MoERouting
import MoERoutingTestKit
import Testing

@testable import MoERoutingTraces

/// Parses one line with the record parser (NUL-terminated, as the line source hands it out).
private func parse(_ line: String, scratch: JSONLScratch) throws -> JSONLRecord? {
    var bytes = Array(line.utf8)
    let count = bytes.count
    bytes.append(0)
    return try bytes.withUnsafeBufferPointer { b in
        var parser = JSONLRecordParser(line: b.baseAddress!, count: count, scratch: scratch)
        return try parser.parse()
    }
}

/// The weights a record with these weight spellings parses to.
private func weights(_ texts: [String], scratch: JSONLScratch) throws -> [Float] {
    let experts = (0..<texts.count).map(String.init).joined(separator: ",")
    let line =
        #"{"problem_id":0,"layer":0,"token_idx":0,"experts":[\#(experts)],"gating_probs":[\#(texts.joined(separator: ","))]}"#
    let record = try #require(try parse(line, scratch: scratch))
    return (0..<record.expertCount).map { scratch.weights[$0] }
}

/// The same bits, treating all NaNs as equal.
private func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

struct JSONLRecordParserTests {
    @Test(
        .enabled(if: JSONLFixtures.sharedData(JSONLFixtures.humaneval) != nil, "shared data ../shared/data is absent")
    )
    func everyWeightOfTheRealDataEqualsSwiftsOwnParse() throws {
        let scratch = JSONLScratch()
        var checked = 0
        var fastPathDoubles = 0
        for name in [JSONLFixtures.humaneval, JSONLFixtures.gsm8k] {
            let path = try #require(JSONLFixtures.sharedData(name))
            for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
                let open = try #require(line.range(of: "\"gating_probs\": ["))
                let close = try #require(line[open.upperBound...].firstIndex(of: "]"))
                let texts = line[open.upperBound..<close].split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                let record = try #require(try parse(String(line), scratch: scratch))
                #expect(record.expertCount == texts.count)
                for (j, text) in texts.enumerated() {
                    let expected = Float(try #require(Double(text)))
                    #expect(same(scratch.weights[j], expected), "\(text)")
                    checked += 1
                    // The Double itself, through the fast path, equals Swift's parse exactly.
                    let digits = text.hasPrefix("0.") ? text.dropFirst(2) : Substring(text)
                    if text.hasPrefix("0."), digits.count <= 19, let m = UInt64(digits),
                        let d = JSONLDecimal.double(mantissa: m, exponent: -digits.count)
                    {
                        #expect(d.bitPattern == Double(text)!.bitPattern, "\(text)")
                        fastPathDoubles += 1
                    }
                }
            }
        }
        #expect(checked == 2 * (10779 + 7889))
        #expect(fastPathDoubles > checked * 99 / 100)
    }

    @Test func decimalConversionIsCorrectlyRounded() throws {
        var rng = SeededRandom(seed: 2024)
        var fast = 0
        let total = 100_000
        for n in 0..<total {
            let digits = 1 + Int(rng.next() % 19)
            var m: UInt64 = 0
            for _ in 0..<digits { m = m * 10 + rng.next() % 10 }
            let q = Int(rng.next() % 129) - 64
            let text = "\(m)e\(q)"
            let expected = try #require(Double(text))
            if let d = JSONLDecimal.double(mantissa: m, exponent: q) {
                #expect(d.bitPattern == expected.bitPattern, "\(text)")
                fast += 1
            }
            if n > 1000, fast < n / 2 { break }
        }
        #expect(fast > total * 99 / 100)
        // Hard cases: ties and near-ties at the 53-bit boundary, powers of ten, extremes.
        let hard: [(UInt64, Int)] = [
            (9_007_199_254_740_993, 0), (9_007_199_254_740_995, 0), (18_014_398_509_481_993, 0),
            (1, -1), (1, 22), (1, 23), (1, -23), (17_976_931_348_623_157, 292), (9_999_999_999_999_999_999, 0),
            (2_225_073_858_507_201, -23), (7_450_580_596_923_828_125, -27), (1_000_000_000_000_000_000, -19),
            (4_503_599_627_370_497, -1), (123_456_789_012_345_678, -18), (5, -1), (25, -2), (125, -3),
        ]
        for (m, q) in hard {
            let expected = try #require(Double("\(m)e\(q)"))
            if let d = JSONLDecimal.double(mantissa: m, exponent: q) {
                #expect(d.bitPattern == expected.bitPattern, "\(m)e\(q)")
            }
        }
        #expect(JSONLDecimal.double(mantissa: 1, exponent: 65) == nil)
        #expect(JSONLDecimal.double(mantissa: 0, exponent: 500) == 0)
    }

    @Test func numberSpellingsMatchSwiftsParse() throws {
        let scratch = JSONLScratch()
        let texts = [
            "0", "1", "0.5", "1e5", "1E-3", "2.5e+2", "-0.0", "0.30000000000000004", "0.1",
            "123456789012345678901234", "0.12345678901234567890123", "4.9e-324", "1e-400", "1e400",
            "0.000001234", "100", "0.8003801107406616", "0.19961987435817719", "1.0000000000000002",
        ]
        let parsed = try weights(texts, scratch: scratch)
        #expect(parsed.count == texts.count)
        for (text, value) in zip(texts, parsed) {
            #expect(same(value, Float(Double(text)!)), "\(text) -> \(value)")
        }
        let special = try weights(["NaN", "Infinity", "-Infinity"], scratch: scratch)
        #expect(special[0].isNaN)
        #expect(special[1] == .infinity)
        #expect(special[2] == -.infinity)
    }

    @Test func recordsInvalidWeightsWithoutFailingTheParse() throws {
        let scratch = JSONLScratch()
        let line = #"{"problem_id":0,"layer":0,"token_idx":0,"experts":[0,1,2],"gating_probs":[0.5,-1e-50,NaN]}"#
        let record = try #require(try parse(line, scratch: scratch))
        #expect(record.invalidWeightIndex == 1)
        #expect(record.invalidWeight == -1e-50)
    }

    @Test func skipsUnknownValuesOfAnyShape() throws {
        let scratch = JSONLScratch()
        let line =
            #"{"a":"x\"}]\\\u00e9\/","b":[1,[2,{"c":[{}]}],[]],"d":{},"e":-1.5E-7,"problem_id":7,"f":true,"g":null,"layer":1,"token_id":3,"expert_ids":[2],"weights":[1]}"#
        let record = try #require(try parse(line, scratch: scratch))
        #expect(record.problemID == 7)
        #expect(record.layer == 1)
        #expect(record.position == 3)
        #expect(record.expertCount == 1)
        #expect(scratch.experts[0] == 2)
        #expect(scratch.weights[0] == 1)
        #expect(record.datasetStart < 0)
        #expect(try parse("   \r", scratch: scratch) == nil)
        for bad in [
            #"{"a":[1,}"#, #"{"a":{"b"}}"#, #"{"a":[1 2]}"#, #"{"a":tru}"#, #"{"a":"\x"}"#, #"{"a":01}"#,
            "{\"a\":\"\t\"}",
        ] {
            #expect(throws: RecordIssue.self, "\(bad)") { try parse(bad, scratch: scratch) }
        }
    }

    @Test func decodesEscapedKeysAndDatasetNames() throws {
        let path = try JSONLFixtures.file(lines: [
            #"{"d\u0061taset":"gsm\u0038k \"q\" \ud83d\ude00","problem_id":0,"layer":0,"experts":[1,2],"gating_probs":[0.6,0.4],"token_idx":0}"#
        ])
        let reader = try JSONLTraceReader(path: path, options: TraceReadOptions(shape: .tinyMixtral))
        _ = try JSONLFixtures.readAll(reader)
        #expect(reader.domains == ["gsm8k \"q\" 😀"])
    }
}
