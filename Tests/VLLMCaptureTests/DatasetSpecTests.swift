// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing
import VLLMCapture

@Suite struct DatasetSpecTests {
    @Test func domainsComeFromTheNameOrTheFile() throws {
        #expect(try DatasetSpec(name: "humaneval").domain == "humaneval")
        #expect(try DatasetSpec(name: "gsm8k", file: "/data/gsm8k_test.jsonl").domain == "gsm8k")
        #expect(try DatasetSpec(name: "jsonl:/data/my.prompts.jsonl").domain == "my.prompts")
        #expect(try DatasetSpec(name: "jsonl:prompts").domain == "prompts")
        #expect(try DatasetSpec(name: "jsonl:dir/.hidden").domain == ".hidden")
    }

    @Test func badSpecificationsAreRefusedWithTheFix() {
        func message(_ body: () throws -> DatasetSpec) -> String {
            do {
                _ = try body()
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(message { try DatasetSpec(name: "mbpp") }.contains("humaneval, gsm8k or jsonl:PATH"))
        #expect(message { try DatasetSpec(name: "jsonl:") }.contains("needs a path"))
        #expect(message { try DatasetSpec(name: "jsonl:a.jsonl", file: "b.jsonl") }.contains("--dataset NAME=PATH"))
        #expect(message { try DatasetSpec(name: "gsm8k", numProblems: -1) }.contains("--num-problems"))
        #expect(message { try DatasetSpec(name: "gsm8k", offset: -2) }.contains("--offset"))
    }

    @Test func engineOptionsAreChecked() throws {
        var c = EngineConfiguration(model: "m")
        try c.validate()
        #expect(c.settings["engine.decoding"] == "greedy")
        #expect(c.settings["engine.max_tokens"] == "256")
        #expect(c.settings["engine.prefix_caching"] == "false")
        c.temperature = 0.7
        #expect(c.settings["engine.decoding"] == "sampled(temperature=0.7, top_p=1.0)")
        for bad in [
            { (c: inout EngineConfiguration) in c.maxTokens = 0 },
            { $0.maxConcurrentSequences = 0 },
            { $0.maxModelLength = 1 },
            { $0.topP = 0 },
            { $0.temperature = -1 },
            { $0.kvCacheGiB = 0 },
            { $0.model = "" },
        ] {
            var d = EngineConfiguration(model: "m")
            bad(&d)
            #expect(throws: CaptureError.self) { try d.validate() }
        }
    }
}
