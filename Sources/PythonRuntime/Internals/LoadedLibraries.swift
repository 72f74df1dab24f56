// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

#if canImport(Darwin)
import Darwin
#endif

/// Which shared library holds an address of this process (used to report libpython's path).
enum LoadedLibraries {
    /// The file mapped at `address`, or `nil`.
    static func path(containing address: UInt) -> String? {
        #if os(Linux)
        // /proc/self/maps lines: "start-end perms offset dev inode path".
        // procfs files report a size of 0: read until the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd(), let text = String(data: data, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16)
            else { continue }
            if address >= start && address < end {
                let path = fields[5].trimmingCharacters(in: .whitespaces)
                return path.hasPrefix("/") ? path : nil
            }
        }
        return nil
        #elseif canImport(Darwin)
        var info = Dl_info()
        guard dladdr(UnsafeRawPointer(bitPattern: address), &info) != 0, let name = info.dli_fname else { return nil }
        return String(cString: name)
        #else
        return nil
        #endif
    }
}
