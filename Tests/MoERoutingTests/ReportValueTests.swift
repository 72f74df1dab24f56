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
        let v: ReportValue = ["x": [["k": 1.5, "u": "é \u{1F600}"]], "e": [], "o": [:], "neg": -3, "big": 12345678901234]
        for indent in [0, 2] {
            #expect(try ReportValue.parse(json: v.jsonString(indent: indent)) == v)
        }
        #expect(try ReportValue.parse(json: #"{"s":"\ud83d\ude00"}"#)["s"] == .string("😀"))
    }

    @Test(arguments: ["", "{", "[1,]x", "{\"a\" 1}", "tru", "\"abc", "[1 2]", "{\"a\":1}}"])
    func rejectsBadJSON(text: String) {
        #expect(throws: ReportValue.ParseError.self) { try ReportValue.parse(json: text) }
    }

    @Test func reportRoundTripsThroughValue() throws {
        let report = AnalyzerReport(
            analyzer: "x", title: "X", json: ["a": 1],
            tables: [ReportTable(title: "T", columns: ["c1", "c2"], rows: [["1", "2"]])],
            figures: [
                .heatmap(.init(title: "h", xLabel: "x", yLabel: "y", rowLabels: ["0"], columnLabels: ["0", "1"], values: [[0.5, 1]])),
                .lines(.init(title: "l", xLabel: "d", yLabel: "r", x: [1, 2], series: [.init(name: "chance", values: [0.1, 0.1], dashed: true)])),
                .bars(.init(title: "b", xLabel: "", yLabel: "", labels: ["a"], values: [3], highlighted: [true])),
            ],
            headlines: [.init(label: "m", value: "0.1", reference: "chance 0.125")],
            notes: ["n"]
        )
        let text = report.reportValue.jsonString()
        #expect(try AnalyzerReport(reportValue: ReportValue.parse(json: text)) == report)
    }

    @Test func tablesRenderAsTextAndMarkdown() {
        let t = ReportTable(title: "Rates", columns: ["layer", "top1_same"], rows: [["0", "0.127"], ["10", "0.1|2"]])
        #expect(t.renderText() == "Rates\nlayer  top1_same\n-----  ---------\n0      0.127\n10     0.1|2\n")
        #expect(t.renderMarkdown() == "**Rates**\n\n| layer | top1_same |\n|---|---|\n| 0 | 0.127 |\n| 10 | 0.1\\|2 |\n")
    }
}
