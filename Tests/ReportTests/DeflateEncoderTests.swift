// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERoutingTraces
import Testing

@testable import MoERoutingReport

struct DeflateEncoderTests {
    /// Bytes from a fixed linear congruential generator (noise that does not compress).
    static func noise(_ n: Int, seed: UInt32 = 7) -> [UInt8] {
        var x = seed
        return (0..<n).map { _ in
            x = x &* 1_664_525 &+ 1_013_904_223
            return UInt8(x >> 24)
        }
    }

    @Test func roundTripsThroughInflate() throws {
        let text = Array(String(repeating: "the expert at layer 3 and the expert at layer 4; ", count: 40).utf8)
        var sparse = [UInt8](repeating: 0, count: 70_000)
        for i in Swift.stride(from: 5, to: sparse.count, by: 997) { sparse[i] = UInt8(i % 251) }
        let cases: [[UInt8]] = [[], [42], [1, 2], text, sparse, Self.noise(100_000), Array(0...255) + Array(0...255)]
        for data in cases {
            let z = DeflateEncoder.zlib(data)
            #expect(try Inflate.zlib(z) == data, "\(data.count) bytes")
        }
    }

    @Test func compressesRunsAndRepeatsAndNeverGrowsMuchOnNoise() throws {
        // 65,536 zeros: a literal, then 254 matches of 258 bytes at 13 bits each.
        let zeros = [UInt8](repeating: 0, count: 65_536)
        #expect(DeflateEncoder.zlib(zeros).count < 450)
        let text = Array(String(repeating: "abcdefghij", count: 1000).utf8)
        #expect(DeflateEncoder.zlib(text).count < 200)
        // Noise falls back to stored blocks: 5 bytes per 65,535 plus the zlib header and checksum.
        let noise = Self.noise(200_000)
        let z = DeflateEncoder.zlib(noise)
        #expect(z.count <= noise.count + 5 * 4 + 6)
        #expect(try Inflate.zlib(z) == noise)
    }

    @Test func adlerOfKnownInput() {
        // zlib's adler32("Wikipedia") = 0x11E60398.
        #expect(DeflateEncoder.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(DeflateEncoder.adler32([]) == 1)
    }
}
