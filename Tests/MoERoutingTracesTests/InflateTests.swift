// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERoutingTraces
import Testing

/// Streams made by Python's zlib (`zlib.compress(data, level)`), one per DEFLATE block type.
struct InflateTests {
    static func bytes(_ base64: String) throws -> [UInt8] { Array(try #require(Data(base64Encoded: base64))) }

    @Test func storedBlock() throws {
        let out = try Inflate.zlib(try Self.bytes("eAEBFQDq/3N0b3JlZCBibG9jaywgbGV2ZWwgMFeZB3E="))
        #expect(String(decoding: out, as: UTF8.self) == "stored block, level 0")
    }

    @Test func fixedHuffmanBlock() throws {
        let out = try Inflate.zlib(try Self.bytes("eNrLSM3JyVfIQJA6Cpl5aTmJJamKAIx9Cc0="))
        #expect(String(decoding: out, as: UTF8.self) == "hello hello hello, inflate!")
    }

    @Test func dynamicHuffmanBlock() throws {
        let compressed = try Self.bytes(
            "eNrt07FtxTAMQME+U2SEL1GixIFSBPjI/mUQ+NRlBFWEWbwDbPP9/fP1+fp4/431jDae2Zu5nxnzmaOb9cyZz8yQOTm9rVd6pWfdrJt1xwQmMAMzMYlJzNLbeluv9M7ak22ndEpQBmVSJiUpS27pbb3Sq/NycNbNumMCMzADMzGJSczS23pbr/SOTjtbSlCCMiiTMilJWXJLb+uVXnudb+DZvlt3TnAGZ3AmJznJWXpbr/Tq9A5vWndMYOL8aJiJmZjELL2tt/VK757HPY97Hvc87nnc8/jvPH4BIc+YCA=="
        )
        let expected = (0..<300).map { "line \($0 * 7 % 101)" }.joined(separator: "\n")
        #expect(try Inflate.zlib(compressed) == Array(expected.utf8))
    }

    @Test func rejectsDamagedStreams() throws {
        let good = try Self.bytes("eNrLSM3JyVfIQJA6Cpl5aTmJJamKAIx9Cc0=")
        #expect(throws: Inflate.Failure.truncated) { try Inflate.zlib(Array(good.prefix(10))) }
        #expect(throws: Inflate.Failure.badZlibHeader) { try Inflate.zlib([0x78, 0x00] + good.dropFirst(2)) }
        var flipped = good
        flipped[flipped.count - 1] ^= 1
        #expect(throws: Inflate.Failure.badChecksum) { try Inflate.zlib(flipped) }
        #expect(throws: Inflate.Failure.badBlockType) { try Inflate.raw([0x07]) }
        // Random bytes fail cleanly (no trap, no hang).
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let junk = (0..<64).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? Inflate.raw(junk)
        }
    }

    @Test func refusesOutputBeyondTheLimit() throws {
        // "hello hello hello, inflate!" is 27 bytes: a limit of 10 stops it, 27 lets it through.
        let deflated = Array(try Self.bytes("eNrLSM3JyVfIQJA6Cpl5aTmJJamKAIx9Cc0=").dropFirst(2).dropLast(4))
        #expect(throws: Inflate.Failure.tooLong) { try Inflate.raw(deflated, limit: 10) }
        #expect(try Inflate.raw(deflated, limit: 27).count == 27)
    }
}
