// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing

struct ReportValueTests {
    @Test func encodesDeterministicallyInKeyOrder() {
        let v: ReportValue = ["b": 1, "a": [0.125, 2.0, .number(.nan)], "s": "q\"\n\u{1}", "n": nil, "t": true]
        #expect(v.jsonString() == #"{"b":1,"a":[0.125,2,null],"s":"q\"\n\u0001","n":null,"t":true}"#)
        #expect(ReportValue.double(1e-7).jsonString() == "1e-07")
        #expect(ReportValue.double(-0.0).jsonString() == "0")
    }

    @Test func parsesWhatItWrites() throws {
        let v: ReportValue = [
            "x": [["k": 1.5, "u": "é \u{1F600}"]], "e": [], "o": [:], "neg": -3, "big": 12_345_678_901_234,
        ]
        for indent in [0, 2] {
            #expect(try ReportValue.parse(json: v.jsonString(indent: indent)) == v)
        }
        #expect(try ReportValue.parse(json: #"{"s":"\ud83d\ude00"}"#)["s"] == .string("😀"))
    }

    /// 64-bit seeds are written digit for digit and parse back to the same value, above 2^53
    /// (where a Double would round) and above Int.max too.
    @Test(
        arguments: [0, 24301, (1 << 53) + 1, UInt64(Int.max), UInt64(Int.max) + 1, UInt64.max - 2, UInt64.max]
            as [UInt64]
    )
    func unsignedIntegersRoundTripExactly(value: UInt64) throws {
        let v = ReportValue.integer(value)
        #expect(v.jsonString() == String(value))
        let parsed = try ReportValue.parse(json: #"{"seed":\#(value)}"#)["seed"]
        #expect(parsed == v)
        #expect(parsed?.uint64Value == value)
        if value <= UInt64(Int.max) {
            #expect(v == .int(Int(value)))
        } else {
            #expect(v == .unsigned(value))
            #expect(v.intValue == nil)
        }
    }

    @Test func uint64ValueIsExactOrNil() throws {
        #expect(ReportValue.int(-1).uint64Value == nil)
        #expect(ReportValue.double(3).uint64Value == nil)
        #expect(ReportValue.string("3").uint64Value == nil)
        #expect(ReportValue.unsigned(UInt64.max).doubleValue == 18446744073709551615.0)
        // One past UInt64.max is no longer an integer value: it parses as a double.
        #expect(try ReportValue.parse(json: "18446744073709551616") == .double(18446744073709551616.0))
    }

    /// The analysis context (what a dynamic plugin's `begin` receives) carries the seed as a JSON
    /// number, exact up to UInt64.max, and reads it back; the old string form is still read.
    @Test func contextSeedIsAnExactJSONNumber() throws {
        for seed: UInt64 in [0x5EED, (1 << 53) + 1, UInt64.max] {
            let context = AnalysisContext(shape: .tinyMixtral, settings: ["engine": "test"], seed: seed)
            let json = context.reportValue.jsonString()
            #expect(json.hasSuffix(#","seed":\#(seed)}"#))
            #expect(try AnalysisContext(reportValue: ReportValue.parse(json: json)) == context)
        }
        let legacy = #"{"shape":{"layers":4,"experts":8,"top_k":2},"settings":{},"seed":"18446744073709551615"}"#
        #expect(try AnalysisContext(reportValue: ReportValue.parse(json: legacy)).seed == UInt64.max)
        let missing = #"{"shape":{"layers":4,"experts":8,"top_k":2},"settings":{}}"#
        #expect(try AnalysisContext(reportValue: ReportValue.parse(json: missing)).seed == 0x5EED)
        for bad in ["-1", "1.5", #""x""#, "null"] {
            let text = #"{"shape":{"layers":4,"experts":8,"top_k":2},"settings":{},"seed":\#(bad)}"#
            #expect {
                try AnalysisContext(reportValue: ReportValue.parse(json: text))
            } throws: { "\($0)".contains("'seed' must be a whole number from 0 to 18446744073709551615, not \(bad)") }
        }
    }

    @Test(arguments: ["", "{", "[1,]x", "{\"a\" 1}", "tru", "\"abc", "[1 2]", "{\"a\":1}}"])
    func rejectsBadJSON(text: String) {
        #expect(throws: ReportValue.ParseError.self) { try ReportValue.parse(json: text) }
    }

    @Test func reportRoundTripsThroughValue() throws {
        let report = AnalyzerReport(
            analyzer: "x",
            title: "X",
            json: ["a": 1],
            tables: [ReportTable(title: "T", columns: ["c1", "c2"], rows: [["1", "2"]])],
            figures: [
                .heatmap(
                    .init(
                        title: "h",
                        xLabel: "x",
                        yLabel: "y",
                        rowLabels: ["0"],
                        columnLabels: ["0", "1"],
                        values: [[0.5, 1]]
                    )
                ),
                .lines(
                    .init(
                        title: "l",
                        xLabel: "d",
                        yLabel: "r",
                        x: [1, 2],
                        series: [.init(name: "chance", values: [0.1, 0.1], dashed: true)]
                    )
                ),
                .bars(.init(title: "b", xLabel: "", yLabel: "", labels: ["a"], values: [3], highlighted: [true])),
            ],
            headlines: [.init(label: "m", value: "0.1", reference: "chance 0.125")],
            notes: ["n"]
        )
        let text = report.reportValue.jsonString()
        #expect(try AnalyzerReport(reportValue: ReportValue.parse(json: text)) == report)
    }

    @Test func intervalsAndReferenceMarkersRoundTripThroughValue() throws {
        // A plugin's report crosses the C boundary as JSON: intervals and references must survive.
        let report = AnalyzerReport(
            analyzer: "x",
            title: "X",
            json: [:],
            figures: [
                .lines(
                    .init(
                        title: "l",
                        xLabel: "d",
                        yLabel: "r",
                        x: [1, 2],
                        series: [
                            .init(name: "acc", values: [0.2, 0.3], lower: [0.1, .nan], upper: [0.25, 0.4])
                        ]
                    )
                ),
                .bars(
                    .init(
                        title: "b",
                        xLabel: "",
                        yLabel: "",
                        labels: ["a", "b"],
                        values: [3, 4],
                        lower: [2, 3],
                        upper: [4, 5],
                        reference: [1.5, 2.5],
                        referenceLabel: "expected if independent"
                    )
                ),
            ]
        )
        let back = try AnalyzerReport(reportValue: ReportValue.parse(json: report.reportValue.jsonString()))
        guard case .lines(let l) = back.figures[0], case .bars(let b) = back.figures[1] else {
            Issue.record("figures changed kind: \(back.figures)")
            return
        }
        #expect(l.series[0].lower?[0] == 0.1)
        #expect(l.series[0].lower?[1].isNaN == true)
        #expect(l.series[0].upper == [0.25, 0.4])
        #expect(b.lower == [2, 3] && b.upper == [4, 5] && b.reference == [1.5, 2.5])
        #expect(b.referenceLabel == "expected if independent")
        // Figures without them keep their old JSON: no new keys appear.
        let plain = ReportFigure.bars(.init(title: "b", xLabel: "", yLabel: "", labels: ["a"], values: [3]))
        #expect(
            plain.reportValue.objectMembers?.map(\.key) == [
                "kind", "title", "x_label", "y_label", "labels", "values", "highlighted",
            ]
        )
    }

    @Test func tablesRenderAsTextAndMarkdown() {
        let t = ReportTable(
            title: "Rates",
            columns: ["layer", "top1_same"],
            rows: [["0", "0.127"], ["10", "0.1|2"]]
        )
        #expect(t.renderText() == "Rates\nlayer  top1_same\n-----  ---------\n0      0.127\n10     0.1|2\n")
        #expect(
            t.renderMarkdown() == "**Rates**\n\n| layer | top1_same |\n|---|---|\n| 0 | 0.127 |\n| 10 | 0.1\\|2 |\n"
        )
    }
}
