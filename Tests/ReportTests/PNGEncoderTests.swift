// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

@testable import MoERoutingReport

struct PNGEncoderTests {
    @Test func roundTripsThroughTheTestDecoder() throws {
        // 300 x 250 RGB: 225,000 bytes of pixels, so the data spans several stored blocks.
        let w = 300
        let h = 250
        var rgb: [UInt8] = []
        for i in 0..<(w * h) {
            rgb.append(UInt8(i % 251))
            rgb.append(UInt8(i / w % 256))
            rgb.append(UInt8(i * 7 % 256))
        }
        let image = try PNGImage(bytes: PNGEncoder.encode(width: w, height: h, rgb: rgb))
        #expect(image.width == w && image.height == h && image.channels == 3)
        #expect(image.samples == rgb)
    }

    @Test func base64MatchesFoundation() {
        for n in 0..<8 {
            let bytes = (0..<n).map { UInt8(($0 * 97 + 13) % 256) }
            #expect(PNGEncoder.base64(bytes) == Data(bytes).base64EncodedString())
        }
    }

    @Test func crcOfKnownInput() {
        // The standard check value of CRC-32.
        #expect(PNGEncoder.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
