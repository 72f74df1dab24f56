// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import AnalysisSupport
import MoERoutingTestKit
import MoERoutingTraces
import Testing

struct CRC32Tests {
    @Test func knownVectors() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        #expect(CRC32.checksum([0]) == 0xD202_EF8D)
        #expect(CRC32.checksum([UInt8](repeating: 0xFF, count: 32)) == 0xFF6C_AB0B)
        #expect(CRC32.checksum([UInt8](repeating: 0, count: 100_000)) == 0xD411_957D)  // zlib.crc32
        #expect(CRC32().value == 0)
    }

    @Test func matchesTheBitwiseDefinitionAtEveryLengthAndAlignment() {
        var rng = SeededRandom(seed: 3)
        let data = (0..<300).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for start in 0..<9 {
            for length in 0...(data.count - start) where length < 40 || length % 7 == 0 {
                let slice = Array(data[start..<(start + length)])
                #expect(
                    CRC32.checksum(slice) == BinaryTestSupport.referenceCRC(slice),
                    "start \(start) length \(length)"
                )
            }
        }
    }

    @Test func largeBuffersTakeTheThreeLanePathAndAgreeWithTheDefinition() {
        var rng = SeededRandom(seed: 9)
        let data = (0..<(3 * 16_384 * 2 + 1000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for length in [3 * 16_384 - 1, 3 * 16_384, 3 * 16_384 + 17, 2 * 3 * 16_384, data.count] {
            let slice = Array(data[0..<length])
            #expect(CRC32.checksum(slice) == BinaryTestSupport.referenceCRC(slice), "length \(length)")
        }
        // Split across the lanes: the running register carries over.
        var c = CRC32()
        c.update(Array(data[0..<7]))
        c.update(Array(data[7..<60_000]))
        c.update(Array(data[60_000...]))
        #expect(c.value == BinaryTestSupport.referenceCRC(data))
    }

    @Test func incrementalUpdatesEqualOneShot() {
        var rng = SeededRandom(seed: 5)
        let data = (0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = CRC32.checksum(data)
        for split in [0, 1, 15, 16, 17, 500, 999, 1000] {
            var c = CRC32()
            c.update(Array(data[..<split]))
            c.update(Array(data[split...]))
            #expect(c.value == whole, "split at \(split)")
        }
        var c = CRC32()
        for b in data { c.update([b]) }
        #expect(c.value == whole)
    }
}
