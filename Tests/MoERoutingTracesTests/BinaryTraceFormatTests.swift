// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct BinaryTraceFormatTests {
    typealias S = BinaryTestSupport

    @Test func constantsMatchTheDocumentation() throws {
        #expect(BinaryTraceFormat.magic == Array("\u{89}MOETRC\n".unicodeScalars.map { UInt8($0.value) }))
        #expect(BinaryTraceFormat.fileExtension == "moetrace")
        #expect(BinaryTraceFormat.currentMajorVersion == 1)
        #expect(BinaryTraceFormat.currentMinorVersion == 1)
        let doc = try String(contentsOfFile: S.packageRoot + "/docs/trace-format.md", encoding: .utf8)
        #expect(doc.contains("magic `89 4D 4F 45 54 52 43 0A`"))
        #expect(doc.contains("`123456789` is `0xCBF43926`"))
    }

    /// The Python reader in docs/trace-format.md, between its markers.
    static func documentedPythonReader() throws -> String {
        let doc = try String(contentsOfFile: S.packageRoot + "/docs/trace-format.md", encoding: .utf8)
        guard let begin = doc.range(of: "<!-- python-moetrace-reader:begin -->\n```python\n"),
            let end = doc.range(of: "```\n<!-- python-moetrace-reader:end -->")
        else { throw TraceFileError(path: "docs/trace-format.md", message: "python reader markers not found") }
        return String(doc[begin.upperBound..<end.lowerBound])
    }

    @Test func documentedPythonReaderReadsWhatTheWriterWrote() throws {
        let snippet = try Self.documentedPythonReader()
        #expect(snippet.contains("def read_moetrace(path)"))
        guard let python = S.pythonWithNumpy else {
            print(
                "skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, /usr/bin/python3, python3 on PATH)"
            )
            return
        }
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        try snippet.write(toFile: dir + "/moetrace_reader.py", atomically: true, encoding: .utf8)
        let check = """
            import json, sys
            import numpy as np
            sys.path.insert(0, sys.argv[3])
            from moetrace_reader import read_moetrace
            header, a, end = read_moetrace(sys.argv[1])
            exp = json.load(open(sys.argv[2]))
            T = len(exp["phase"])
            assert (header["layers"], header["experts"], header["top_k"]) == tuple(exp["shape"]), header
            assert header["name"] == "tiny-mixtral" and header["settings"] == {"engine": "test"}, header
            assert header["domains"] == exp["domains"], header["domains"]
            assert a["ids"].shape == (T, exp["shape"][0], exp["shape"][2]), a["ids"].shape
            assert a["mask"].shape == (T, exp["shape"][0]) and a["mask"].dtype == bool
            for key in ["ids", "weights", "mask", "domain", "problem_id", "position", "phase", "token_id"]:
                got = a[key].ravel()
                want = np.array(exp[key]).astype(got.dtype)
                assert got.shape == want.shape and np.array_equal(got, want), (key, got, want)
            assert list(end or []) == exp["end"], end
            print("OK", T)
            """
        try check.write(toFile: dir + "/check.py", atomically: true, encoding: .utf8)
        let blocks = try S.sampleBlocks()
        let full = try S.writeTrace(blocks, to: dir + "/t.moetrace")
        let domains = ["humaneval", "gsm8k", "mbpp"]
        func expect(_ trace: String, _ blocks: [RoutingBlock], end: [Int]) throws {
            var json = S.expectedJSON(blocks, domains: domains)
            json.removeLast()
            json += ", \"shape\": [4, 8, 2], \"end\": \(S.json(end))}"
            try json.write(toFile: dir + "/expected.json", atomically: true, encoding: .utf8)
            let (status, output) = try S.runProcess(python, [dir + "/check.py", trace, dir + "/expected.json", dir])
            #expect(status == 0, "\(output)")
            #expect(output.hasPrefix("OK \(blocks.map(\.tokenCount).reduce(0, +))"), "\(output)")
        }
        try expect(full, blocks, end: [3, 9, 28])
        // Cut inside the third block: the snippet stops quietly after two blocks.
        let bytes = try S.bytes(full)
        let third = S.chunks(bytes).chunks[5]
        try S.write(Array(bytes[..<(third.offset + 100)]), to: dir + "/cut.moetrace")
        try expect(dir + "/cut.moetrace", Array(blocks[0..<2]), end: [])
    }
}
