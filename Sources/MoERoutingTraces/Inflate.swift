// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A small DEFLATE (RFC 1951) and zlib (RFC 1950) decoder (Foundation on Linux has no public
/// zlib API): ``NPZTraceReader`` inflates the members of archives `numpy.savez_compressed`
/// writes, and the report tests the PNG screenshots Chromium writes. Straightforward rather than
/// fast: Huffman codes are decoded bit by bit, as in zlib's `puff.c`. Any input fails cleanly
/// (no trap, no hang), and output beyond a stated limit is refused.
///
/// ```swift
/// let plain = try Inflate.zlib(compressedBytes)
/// let member = try Inflate.raw(deflated, limit: expectedSize)
/// ```
package enum Inflate {
    /// Why a stream could not be decoded.
    package enum Failure: Error, Equatable {
        case truncated
        case badZlibHeader
        case badBlockType
        case badStoredLength
        case badCode
        case badLengths
        case badDistance
        case badChecksum
        /// The output would exceed the limit given.
        case tooLong
    }

    /// Decodes a zlib stream (2-byte header, DEFLATE data, Adler-32 checked).
    package static func zlib(_ data: [UInt8]) throws -> [UInt8] {
        guard data.count >= 6 else { throw Failure.truncated }
        let cmf = Int(data[0])
        let flg = Int(data[1])
        guard cmf & 0x0F == 8, (cmf << 8 | flg) % 31 == 0, flg & 0x20 == 0 else { throw Failure.badZlibHeader }
        var reader = BitReader(data, start: 2)
        let out = try inflate(&reader, limit: .max)
        reader.alignToByte()
        guard reader.byte + 4 <= data.count else { throw Failure.truncated }
        let stored = data[reader.byte..<reader.byte + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard stored == adler32(out) else { throw Failure.badChecksum }
        return out
    }

    /// Decodes raw DEFLATE data (a zip member of method 8), refusing output beyond `limit` bytes.
    package static func raw(_ data: [UInt8], limit: Int = .max) throws -> [UInt8] {
        var reader = BitReader(data, start: 0)
        return try inflate(&reader, limit: limit)
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for x in bytes {
            a = (a + UInt32(x)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }

    // MARK: - Bits

    struct BitReader {
        let data: [UInt8]
        var byte: Int
        var bit = 0

        init(_ data: [UInt8], start: Int) {
            self.data = data
            self.byte = start
        }

        mutating func bits(_ n: Int) throws -> Int {
            var v = 0
            for i in 0..<n {
                guard byte < data.count else { throw Failure.truncated }
                v |= Int((data[byte] >> UInt8(bit)) & 1) << i
                bit += 1
                if bit == 8 {
                    bit = 0
                    byte += 1
                }
            }
            return v
        }

        mutating func alignToByte() {
            if bit != 0 {
                bit = 0
                byte += 1
            }
        }
    }

    // MARK: - Huffman codes

    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int] = []

        init(lengths: [Int]) throws {
            for l in lengths { counts[l] += 1 }
            counts[0] = 0
            var left = 1
            for l in 1..<16 {
                left <<= 1
                left -= counts[l]
                guard left >= 0 else { throw Failure.badLengths }
            }
            var offsets = [Int](repeating: 0, count: 16)
            for l in 1..<15 { offsets[l + 1] = offsets[l] + counts[l] }
            symbols = [Int](repeating: 0, count: lengths.count)
            for (symbol, l) in lengths.enumerated() where l != 0 {
                symbols[offsets[l]] = symbol
                offsets[l] += 1
            }
        }

        func decode(_ r: inout BitReader) throws -> Int {
            var code = 0
            var first = 0
            var index = 0
            for l in 1..<16 {
                code |= try r.bits(1)
                let count = counts[l]
                if code - count < first { return symbols[index + (code - first)] }
                index += count
                first += count
                first <<= 1
                code <<= 1
            }
            throw Failure.badCode
        }
    }

    static let lengthBase = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
        6145, 8193,
        12289, 16385, 24577,
    ]
    static let distanceExtra = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    ]
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    // MARK: - Blocks

    static func inflate(_ r: inout BitReader, limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var last = false
        while !last {
            guard out.count <= limit else { throw Failure.tooLong }
            last = try r.bits(1) == 1
            switch try r.bits(2) {
            case 0:
                r.alignToByte()
                guard r.byte + 4 <= r.data.count else { throw Failure.truncated }
                let len = Int(r.data[r.byte]) | Int(r.data[r.byte + 1]) << 8
                let nlen = Int(r.data[r.byte + 2]) | Int(r.data[r.byte + 3]) << 8
                guard len == ~nlen & 0xFFFF else { throw Failure.badStoredLength }
                r.byte += 4
                guard r.byte + len <= r.data.count else { throw Failure.truncated }
                guard out.count + len <= limit else { throw Failure.tooLong }
                out += r.data[r.byte..<r.byte + len]
                r.byte += len
            case 1:
                let lit = try Huffman(lengths: (0..<288).map { $0 < 144 ? 8 : $0 < 256 ? 9 : $0 < 280 ? 7 : 8 })
                let dist = try Huffman(lengths: [Int](repeating: 5, count: 30))
                try codes(&r, &out, lit, dist, limit: limit)
            case 2:
                let nlen = try r.bits(5) + 257
                let ndist = try r.bits(5) + 1
                let ncode = try r.bits(4) + 4
                var codeLengths = [Int](repeating: 0, count: 19)
                for i in 0..<ncode { codeLengths[codeLengthOrder[i]] = try r.bits(3) }
                let lencode = try Huffman(lengths: codeLengths)
                var lengths: [Int] = []
                while lengths.count < nlen + ndist {
                    let symbol = try lencode.decode(&r)
                    switch symbol {
                    case 0..<16: lengths.append(symbol)
                    case 16:
                        guard let previous = lengths.last else { throw Failure.badLengths }
                        lengths += [Int](repeating: previous, count: 3 + (try r.bits(2)))
                    case 17: lengths += [Int](repeating: 0, count: 3 + (try r.bits(3)))
                    default: lengths += [Int](repeating: 0, count: 11 + (try r.bits(7)))
                    }
                }
                guard lengths.count == nlen + ndist, lengths[256] != 0 else { throw Failure.badLengths }
                try codes(
                    &r,
                    &out,
                    try Huffman(lengths: Array(lengths[0..<nlen])),
                    try Huffman(lengths: Array(lengths[nlen...])),
                    limit: limit
                )
            default:
                throw Failure.badBlockType
            }
        }
        guard out.count <= limit else { throw Failure.tooLong }
        return out
    }

    static func codes(_ r: inout BitReader, _ out: inout [UInt8], _ lit: Huffman, _ dist: Huffman, limit: Int) throws {
        while true {
            guard out.count <= limit else { throw Failure.tooLong }
            let symbol = try lit.decode(&r)
            if symbol < 256 {
                out.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let i = symbol - 257
                guard i < lengthBase.count else { throw Failure.badCode }
                let length = lengthBase[i] + (try r.bits(lengthExtra[i]))
                let d = try dist.decode(&r)
                guard d < distanceBase.count else { throw Failure.badDistance }
                let distance = distanceBase[d] + (try r.bits(distanceExtra[d]))
                guard distance <= out.count else { throw Failure.badDistance }
                let start = out.count - distance
                for k in 0..<length { out.append(out[start + k]) }
            }
        }
    }
}
