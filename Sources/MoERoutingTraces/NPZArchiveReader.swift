// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Reading a NumPy .npz archive: the zip central directory (zip64 included), members stored or
// deflate-compressed (numpy.savez / numpy.savez_compressed), and .npy arrays of little- or
// big-endian booleans, integers, floats and unicode strings. References as in NPZArchive.swift.

/// One `.npy` array: its dtype, shape and raw data bytes (C order).
struct NPYArray {
    /// The dtype's kind: `b` bool, `i` signed, `u` unsigned, `f` float, `U` unicode.
    let kind: Character
    /// Bytes per element (for `U`, 4 per character).
    let itemSize: Int
    /// Whether multi-byte elements are big-endian.
    let bigEndian: Bool
    /// The array shape; `[]` for a 0-d array.
    let shape: [Int]
    /// The data bytes, `count * itemSize` of them.
    let data: [UInt8]
    /// The dtype as written, for messages.
    let descr: String

    /// Elements in the array.
    let count: Int

    /// Parses a `.npy` file's bytes.
    ///
    /// - Throws: a message naming what is wrong (not a .npy file, an unsupported dtype, Fortran
    ///   order, too few data bytes).
    init(npy b: [UInt8]) throws(NPZProblem) {
        guard b.count >= 10, b[0] == 0x93, Array(b[1..<6]) == Array("NUMPY".utf8) else {
            throw NPZProblem("is not a .npy array (no \\x93NUMPY magic)")
        }
        let major = b[6]
        let headerLength: Int
        let start: Int
        switch major {
        case 1:
            headerLength = Int(b[8]) | Int(b[9]) << 8
            start = 10
        case 2, 3:
            guard b.count >= 12 else { throw NPZProblem("ends inside its .npy header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            start = 12
        default:
            throw NPZProblem("is a .npy array of format version \(major), but only 1.x to 3.x are known")
        }
        guard start + headerLength <= b.count else { throw NPZProblem("ends inside its .npy header") }
        let dict = String(decoding: b[start..<(start + headerLength)], as: UTF8.self)
        func value(_ key: String) throws(NPZProblem) -> Substring {
            guard let k = dict.firstRange(of: "'\(key)'") ?? dict.firstRange(of: "\"\(key)\""),
                let colon = dict[k.upperBound...].firstIndex(of: ":")
            else { throw NPZProblem("has a .npy header without '\(key)': \(dict)") }
            return dict[dict.index(after: colon)...].drop { $0 == " " }
        }
        let d = try value("descr")
        guard let quote = d.first, quote == "'" || quote == "\"",
            let end = d.dropFirst().firstIndex(of: quote)
        else { throw NPZProblem("has a .npy dtype that is not a simple type string (a structured array?): \(dict)") }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        if try value("fortran_order").hasPrefix("True") {
            throw NPZProblem("is stored in Fortran order; save it C-ordered (numpy.ascontiguousarray)")
        }
        let s = try value("shape")
        guard s.first == "(", let close = s.firstIndex(of: ")") else {
            throw NPZProblem("has a .npy header with an unreadable shape: \(dict)")
        }
        var dims: [Int] = []
        for part in s[s.index(after: s.startIndex)..<close].split(separator: ",") {
            let t = part.trimmed()
            guard !t.isEmpty else { continue }
            guard let n = Int(t), n >= 0 else {
                throw NPZProblem("has a .npy header with an unreadable shape: \(dict)")
            }
            dims.append(n)
        }
        var rest = Substring(descr)
        var big = false
        if let o = rest.first, "<>|=".contains(o) {
            big = o == ">"
            rest = rest.dropFirst()
        }
        guard let kind = rest.first, "biufU".contains(kind), let size = Int(rest.dropFirst()), size > 0 else {
            throw NPZProblem(
                "has dtype '\(descr)', which a trace cannot hold (booleans, integers, floats or unicode strings)"
            )
        }
        let item = kind == "U" ? 4 * size : size
        let count = dims.reduce(1) { a, n in a.multipliedReportingOverflow(by: n).overflow ? .max : a * n }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: item)
        let dataStart = start + headerLength
        guard !overflow, bytes <= b.count - dataStart else {
            throw NPZProblem(
                "holds \(b.count - dataStart) data bytes, fewer than its shape \(dims) of '\(descr)' needs"
            )
        }
        self.kind = kind
        self.count = count
        self.itemSize = item
        self.bigEndian = big && item > 1
        self.shape = dims
        self.data = Array(b[dataStart..<(dataStart + bytes)])
        self.descr = descr
    }

    /// The elements as integers (bool, signed or unsigned of 1, 2, 4 or 8 bytes).
    func integers() throws(NPZProblem) -> [Int64] {
        guard "biu".contains(kind), [1, 2, 4, 8].contains(itemSize) else {
            throw NPZProblem("has dtype '\(descr)', but an integer array is needed")
        }
        let n = count
        let size = itemSize
        let big = bigEndian
        let signed = kind == "i"
        var out = [Int64](repeating: 0, count: n)
        var tooLarge = false
        data.withUnsafeBytes { raw in
            for i in 0..<n {
                var u: UInt64 = 0
                let base = i * size
                for j in 0..<size {
                    let byte = UInt64(raw[big ? base + j : base + size - 1 - j])
                    u = u << 8 | byte
                }
                if signed && size < 8 && u >> (UInt64(size) * 8 - 1) & 1 == 1 {
                    u |= ~UInt64(0) << (UInt64(size) * 8)  // sign-extend
                }
                if !signed && size == 8 && u > UInt64(Int64.max) { tooLarge = true }
                out[i] = Int64(bitPattern: u)
            }
        }
        if tooLarge { throw NPZProblem("holds an unsigned value above \(Int64.max)") }
        return out
    }

    /// The elements as floating-point numbers (`f4` or `f8`; `f2` too).
    func floats() throws(NPZProblem) -> [Float] {
        guard kind == "f", [2, 4, 8].contains(itemSize) else {
            throw NPZProblem("has dtype '\(descr)', but a floating-point array (float32 or float64) is needed")
        }
        let n = count
        let size = itemSize
        let big = bigEndian
        var out = [Float](repeating: 0, count: n)
        data.withUnsafeBytes { raw in
            for i in 0..<n {
                var u: UInt64 = 0
                let base = i * size
                for j in 0..<size { u = u << 8 | UInt64(raw[big ? base + j : base + size - 1 - j]) }
                switch size {
                case 2: out[i] = Float(Float16Bits(UInt16(u)).value)
                case 4: out[i] = Float(bitPattern: UInt32(u))
                default:
                    let d = Double(bitPattern: u)
                    // Keep non-finite and out-of-range values non-finite, so checks reject them.
                    out[i] = d.isFinite && abs(d) > Double(Float.greatestFiniteMagnitude) ? .infinity : Float(d)
                }
            }
        }
        return out
    }

    /// The elements as strings (unicode `U` arrays; trailing NULs dropped).
    func strings() throws(NPZProblem) -> [String] {
        guard kind == "U" else { throw NPZProblem("has dtype '\(descr)', but a unicode string array is needed") }
        let chars = itemSize / 4
        var out: [String] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            var s = String.UnicodeScalarView()
            for c in 0..<chars {
                let base = (i * chars + c) * 4
                var u: UInt32 = 0
                for j in 0..<4 { u = u << 8 | UInt32(data[bigEndian ? base + j : base + 3 - j]) }
                if u == 0 { break }
                guard let scalar = Unicode.Scalar(u) else {
                    throw NPZProblem("holds an invalid unicode code point \(u)")
                }
                s.append(scalar)
            }
            out.append(String(s))
        }
        return out
    }
}

/// An IEEE half-precision value's bits, widened.
private struct Float16Bits {
    let bits: UInt16
    init(_ bits: UInt16) { self.bits = bits }
    var value: Double {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int(bits >> 10 & 0x1F)
        let fraction = Double(bits & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 0x1F: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}

/// What is wrong with an archive or one of its members, as a message fragment.
struct NPZProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The members of a zip archive, read from its central directory, and their contents.
final class NPZArchiveReader {
    struct Member {
        var name: String
        var method: Int
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
        var encrypted: Bool
    }

    let path: String
    /// Members by name, in directory order.
    private(set) var members: [Member] = []
    private let file: BinaryInputFile

    /// Opens an archive and reads its central directory.
    ///
    /// - Throws: ``TraceFileError`` when the file cannot be read or is not a readable zip archive.
    init(path: String) throws {
        self.path = path
        file = try BinaryInputFile(path: path)
        do {
            try readDirectory()
        } catch let p as NPZProblem {
            file.close()
            throw TraceFileError(path: path, message: "not a readable .npz archive: \(p.message)")
        } catch {
            file.close()
            throw error
        }
    }

    deinit { file.close() }

    private func bytes(_ count: Int, at offset: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= file.size, count <= file.size - offset else {
            throw NPZProblem("a record at byte \(offset) reaches past the end of the file (\(file.size) bytes)")
        }
        let b = try file.read(count: count, at: offset)
        guard b.count == count else { throw NPZProblem("the file ends at byte \(offset + b.count), inside a record") }
        return b
    }

    private func readDirectory() throws {
        let size = file.size
        guard size >= 22 else { throw NPZProblem("the file holds only \(size) bytes, too few for a zip archive") }
        let tailSize = min(size, 22 + 0xFFFF)
        let tail = try bytes(tailSize, at: size - tailSize)
        var eocd = -1
        var i = tail.count - 22
        while i >= 0 {
            if tail[i] == 0x50, tail[i + 1] == 0x4B, tail[i + 2] == 5, tail[i + 3] == 6 {
                eocd = i
                break
            }
            i -= 1
        }
        guard eocd >= 0 else {
            throw NPZProblem("no end-of-central-directory record (the archive is cut off or not a zip)")
        }
        var entries = Int(le16(tail, eocd + 10))
        var cdSize = Int(le32(tail, eocd + 12))
        var cdOffset = Int(le32(tail, eocd + 16))
        let eocdAt = size - tailSize + eocd
        if entries == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            let locator = try bytes(20, at: eocdAt - 20)
            guard le32(locator, 0) == 0x0706_4B50 else { throw NPZProblem("a zip64 archive without its zip64 locator") }
            let recordAt = Int(clamping: le64(locator, 8))
            let record = try bytes(56, at: recordAt)
            guard le32(record, 0) == 0x0606_4B50 else {
                throw NPZProblem("the zip64 end record is missing at byte \(recordAt)")
            }
            entries = Int(clamping: le64(record, 32))
            cdSize = Int(clamping: le64(record, 40))
            cdOffset = Int(clamping: le64(record, 48))
        }
        let cd = try bytes(cdSize, at: cdOffset)
        var at = 0
        for n in 0..<entries {
            guard at + 46 <= cd.count, le32(cd, at) == 0x0201_4B50 else {
                throw NPZProblem("central directory entry \(n) is damaged")
            }
            let flags = le16(cd, at + 8)
            let method = Int(le16(cd, at + 10))
            let crc = le32(cd, at + 16)
            var csize = UInt64(le32(cd, at + 20))
            var usize = UInt64(le32(cd, at + 24))
            let nameLength = Int(le16(cd, at + 28))
            let extraLength = Int(le16(cd, at + 30))
            let commentLength = Int(le16(cd, at + 32))
            var offset = UInt64(le32(cd, at + 42))
            let nameAt = at + 46
            guard nameAt + nameLength + extraLength + commentLength <= cd.count else {
                throw NPZProblem("central directory entry \(n) is damaged")
            }
            let name = String(decoding: cd[nameAt..<(nameAt + nameLength)], as: UTF8.self)
            var e = nameAt + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = le16(cd, e)
                let length = Int(le16(cd, e + 2))
                var f = e + 4
                let fieldEnd = min(extraEnd, f + length)
                if id == 0x0001 {
                    if usize == 0xFFFF_FFFF, f + 8 <= fieldEnd {
                        usize = le64(cd, f)
                        f += 8
                    }
                    if csize == 0xFFFF_FFFF, f + 8 <= fieldEnd {
                        csize = le64(cd, f)
                        f += 8
                    }
                    if offset == 0xFFFF_FFFF, f + 8 <= fieldEnd { offset = le64(cd, f) }
                }
                e += 4 + length
            }
            members.append(
                Member(
                    name: name,
                    method: method,
                    crc: crc,
                    compressedSize: Int(clamping: csize),
                    size: Int(clamping: usize),
                    localHeaderOffset: Int(clamping: offset),
                    encrypted: flags & 1 != 0
                )
            )
            at = extraEnd + commentLength
        }
    }

    /// The member called `name` (with or without `.npy`), if any.
    func member(_ name: String) -> Member? {
        members.first { $0.name == name + ".npy" } ?? members.first { $0.name == name }
    }

    /// A member's uncompressed bytes, checksum verified.
    ///
    /// - Throws: ``NPZProblem`` for a damaged, encrypted or unsupported member.
    func contents(of m: Member) throws -> [UInt8] {
        guard !m.encrypted else { throw NPZProblem("member \(m.name) is encrypted") }
        let local = try bytes(30, at: m.localHeaderOffset)
        guard le32(local, 0) == 0x0403_4B50 else {
            throw NPZProblem("member \(m.name): no local header at byte \(m.localHeaderOffset)")
        }
        let dataAt = m.localHeaderOffset + 30 + Int(le16(local, 26)) + Int(le16(local, 28))
        let raw = try bytes(m.compressedSize, at: dataAt)
        let out: [UInt8]
        switch m.method {
        case 0:
            out = raw
        case 8:
            do {
                out = try Inflate.raw(raw, limit: m.size)
            } catch {
                throw NPZProblem("member \(m.name): its deflate data is damaged (\(error))")
            }
        default:
            throw NPZProblem(
                "member \(m.name) uses zip compression method \(m.method); only stored (0) and deflate (8) are read"
            )
        }
        guard out.count == m.size else {
            throw NPZProblem("member \(m.name) holds \(out.count) bytes, but the directory says \(m.size)")
        }
        var crc = CRC32()
        crc.update(out)
        guard crc.value == m.crc else {
            throw NPZProblem(
                "member \(m.name): checksum mismatch (stored \(binaryHex(m.crc)), computed \(binaryHex(crc.value)))"
            )
        }
        return out
    }

    private func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    private func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
    private func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }
}

extension Substring {
    /// Without leading and trailing spaces.
    fileprivate func trimmed() -> String {
        String(String(drop { $0 == " " }.reversed().drop { $0 == " " }).reversed())
    }
}
