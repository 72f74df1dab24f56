// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing
import VLLMCapture

@Suite struct CaptureRecorderTests {
    private func block(problem: Int64, positions: [Int32]) throws -> RoutingBlock {
        let shape = try ModelShape(layers: 2, experts: 4, topK: 2)
        var b = RoutingBlockBuilder(shape: shape, domains: ["gsm8k"])
        for p in positions {
            let t = try b.appendToken(
                TokenMetadata(
                    domain: "gsm8k",
                    problemID: problem,
                    position: p,
                    phase: p < 2 ? .prefill : .decode,
                    tokenID: 7
                )
            )
            for l in 0..<2 { try b.setCell(token: t, layer: l, experts: [l, 3], weights: [0.25, 0.75]) }
        }
        return b.makeBlock()
    }

    @Test func writesBlocksOutputsAndTimingsAsRequestsFinish() throws {
        let dir = try CaptureTestEnvironment.temporaryDirectory("recorder")
        let shape = try ModelShape(layers: 2, experts: 4, topK: 2)
        let writer = try BinaryTraceWriter(path: dir + "/t.moetrace", shape: shape)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]), sinks: [writer])
        try dispatcher.begin(AnalysisContext(shape: shape))
        let recorder = try CaptureRecorder(
            dispatcher: dispatcher,
            outputsPath: dir + "/o.jsonl",
            timingsPath: dir + "/t.jsonl",
            showsProgress: false
        )
        let problem = Problem(domain: "gsm8k", problemID: 5, prompt: "Q \"quoted\" / slash", sourceID: "gsm8k/5")
        let output = GenerationOutput(
            index: 0,
            problem: problem,
            promptTokenIDs: [1, 2],
            tokenIDs: [3, 4],
            text: "A\n",
            finishReason: "length"
        )
        try recorder.requestFinished(
            RequestRouting(
                index: 0,
                block: try block(problem: 5, positions: [0, 1, 2]),
                expectedPositions: 3,
                unroutedPositions: []
            ),
            output: output
        )
        // A partial request (run stopped): its block is written, no output line.
        try recorder.requestFinished(
            RequestRouting(
                index: 1,
                block: try block(problem: 6, positions: [0]),
                expectedPositions: 1,
                unroutedPositions: []
            ),
            output: nil
        )
        // An empty block is skipped.
        try recorder.requestFinished(
            RequestRouting(
                index: 2,
                block: RoutingBlock.empty(shape: shape),
                expectedPositions: 0,
                unroutedPositions: []
            ),
            output: nil
        )
        try recorder.stepEnded(StepTiming(step: 3, rows: 9, routingNanoseconds: [1, 2], moeNanoseconds: [10, 20]))
        #expect(
            !recorder.progress(
                CaptureProgress(
                    finished: 0,
                    total: 1,
                    generatedTokens: 0,
                    routedRows: 0,
                    seconds: 0,
                    remainingTokenBudget: 1
                )
            )
        )
        try recorder.close()
        try writer.close()
        #expect(recorder.finishedRequests == 1)
        #expect(recorder.partialRequests == 2)
        #expect(dispatcher.statistics.tokens == 4)

        let lines = try String(contentsOfFile: dir + "/o.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["domain"] as? String == "gsm8k")
        #expect(object["problem_id"] as? Int == 5)
        #expect(object["source_id"] as? String == "gsm8k/5")
        #expect(object["prompt"] as? String == "Q \"quoted\" / slash")
        #expect(object["text"] as? String == "A\n")
        #expect(object["token_ids"] as? [Int] == [3, 4])
        #expect(object["prompt_token_ids"] as? [Int] == [1, 2])
        #expect(object["finish_reason"] as? String == "length")
        let timing = try String(contentsOfFile: dir + "/t.jsonl", encoding: .utf8)
        #expect(timing == #"{"moe_ns":[10,20],"routing_ns":[1,2],"rows":9,"step":3}"# + "\n")

        let reader = try BinaryTraceReader(path: dir + "/t.moetrace")
        var problems: [Int64] = []
        while let b = try reader.nextBlock() { problems += b.problemID }
        #expect(problems == [5, 5, 5, 6])
        #expect(reader.isComplete)
    }

    @Test func anUncreatableOutputFileIsAClearError() throws {
        let shape = try ModelShape(layers: 1, experts: 2, topK: 1)
        let dispatcher = AnalysisDispatcher(analyzers: MultiplexAnalyzer([]))
        do {
            _ = try CaptureRecorder(
                dispatcher: dispatcher,
                outputsPath: "/nonexistent-dir/o.jsonl",
                showsProgress: false
            )
            Issue.record("created a file in a missing directory")
        } catch let error as CaptureError {
            #expect(error.description.contains("/nonexistent-dir/o.jsonl"))
        }
        _ = shape
    }
}
