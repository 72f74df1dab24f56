// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A small DEFLATE compressor (RFC 1951) inside a zlib stream (RFC 1950), without Foundation or
/// a C library: LZ77 over a 32 KiB window with hash chains, coded with the fixed Huffman codes.
/// It is made for the report's heatmap images, whose rows are long runs of one palette index
/// (sparse matrices are mostly zeros), so a run costs a few bits per 258 bytes. Where the
/// compressed block would be larger than the input (noise), stored blocks are written instead.
///
/// ```swift
/// let z = DeflateEncoder.zlib(Array(repeating: 0, count: 65_536))   // about 40 bytes
/// ```
enum DeflateEncoder {
    /// `data` as a zlib stream: header, one fixed-Huffman block (or stored blocks when smaller),
    /// Adler-32.
    ///
    /// - Complexity: O(n × ``maxChain``) in the worst case, O(n) on runs.
    static func zlib(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        let fixed = fixedBlock(data)
        if fixed.count < data.count + 5 * (data.count / 65_535 + 1) {
            out += fixed
        } else {
            out += storedBlocks(data)
        }
        return out + PNGEncoder.be32(Int(adler32(data)))
    }

    /// How many earlier positions with the same 3-byte hash are tried for a match.
    static let maxChain = 24

    // MARK: - Blocks

    /// Stored (uncompressed) blocks of at most 65,535 bytes, the last one final.
    static func storedBlocks(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 5 * (data.count / 65_535 + 1))
        var start = 0
        repeat {
            let n = min(65_535, data.count - start)
            let last = start + n >= data.count
            out.append(last ? 1 : 0)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[start..<start + n]
            start += n
        } while start < data.count
        return out
    }

    /// One final block with the fixed Huffman codes.
    static func fixedBlock(_ data: [UInt8]) -> [UInt8] {
        var bits = BitWriter()
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE = 01, fixed codes
        let n = data.count
        let windowSize = 32_768
        let hashSize = 1 << 15
        var head = [Int32](repeating: -1, count: hashSize)
        var previous = [Int32](repeating: -1, count: windowSize)
        data.withUnsafeBufferPointer { bytes in
            func hash(_ i: Int) -> Int {
                (Int(bytes[i]) << 10 ^ Int(bytes[i + 1]) << 5 ^ Int(bytes[i + 2])) & (hashSize - 1)
            }
            func insert(_ i: Int) {
                guard i + 2 < n else { return }
                let h = hash(i)
                previous[i & (windowSize - 1)] = head[h]
                head[h] = Int32(i)
            }
            var i = 0
            while i < n {
                var bestLength = 0
                var bestDistance = 0
                if i + 2 < n {
                    let limit = min(258, n - i)
                    // A run of the previous byte: distance 1 is the longest possible match.
                    if i > 0 && bytes[i - 1] == bytes[i] {
                        var l = 0
                        while l < limit && bytes[i + l] == bytes[i - 1] { l += 1 }
                        bestLength = l
                        bestDistance = 1
                    }
                    var candidate = Int(head[hash(i)])
                    var chain = 0
                    while candidate >= 0 && i - candidate <= windowSize && chain < maxChain && bestLength < limit {
                        if bytes[candidate + bestLength] == bytes[i + bestLength] || bestLength < 3 {
                            var l = 0
                            while l < limit && bytes[candidate + l] == bytes[i + l] { l += 1 }
                            if l > bestLength {
                                bestLength = l
                                bestDistance = i - candidate
                            }
                        }
                        let next = Int(previous[candidate & (windowSize - 1)])
                        if next >= candidate { break }
                        candidate = next
                        chain += 1
                    }
                }
                if bestLength >= 3 {
                    bits.writeLength(bestLength)
                    bits.writeDistance(bestDistance)
                    // Index the first positions of the match (enough for runs and repeats).
                    for j in i..<min(i + bestLength, i + 4) { insert(j) }
                    i += bestLength
                } else {
                    bits.writeLiteral(Int(bytes[i]))
                    insert(i)
                    i += 1
                }
            }
        }
        bits.writeLiteral(256)  // end of block
        return bits.finish()
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        var i = 0
        while i < data.count {
            // 5,552 bytes keep the sums below 2^32 before the modulo (zlib's NMAX).
            let end = min(i + 5_552, data.count)
            while i < end {
                a += UInt32(data[i])
                b += a
                i += 1
            }
            a %= 65_521
            b %= 65_521
        }
        return b << 16 | a
    }

    // MARK: - Fixed Huffman codes

    static let lengthBases: [Int] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ]
    static let lengthExtraBits: [Int] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ]
    static let distanceBases: [Int] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
        6145, 8193, 12289, 16385, 24577,
    ]
    static let distanceExtraBits: [Int] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    ]

    /// Bits written least significant first; Huffman codes most significant bit first, as
    /// DEFLATE packs them.
    struct BitWriter {
        private var bytes: [UInt8] = []
        private var buffer: UInt64 = 0
        private var filled = 0

        mutating func write(_ value: Int, count: Int) {
            buffer |= UInt64(value) << UInt64(filled)
            filled += count
            while filled >= 8 {
                bytes.append(UInt8(buffer & 0xFF))
                buffer >>= 8
                filled -= 8
            }
        }

        /// A Huffman code of `length` bits, most significant bit first.
        mutating func writeCode(_ code: Int, length: Int) {
            var reversed = 0
            for b in 0..<length where code >> b & 1 != 0 { reversed |= 1 << (length - 1 - b) }
            write(reversed, count: length)
        }

        /// A literal byte (0-255) or the end-of-block symbol (256) or a length symbol (257-287).
        mutating func writeLiteral(_ symbol: Int) {
            switch symbol {
            case 0...143: writeCode(0x30 + symbol, length: 8)
            case 144...255: writeCode(0x190 + symbol - 144, length: 9)
            case 256...279: writeCode(symbol - 256, length: 7)
            default: writeCode(0xC0 + symbol - 280, length: 8)
            }
        }

        mutating func writeLength(_ length: Int) {
            var code = lengthBases.count - 1
            while lengthBases[code] > length { code -= 1 }
            writeLiteral(257 + code)
            if lengthExtraBits[code] > 0 { write(length - lengthBases[code], count: lengthExtraBits[code]) }
        }

        mutating func writeDistance(_ distance: Int) {
            var code = distanceBases.count - 1
            while distanceBases[code] > distance { code -= 1 }
            writeCode(code, length: 5)
            if distanceExtraBits[code] > 0 { write(distance - distanceBases[code], count: distanceExtraBits[code]) }
        }

        /// The bytes written, the last one padded with zero bits.
        mutating func finish() -> [UInt8] {
            if filled > 0 { bytes.append(UInt8(buffer & 0xFF)) }
            buffer = 0
            filled = 0
            return bytes
        }
    }
}
