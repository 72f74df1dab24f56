// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Writing NumPy .npy headers and a stored (uncompressed) zip archive with zip64 extensions, as
// `numpy.load` reads them. References: numpy/lib/format.py ("NPY format", versions 1.0 and 2.0)
// and PKWARE's APPNOTE.TXT (sections 4.3.7 local header, 4.3.12 central directory, 4.3.14-16
// zip64 end records, 4.5.3 zip64 extra field).

// MARK: - .npy headers

/// The header of one `.npy` array: magic, version, header length, and the Python-literal dict,
/// padded with spaces and a newline so the data starts at a multiple of 64 bytes.
enum NPYHeader {
    /// - Parameters:
    ///   - descr: The NumPy type string, for example `"<f4"`, `"|b1"`, `"<U12"`.
    ///   - shape: The array shape; `[]` for a 0-d array.
    static func encode(descr: String, shape: [Int]) -> [UInt8] {
        let dims: String
        switch shape.count {
        case 0: dims = "()"
        case 1: dims = "(\(shape[0]),)"
        default: dims = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        let dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }".utf8)
        // Version 1.0 has a 2-byte header length (10-byte preamble); 2.0 a 4-byte one (12 bytes).
        for (major, preamble) in [(UInt8(1), 10), (UInt8(2), 12)] {
            let unpadded = preamble + dict.count + 1
            let total = (unpadded + 63) / 64 * 64
            let headerLength = total - preamble
            if major == 1 && headerLength > 0xFFFF { continue }
            var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
            if major == 1 {
                out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
            } else {
                withUnsafeBytes(of: UInt32(headerLength).littleEndian) { out += $0 }
            }
            out += dict
            out += [UInt8](repeating: 0x20, count: total - unpadded)
            out.append(0x0A)
            return out
        }
        return []  // unreachable: version 2.0 takes any length
    }

    /// The bytes of a NumPy unicode (`<U{n}`) array: each string as `n` UTF-32LE code units,
    /// zero-padded; and `n` (at least 1).
    static func unicodeArray(_ strings: [String]) -> (width: Int, data: [UInt8]) {
        let width = max(1, strings.map { $0.unicodeScalars.count }.max() ?? 1)
        var data: [UInt8] = []
        data.reserveCapacity(width * 4 * strings.count)
        for s in strings {
            var n = 0
            for u in s.unicodeScalars {
                withUnsafeBytes(of: u.value.littleEndian) { data += $0 }
                n += 1
            }
            data += [UInt8](repeating: 0, count: (width - n) * 4)
        }
        return (width, data)
    }
}

// MARK: - Zip writer

/// Writes a stored zip archive member by member, streaming each member's data and computing its
/// CRC-32 as it goes, then the central directory.
final class NPZZipWriter {
    /// Where a member's bytes come from.
    enum Source {
        case bytes([UInt8])
        /// A file of `size` bytes.
        case file(path: String, size: Int)
    }

    private struct Entry {
        var name: [UInt8]
        var size: Int
        var crc: UInt32
        var offset: Int
        var zip64: Bool
    }

    private let out: AtomicOutputFile
    private var entries: [Entry] = []
    /// Use zip64 records even when sizes fit in 32 bits (tests exercise the zip64 path this way).
    let forceZip64: Bool
    private static let limit32 = 0xFFFF_FFFF
    private static let dosTime: UInt16 = 0  // 00:00:00
    private static let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1  // 1980-01-01

    init(out: AtomicOutputFile, forceZip64: Bool) {
        self.out = out
        self.forceZip64 = forceZip64
    }

    /// Writes one member: `header` bytes followed by the bytes of `source`.
    func addMember(name: String, header: [UInt8], source: Source) throws {
        let nameBytes = Array(name.utf8)
        let dataSize: Int
        switch source {
        case .bytes(let b): dataSize = b.count
        case .file(_, let size): dataSize = size
        }
        let size = header.count + dataSize
        let offset = out.offset
        let zip64 = forceZip64 || size >= Self.limit32 || offset >= Self.limit32
        var h = BinaryByteEncoder()
        h.u32(0x0403_4B50)
        h.u16(zip64 ? 45 : 20)
        h.u16(0)  // flags
        h.u16(0)  // stored
        h.u16(Self.dosTime)
        h.u16(Self.dosDate)
        h.u32(0)  // CRC-32, patched after the data
        h.u32(zip64 ? UInt32(Self.limit32) : UInt32(size))
        h.u32(zip64 ? UInt32(Self.limit32) : UInt32(size))
        h.u16(UInt16(nameBytes.count))
        h.u16(zip64 ? 20 : 0)
        h.bytes += nameBytes
        if zip64 {
            h.u16(0x0001)
            h.u16(16)
            h.u64(UInt64(size))
            h.u64(UInt64(size))
        }
        try out.write(h.bytes)
        var crc = CRC32()
        crc.update(header)
        try out.write(header)
        switch source {
        case .bytes(let b):
            crc.update(b)
            try out.write(b)
        case .file(let path, let size):
            let input = try BinaryInputFile(path: path)
            defer { input.close() }
            let chunk = 1 << 22
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
            defer { buf.deallocate() }
            var at = 0
            while at < size {
                let want = min(chunk, size - at)
                let got = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<want]), at: at)
                guard got == want else {
                    throw TraceFileError(
                        path: path,
                        message: "temporary column file is shorter than written (\(at + got) of \(size) bytes)"
                    )
                }
                let part = UnsafeRawBufferPointer(rebasing: buf[0..<got])
                crc.update(part)
                try out.write(part)
                at += got
            }
        }
        var c = BinaryByteEncoder()
        c.u32(crc.value)
        try out.overwrite(c.bytes, at: offset + 14)
        entries.append(Entry(name: nameBytes, size: size, crc: crc.value, offset: offset, zip64: zip64))
    }

    /// Writes the central directory and the end records.
    func finish() throws {
        let cdOffset = out.offset
        var cd = BinaryByteEncoder()
        for e in entries {
            let bigSize = e.zip64 || e.size >= Self.limit32
            let bigOffset = e.zip64 || e.offset >= Self.limit32
            var extra = BinaryByteEncoder()
            if bigSize {
                extra.u64(UInt64(e.size))
                extra.u64(UInt64(e.size))
            }
            if bigOffset { extra.u64(UInt64(e.offset)) }
            cd.u32(0x0201_4B50)
            cd.u16((3 << 8) | (e.zip64 ? 45 : 20))  // made by: Unix
            cd.u16(e.zip64 ? 45 : 20)
            cd.u16(0)
            cd.u16(0)
            cd.u16(Self.dosTime)
            cd.u16(Self.dosDate)
            cd.u32(e.crc)
            cd.u32(bigSize ? UInt32(Self.limit32) : UInt32(e.size))
            cd.u32(bigSize ? UInt32(Self.limit32) : UInt32(e.size))
            cd.u16(UInt16(e.name.count))
            cd.u16(extra.bytes.isEmpty ? 0 : UInt16(4 + extra.bytes.count))
            cd.u16(0)  // comment
            cd.u16(0)  // disk
            cd.u16(0)  // internal attributes
            cd.u32(0o100644 << 16)  // external attributes: regular file, rw-r--r--
            cd.u32(bigOffset ? UInt32(Self.limit32) : UInt32(e.offset))
            cd.bytes += e.name
            if !extra.bytes.isEmpty {
                cd.u16(0x0001)
                cd.u16(UInt16(extra.bytes.count))
                cd.bytes += extra.bytes
            }
        }
        try out.write(cd.bytes)
        let cdSize = cd.bytes.count
        let zip64End =
            forceZip64 || cdOffset >= Self.limit32 || entries.count >= 0xFFFF
            || entries.contains(where: \.zip64)
        var end = BinaryByteEncoder()
        if zip64End {
            let recordOffset = out.offset
            end.u32(0x0606_4B50)
            end.u64(44)
            end.u16((3 << 8) | 45)
            end.u16(45)
            end.u32(0)
            end.u32(0)
            end.u64(UInt64(entries.count))
            end.u64(UInt64(entries.count))
            end.u64(UInt64(cdSize))
            end.u64(UInt64(cdOffset))
            end.u32(0x0706_4B50)
            end.u32(0)
            end.u64(UInt64(recordOffset))
            end.u32(1)
        }
        end.u32(0x0605_4B50)
        end.u16(0)
        end.u16(0)
        end.u16(zip64End ? 0xFFFF : UInt16(entries.count))
        end.u16(zip64End ? 0xFFFF : UInt16(entries.count))
        end.u32(zip64End ? UInt32(Self.limit32) : UInt32(cdSize))
        end.u32(zip64End ? UInt32(Self.limit32) : UInt32(cdOffset))
        end.u16(0)
        try out.write(end.bytes)
    }
}
