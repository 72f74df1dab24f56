// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting
import Testing

/// `ModelShape.stated`: a preset, all three dimensions, or nothing; every other combination is a
/// one-line error that says what to give.
struct ModelShapeStatementTests {
    @Test func aPresetOrThreeDimensionsOrNothing() throws {
        #expect(try ModelShape.stated(preset: "mixtral-8x7b", layers: nil, experts: nil, topK: nil) == .mixtral8x7B)
        let stated = try #require(try ModelShape.stated(preset: nil, layers: 3, experts: 9, topK: 2))
        #expect(stated.layers == 3 && stated.experts == 9 && stated.topK == 2)
        #expect(try ModelShape.stated(preset: nil, layers: nil, experts: nil, topK: nil) == nil)
    }

    @Test func everyOtherCombinationSaysWhatToGive() {
        func message(_ preset: String?, _ l: Int?, _ e: Int?, _ k: Int?) -> String? {
            do {
                _ = try ModelShape.stated(preset: preset, layers: l, experts: e, topK: k)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(message("mixtral-8x7b", 4, nil, nil) == "give either --shape or --layers/--experts/--top-k, not both")
        #expect(message(nil, 4, 8, nil) == "--layers, --experts and --top-k go together: give all three, or --shape")
        let unknown = message("mixtral", nil, nil, nil)
        #expect(unknown?.hasPrefix("unknown --shape 'mixtral'; known: ") == true)
        #expect(unknown?.contains("mixtral-8x7b") == true)
        // k above E: the dimensions' own error, on one line.
        let tooMany = message(nil, 4, 2, 3)
        #expect(tooMany != nil && tooMany?.contains("\n") == false)
    }
}
