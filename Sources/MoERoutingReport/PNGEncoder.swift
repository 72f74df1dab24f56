// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A minimal PNG writer (8-bit RGB, or 8-bit palette indices with a palette of up to 256
/// colours; compressed by ``DeflateEncoder``) and Base64, without Foundation. Very large heatmaps
/// are embedded as one pixel per cell in a `data:` URI rather than one SVG rectangle per cell,
/// which keeps such reports small and fast to open while staying self-contained.
///
/// ```swift
/// let png = PNGEncoder.encode(width: 2, height: 1, rgb: [255, 0, 0, 0, 0, 255])
/// let uri = "data:image/png;base64," + PNGEncoder.base64(png)
/// let indexed = PNGEncoder.encodeIndexed(width: 2, height: 1, indices: [0, 1], palette: [(0, 0, 0), (255, 255, 255)])
/// ```
enum PNGEncoder {
    /// A PNG of `width` × `height` pixels from `rgb` (3 bytes per pixel, rows top to bottom);
    /// missing bytes read as black.
    static func encode(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            raw.append(0)  // filter: none
            for i in 0..<(width * 3) {
                let k = y * width * 3 + i
                raw.append(k < rgb.count ? rgb[k] : 0)
            }
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
        out += chunk("IDAT", DeflateEncoder.zlib(raw))
        out += chunk("IEND", [])
        return out
    }

    /// A PNG of `width` × `height` palette indices (colour type 3, one byte per pixel, rows top
    /// to bottom; missing indices read as 0) with `palette` (at most 256 colours). Each row is
    /// stored unfiltered, so runs of one index stay runs for the compressor.
    static func encodeIndexed(width: Int, height: Int, indices: [UInt8], palette: [(UInt8, UInt8, UInt8)]) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width + 1))
        for y in 0..<height {
            raw.append(0)  // filter: none
            let start = min(y * width, indices.count)
            let end = min(start + width, indices.count)
            raw += indices[start..<end]
            if end - start < width { raw += [UInt8](repeating: 0, count: width - (end - start)) }
        }
        var plte: [UInt8] = []
        for (r, g, b) in palette.prefix(256) { plte += [r, g, b] }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(width) + be32(height) + [8, 3, 0, 0, 0])
        out += chunk("PLTE", plte)
        out += chunk("IDAT", DeflateEncoder.zlib(raw))
        out += chunk("IEND", [])
        return out
    }

    /// Standard Base64 with padding.
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i])
            let b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
            out.append(i + 1 < bytes.count ? alphabet[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Pieces

    static func be32(_ v: Int) -> [UInt8] {
        [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(data.count) + body + be32(Int(crc32(body)))
    }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for x in bytes { c = crcTable[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
