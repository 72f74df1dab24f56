// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

struct PNGImageTests {
    /// A 4 × 5 RGB PNG written by Python (zlib + struct), row y filtered with filter type y
    /// (none, sub, up, average, Paeth); pixel (x, y) = ((60x + 13y) % 256, (50y + 7x) % 256, 20xy % 256).
    static let png =
        "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAFCAIAAADtz9qMAAAAQElEQVR42mNgYGCwYWeo4GPYIsrAyGsE5IhAEBOQw2skwmukwWtkwyyVwqAqq6Eqa6Qqa8MCkmEX4WXX4GW3AQDrkgciryQ++QAAAABJRU5ErkJggg=="

    @Test func decodesEveryFilterType() throws {
        let image = try PNGImage(bytes: Array(try #require(Data(base64Encoded: Self.png))))
        #expect(image.width == 4 && image.height == 5 && image.channels == 3)
        for y in 0..<5 {
            for x in 0..<4 {
                let (r, g, b) = image.rgb(x: x, y: y)
                #expect(
                    Int(r) == (x * 60 + y * 13) % 256 && Int(g) == (y * 50 + x * 7) % 256
                        && Int(b) == (x * y * 20) % 256,
                    "pixel \(x),\(y)"
                )
            }
        }
        let stats = image.colourStatistics()
        #expect(stats.distinctColours == 20)
        #expect(stats.nonWhiteShare == 1)
    }

    @Test func rejectsWhatIsNotPNG() {
        #expect(throws: PNGImage.Failure.notPNG) { try PNGImage(bytes: Array("GIF89a..".utf8)) }
        #expect(throws: PNGImage.Failure.truncated) {
            try PNGImage(bytes: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        }
    }
}
