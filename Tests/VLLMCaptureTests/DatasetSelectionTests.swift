// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The `--dataset` strings as the library reads them (DatasetSelection), without Python.

import Testing
import VLLMCapture

@Suite struct DatasetSelectionTests {
    @Test func noDatasetMeansTheBuiltInSamplesWithTheSlice() throws {
        let specs = try DatasetSelection(numProblems: 3, offset: 1).specs(samples: { "/samples/\($0).jsonl" })
        #expect(specs.map(\.name) == DatasetSpec.builtinNames)
        #expect(specs.map(\.file) == DatasetSpec.builtinNames.map { "/samples/\($0).jsonl" })
        #expect(specs.allSatisfy { $0.numProblems == 3 && $0.offset == 1 })
    }

    @Test func eachFormIsReadAndItsFilesAreInputs() throws {
        let selection = DatasetSelection(
            ["humaneval=data/he.jsonl", "gsm8k", "jsonl:prompts/mine.jsonl"],
            promptField: "text",
            numProblems: 2
        )
        let specs = try selection.specs(samples: { _ in
            Issue.record("no sample asked for")
            return ""
        })
        #expect(specs.map(\.name) == ["humaneval", "gsm8k", "jsonl:prompts/mine.jsonl"])
        #expect(specs.map(\.file) == ["data/he.jsonl", nil, nil])
        #expect(specs.map(\.domain) == ["humaneval", "gsm8k", "mine"])
        #expect(specs.allSatisfy { $0.promptField == "text" && $0.numProblems == 2 })
        #expect(selection.inputFiles == ["data/he.jsonl", "prompts/mine.jsonl"])
    }

    @Test func badValuesNameTheValueAndTheFix() {
        func message(_ arguments: [String], numProblems: Int? = nil) -> String {
            do {
                _ = try DatasetSelection(arguments, numProblems: numProblems).specs(samples: { $0 })
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(
            message(["mbpp=x.jsonl"])
                == "--dataset mbpp=x.jsonl: NAME=PATH takes NAME humaneval or gsm8k; for another JSONL file use jsonl:PATH"
        )
        #expect(message(["gsm8k="]) == "--dataset gsm8k=: give the file after '=', as in gsm8k=data/gsm8k.jsonl")
        #expect(message(["mbpp"]).contains("humaneval, gsm8k or jsonl:PATH"))
        #expect(message([], numProblems: 0).contains("--num-problems must be a positive integer"))
    }
}
