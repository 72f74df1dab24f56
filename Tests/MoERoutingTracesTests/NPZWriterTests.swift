// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingTraces
import Testing

struct NPZWriterTests {
    typealias S = BinaryTestSupport

    // MARK: - An independent zip and .npy parser (PKWARE APPNOTE, NumPy NEP 1 / format.py)

    struct Member {
        var name: String
        var data: [UInt8]
        var usesZip64: Bool
    }

    static func le(_ b: [UInt8], _ at: Int, _ n: Int) -> Int {
        (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) }
    }

    /// Parses a stored zip: end records, central directory, local headers, CRCs.
    static func parseZip(_ b: [UInt8]) throws -> (members: [Member], zip64End: Bool) {
        struct Bad: Error, CustomStringConvertible { var description: String }
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw Bad(description: what) } }
        let eocd = b.count - 22
        try check(eocd >= 0 && le(b, eocd, 4) == 0x0605_4B50, "end of central directory record")
        var count = le(b, eocd + 10, 2)
        var cdSize = le(b, eocd + 12, 4)
        var cdOffset = le(b, eocd + 16, 4)
        var zip64End = false
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            let locator = eocd - 20
            try check(le(b, locator, 4) == 0x0706_4B50, "zip64 end locator")
            let record = le(b, locator + 8, 8)
            try check(record + 56 == locator, "zip64 end record right before its locator")
            try check(le(b, record, 4) == 0x0606_4B50 && le(b, record + 4, 8) == 44, "zip64 end record")
            count = le(b, record + 32, 8)
            cdSize = le(b, record + 40, 8)
            cdOffset = le(b, record + 48, 8)
            try check(cdOffset + cdSize == record, "central directory ends at the zip64 end record")
            zip64End = true
        } else {
            try check(cdOffset + cdSize == eocd, "central directory ends at the end record")
        }
        var members: [Member] = []
        var at = cdOffset
        var expectedLocal = 0
        for _ in 0..<count {
            try check(le(b, at, 4) == 0x0201_4B50, "central directory header")
            try check(le(b, at + 10, 2) == 0, "stored (method 0)")
            let crc = le(b, at + 16, 4)
            var comp = le(b, at + 20, 4)
            var size = le(b, at + 24, 4)
            let nameLength = le(b, at + 28, 2)
            let extraLength = le(b, at + 30, 2)
            let commentLength = le(b, at + 32, 2)
            var local = le(b, at + 42, 4)
            let name = String(decoding: b[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            var e = at + 46 + nameLength
            var usesZip64 = false
            while e < at + 46 + nameLength + extraLength {
                let tag = le(b, e, 2)
                let len = le(b, e + 2, 2)
                if tag == 1 {
                    usesZip64 = true
                    var f = e + 4
                    if size == 0xFFFF_FFFF {
                        size = le(b, f, 8)
                        f += 8
                    }
                    if comp == 0xFFFF_FFFF {
                        comp = le(b, f, 8)
                        f += 8
                    }
                    if local == 0xFFFF_FFFF {
                        local = le(b, f, 8)
                        f += 8
                    }
                    try check(f == e + 4 + len, "zip64 extra holds exactly the overflowed fields")
                }
                e += 4 + len
            }
            try check(comp == size, "stored: compressed size equals size")
            try check(local == expectedLocal, "members are contiguous")
            try check(le(b, local, 4) == 0x0403_4B50, "local header of \(name)")
            try check(le(b, local + 8, 2) == 0 && le(b, local + 14, 4) == crc, "local method and CRC of \(name)")
            let ln = le(b, local + 26, 2)
            let lx = le(b, local + 28, 2)
            try check(String(decoding: b[(local + 30)..<(local + 30 + ln)], as: UTF8.self) == name, "local name")
            if usesZip64 {
                try check(
                    le(b, local + 18, 4) == 0xFFFF_FFFF && le(b, local + 22, 4) == 0xFFFF_FFFF,
                    "local zip64 sizes"
                )
                try check(
                    lx == 20 && le(b, local + 30 + ln, 2) == 1 && le(b, local + 34 + ln, 8) == size,
                    "local zip64 extra"
                )
            } else {
                try check(le(b, local + 18, 4) == size && le(b, local + 22, 4) == size && lx == 0, "local sizes")
            }
            let start = local + 30 + ln + lx
            let data = Array(b[start..<(start + size)])
            try check(Int(S.referenceCRC(data)) == crc, "CRC-32 of \(name)")
            members.append(Member(name: name, data: data, usesZip64: usesZip64))
            expectedLocal = start + size
            at += 46 + nameLength + extraLength + commentLength
        }
        try check(expectedLocal == cdOffset, "central directory follows the last member")
        return (members, zip64End)
    }

    struct NPY {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
        var data: [UInt8]
    }

    /// Parses a .npy file as the format specification describes it.
    static func parseNPY(_ b: [UInt8]) throws -> NPY {
        struct Bad: Error, CustomStringConvertible { var description: String }
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw Bad(description: what) } }
        try check(Array(b[0..<6]) == [0x93] + Array("NUMPY".utf8), "magic")
        try check([1, 2].contains(b[6]) && b[7] == 0, "version 1.0 or 2.0")
        let preamble = b[6] == 1 ? 10 : 12
        let headerLength = le(b, 8, b[6] == 1 ? 2 : 4)
        try check((preamble + headerLength) % 64 == 0, "data starts at a multiple of 64")
        let text = String(decoding: b[preamble..<(preamble + headerLength)], as: UTF8.self)
        try check(text.hasSuffix("\n") && text.unicodeScalars.allSatisfy(\.isASCII), "ASCII header ending in a newline")
        let dict = text.trimmingCharacters(in: .whitespacesAndNewlines)
        try check(dict.hasPrefix("{") && dict.hasSuffix("}"), "a dict literal")
        // Keys and values: 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),
        func value(_ key: String) throws -> Substring {
            guard let k = dict.range(of: "'\(key)': ") else { throw Bad(description: "missing \(key)") }
            let rest = dict[k.upperBound...]
            if rest.hasPrefix("(") { return rest[...rest.firstIndex(of: ")")!] }
            if rest.hasPrefix("'") { return rest.dropFirst().prefix { $0 != "'" } }
            return rest.prefix { $0 != "," && $0 != "}" }
        }
        let shapeText = try value("shape").dropFirst().dropLast()
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return NPY(
            descr: String(try value("descr")),
            fortranOrder: try value("fortran_order") == "True",
            shape: shape,
            data: Array(b[(preamble + headerLength)...])
        )
    }

    static func unicodeStrings(_ npy: NPY) -> [String] {
        let width = Int(npy.descr.dropFirst(2)) ?? 0
        return stride(from: 0, to: npy.data.count, by: width * 4).map { start in
            var s = ""
            for i in 0..<width {
                let v = UInt32(le(npy.data, start + 4 * i, 4))
                if v != 0, let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) }
            }
            return s
        }
    }

    static func bytes<T>(_ arrays: [[T]]) -> [UInt8] {
        arrays.flatMap { a in a.withUnsafeBytes { Array($0) } }
    }

    static func export(_ blocks: [RoutingBlock], shape: ModelShape, to path: String, zip64: Bool = false) throws {
        let w = try NPZWriter(path: path, shape: shape, settings: ["engine": "test", "model": "ü/ø"])
        w.forceZip64 = zip64
        for b in blocks { try w.write(b) }
        try w.close()
    }

    // MARK: - Tests

    @Test(arguments: [false, true])
    func archiveAndArraysFollowTheZipAndNpySpecifications(zip64: Bool) throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks()
        let path = dir + "/run.npz"
        try Self.export(blocks, shape: S.narrowShape, to: path, zip64: zip64)
        let (members, zip64End) = try Self.parseZip(try S.bytes(path))
        #expect(zip64End == zip64)
        #expect(members.allSatisfy { $0.usesZip64 == zip64 })
        #expect(
            members.map(\.name) == [
                "ids.npy", "weights.npy", "mask.npy", "problem_id.npy", "position.npy", "phase.npy", "token_id.npy",
                "domain.npy", "domains.npy", "shape.npy", "settings.npy", "model_name.npy",
            ]
        )
        var arrays: [String: NPY] = [:]
        for m in members { arrays[String(m.name.dropLast(4))] = try Self.parseNPY(m.data) }
        let T = 9
        let L = 4
        let k = 2
        let expected: [String: (String, [Int])] = [
            "ids": ("|u1", [T, L, k]), "weights": ("<f4", [T, L, k]), "mask": ("|b1", [T, L]),
            "problem_id": ("<i8", [T]), "position": ("<i4", [T]), "phase": ("|u1", [T]), "token_id": ("<i4", [T]),
            "domain": ("<u2", [T]), "domains": ("<U9", [3]), "shape": ("<i8", [3]), "settings": ("<U6", [2, 2]),
            "model_name": ("<U12", []),
        ]
        for (name, (descr, shape)) in expected {
            let a = try #require(arrays[name], "\(name)")
            #expect(a.descr == descr, "\(name)")
            #expect(a.shape == shape, "\(name)")
            #expect(!a.fortranOrder)
            let item = descr == "<U9" ? 36 : descr == "<U6" ? 24 : descr == "<U12" ? 48 : Int(descr.dropFirst(2))!
            #expect(a.data.count == shape.reduce(1, *) * item, "\(name)")
        }
        let narrowIDs: [[UInt8]] = blocks.map { if case .narrow(let a) = $0.ids { a } else { [] } }
        #expect(arrays["ids"]?.data == Self.bytes(narrowIDs))
        #expect(arrays["weights"]?.data == Self.bytes(blocks.map(\.weights)))
        #expect(arrays["mask"]?.data == blocks.flatMap(\.present).map { $0 ? 1 : 0 })
        #expect(arrays["problem_id"]?.data == Self.bytes(blocks.map(\.problemID)))
        #expect(arrays["position"]?.data == Self.bytes(blocks.map(\.position)))
        #expect(arrays["phase"]?.data == blocks.flatMap(\.phase).map(\.rawValue))
        #expect(arrays["token_id"]?.data == Self.bytes(blocks.map(\.tokenID)))
        #expect(arrays["domain"]?.data == Self.bytes(blocks.map(\.domain)))
        #expect(arrays["domains"].map(Self.unicodeStrings) == ["humaneval", "gsm8k", "mbpp"])
        #expect(arrays["shape"]?.data == Self.bytes([[Int64(4), 8, 2]]))
        #expect(arrays["settings"].map(Self.unicodeStrings) == ["engine", "test", "model", "ü/ø"])
        #expect(arrays["model_name"].map(Self.unicodeStrings) == ["tiny-mixtral"])
    }

    @Test func wideIDsAreUInt16() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let blocks = try S.sampleBlocks(shape: S.wideShape)
        try Self.export(blocks, shape: S.wideShape, to: dir + "/w.npz")
        let members = try Self.parseZip(try S.bytes(dir + "/w.npz")).members
        let ids = try Self.parseNPY(members[0].data)
        #expect(ids.descr == "<u2")
        #expect(ids.shape == [9, 3, 3])
        let wide: [[UInt16]] = blocks.map { if case .wide(let a) = $0.ids { a } else { [] } }
        #expect(ids.data == Self.bytes(wide))
    }

    @Test func archiveAppearsOnlyAtCloseAndTemporaryFilesAreRemoved() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let path = dir + "/run.npz"
        let w = try NPZWriter(path: path, shape: S.narrowShape)
        for b in try S.sampleBlocks() { try w.write(b) }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 8)  // one per column
        try w.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["run.npz"])
        #expect(w.tokenCount == 9)
        // An abandoned writer leaves nothing behind.
        do {
            let abandoned = try NPZWriter(path: dir + "/gone.npz", shape: S.narrowShape)
            try abandoned.write(try S.sampleBlocks()[0])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["run.npz"])
    }

    @Test func refusesABlockOfAnotherShape() throws {
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let w = try NPZWriter(path: dir + "/x.npz", shape: .mixtral8x7B)
        #expect {
            try w.write(try S.sampleBlocks()[0])
        } throws: { ($0 as? TraceFileError)?.description.contains("differs from the export's") == true }
        try w.close()
        #expect(w.tokenCount == 0)
    }

    @Test func numpyReadsEveryArrayBack() throws {
        guard let python = S.pythonWithNumpy else {
            print(
                "skipped: no Python with numpy (.venv/bin/python, ../.venv/bin/python, /usr/bin/python3, python3 on PATH)"
            )
            return
        }
        let dir = try S.temporaryDirectory()
        defer { S.removeDirectory(dir) }
        let script = """
            import json, sys, zipfile
            import numpy as np
            path, exp = sys.argv[1], json.load(open(sys.argv[2]))
            assert zipfile.ZipFile(path).testzip() is None
            d = np.load(path)
            T = len(exp["phase"])
            L, E, k = exp["shape"]
            checks = {"ids": (exp["ids_dtype"], (T, L, k)), "weights": ("float32", (T, L, k)), "mask": ("bool", (T, L)),
                      "problem_id": ("int64", (T,)), "position": ("int32", (T,)), "phase": ("uint8", (T,)),
                      "token_id": ("int32", (T,)), "domain": ("uint16", (T,))}
            for key, (dtype, shape) in checks.items():
                a = d[key]
                assert str(a.dtype) == dtype and a.shape == shape, (key, a.dtype, a.shape)
                assert np.array_equal(a.ravel(), np.array(exp[key]).astype(a.dtype)), (key, a)
            assert d["domains"].dtype.kind == "U" and d["domains"].tolist() == exp["domains"], d["domains"]
            assert d["shape"].dtype == np.int64 and d["shape"].tolist() == exp["shape"]
            assert d["settings"].tolist() == [["engine", "test"], ["model", "ü/ø"]], d["settings"]
            assert str(d["model_name"]) == exp["model_name"], d["model_name"]
            print("OK", T)
            """
        try script.write(toFile: dir + "/check.py", atomically: true, encoding: .utf8)
        let cases: [(String, ModelShape, [RoutingBlock], Bool)] = [
            ("narrow", S.narrowShape, try S.sampleBlocks(), false),
            ("zip64", S.narrowShape, try S.sampleBlocks(), true),
            ("wide", S.wideShape, try S.sampleBlocks(shape: S.wideShape), false),
            ("empty", S.narrowShape, [], false),
        ]
        for (name, shape, blocks, zip64) in cases {
            let path = dir + "/\(name).npz"
            try Self.export(blocks, shape: shape, to: path, zip64: zip64)
            let domains = blocks.last?.domains ?? []
            var json = S.expectedJSON(blocks, domains: domains)
            json.removeLast()
            json += """
                , "shape": [\(shape.layers), \(shape.experts), \(shape.topK)],
                "ids_dtype": "\(shape.usesNarrowIDs ? "uint8" : "uint16")", "model_name": "\(shape.name ?? "")"}
                """
            try json.write(toFile: dir + "/expected.json", atomically: true, encoding: .utf8)
            let (status, output) = try S.runProcess(python, [dir + "/check.py", path, dir + "/expected.json"])
            #expect(status == 0, "\(name): \(output)")
            #expect(output.hasPrefix("OK \(blocks.map(\.tokenCount).reduce(0, +))"), "\(name): \(output)")
        }
    }
}
