// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERoutingTraces

/// A decoded 8-bit, non-interlaced PNG (greyscale, RGB, either with alpha, or palette indices),
/// enough to check the screenshots Chromium writes (size, share of non-white pixels, number of
/// distinct colours) and the report's own palette images (index and colour of each pixel).
///
/// ```swift
/// let image = try PNGImage(bytes: Array(try Data(contentsOf: url)))
/// image.width; image.rgb(x: 0, y: 0)
/// ```
struct PNGImage {
    enum Failure: Error, Equatable {
        case notPNG
        case truncated
        case unsupported(String)
        case badFilter(Int)
    }

    let width: Int
    let height: Int
    /// Samples per pixel: 1 (grey or palette index), 2 (grey, alpha), 3 (RGB), 4 (RGBA).
    let channels: Int
    /// The palette (`PLTE`) of an indexed image, empty otherwise.
    let palette: [(UInt8, UInt8, UInt8)]
    /// Unfiltered samples, row after row.
    let samples: [UInt8]

    init(bytes: [UInt8]) throws {
        guard bytes.count >= 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw Failure.notPNG
        }
        func u32(_ i: Int) -> Int {
            Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
        }
        var i = 8
        var header: [UInt8] = []
        var idat: [UInt8] = []
        var plte: [UInt8] = []
        while i + 8 <= bytes.count {
            let length = u32(i)
            let type = String(decoding: bytes[i + 4..<i + 8], as: UTF8.self)
            guard i + 12 + length <= bytes.count else { throw Failure.truncated }
            let data = bytes[i + 8..<i + 8 + length]
            if type == "IHDR" { header = Array(data) }
            if type == "IDAT" { idat += data }
            if type == "PLTE" { plte = Array(data) }
            if type == "IEND" { break }
            i += 12 + length
        }
        guard header.count == 13 else { throw Failure.truncated }
        let w = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        let h = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        guard header[8] == 8 else { throw Failure.unsupported("bit depth \(header[8])") }
        guard header[12] == 0 else { throw Failure.unsupported("interlaced") }
        let channels: Int
        switch header[9] {
        case 0, 3: channels = 1
        case 2: channels = 3
        case 4: channels = 2
        case 6: channels = 4
        default: throw Failure.unsupported("colour type \(header[9])")
        }
        let raw = try Inflate.zlib(idat)
        let stride = w * channels
        guard raw.count >= h * (stride + 1) else { throw Failure.truncated }
        var out = [UInt8](repeating: 0, count: h * stride)
        for y in 0..<h {
            let filter = Int(raw[y * (stride + 1)])
            let src = y * (stride + 1) + 1
            let dst = y * stride
            for x in 0..<stride {
                let a = x >= channels ? Int(out[dst + x - channels]) : 0
                let b = y > 0 ? Int(out[dst - stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(out[dst - stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let pa = abs(p - a)
                    let pb = abs(p - b)
                    let pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: throw Failure.badFilter(filter)
                }
                out[dst + x] = UInt8((Int(raw[src + x]) + predictor) & 0xFF)
            }
        }
        self.width = w
        self.height = h
        self.channels = channels
        self.samples = out
        self.palette =
            header[9] == 3
            ? Swift.stride(from: 0, to: plte.count - 2, by: 3).map { (plte[$0], plte[$0 + 1], plte[$0 + 2]) } : []
    }

    /// The pixel at (x, y) as red, green, blue (alpha ignored).
    func rgb(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * channels
        if !palette.isEmpty { return palette[Int(samples[i])] }
        return channels >= 3 ? (samples[i], samples[i + 1], samples[i + 2]) : (samples[i], samples[i], samples[i])
    }

    /// The palette index at (x, y) of an indexed image.
    func index(x: Int, y: Int) -> UInt8 { samples[y * width + x] }

    /// Share of pixels that are not (near) white, and the number of distinct colours.
    func colourStatistics() -> (nonWhiteShare: Double, distinctColours: Int) {
        var nonWhite = 0
        var colours = Set<UInt32>()
        for y in 0..<height {
            for x in 0..<width {
                let (r, g, b) = rgb(x: x, y: y)
                if r < 245 || g < 245 || b < 245 { nonWhite += 1 }
                colours.insert(UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b))
            }
        }
        return (Double(nonWhite) / Double(max(width * height, 1)), colours.count)
    }
}
