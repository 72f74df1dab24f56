// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The stream-wide domain table of a trace writer. Blocks of one stream share a growing table
// (their `domains` only append), so their indices are kept as they are; a block whose table
// disagrees (another stream's) is remapped name by name, so indices in the file stay stable.

import MoERouting

/// Maps block domain indices onto a writer's domain table, which only grows.
struct BinaryDomainMapper {
    /// The table: index -> name.
    private(set) var names: [String] = []
    private var index: [String: UInt16] = [:]
    /// The last block table seen and its remap, so a stream of blocks sharing one table costs
    /// one array identity check per block.
    private var lastSeen: [String]?
    private var lastRemap: [UInt16]?

    /// Creates a table holding `initial` (duplicates are dropped, keeping the first).
    init(_ initial: [String]) {
        for n in initial where index[n] == nil && names.count < 65_536 {
            index[n] = UInt16(names.count)
            names.append(n)
        }
    }

    /// Adds a block's domain names to the table.
    ///
    /// - Returns: `nil` when the block's indices are valid in the table as they are, else the
    ///   table index of each block index.
    /// - Throws: a message when the table would exceed 65,536 names.
    mutating func absorb(_ blockDomains: [String]) throws(BinaryFormatProblem) -> [UInt16]? {
        if let last = lastSeen, last == blockDomains {
            return lastRemap
        }
        var remap: [UInt16]?
        let common = min(names.count, blockDomains.count)
        var isPrefix = true
        for i in 0..<common where names[i] != blockDomains[i] {
            isPrefix = false
            break
        }
        if isPrefix {
            for i in common..<blockDomains.count where index[blockDomains[i]] != nil {
                isPrefix = false
                break
            }
        }
        if isPrefix {
            for i in common..<blockDomains.count { try add(blockDomains[i]) }
        } else {
            var r = [UInt16]()
            r.reserveCapacity(blockDomains.count)
            for n in blockDomains {
                if let i = index[n] {
                    r.append(i)
                } else {
                    try add(n)
                    r.append(UInt16(names.count - 1))
                }
            }
            remap = r
        }
        lastSeen = blockDomains
        lastRemap = remap
        return remap
    }

    /// The checks every writer makes on a block before it writes it, then ``absorb(_:)`` of its
    /// domain names: columns of one length, domain indices within the block's own table.
    ///
    /// - Returns: as ``absorb(_:)``.
    /// - Throws: a one-line error naming `path` for a malformed block or a table over 65,536 names.
    mutating func absorbChecked(_ block: RoutingBlock, path: String) throws(TraceFileError) -> [UInt16]? {
        guard block.hasConsistentColumns else {
            throw TraceFileError(
                path: path,
                message: "block columns disagree with its token count \(block.tokenCount); the block is malformed"
            )
        }
        let remap: [UInt16]?
        do {
            remap = try absorb(block.domains)
        } catch {
            throw TraceFileError(path: path, message: error.message)
        }
        if let bad = block.domain.first(where: { Int($0) >= block.domains.count }) {
            throw TraceFileError(
                path: path,
                message: "block domain index \(bad) but only \(block.domains.count) domain names"
            )
        }
        return remap
    }

    private mutating func add(_ name: String) throws(BinaryFormatProblem) {
        guard names.count < 65_536 else {
            throw BinaryFormatProblem(.malformed, "more than 65536 distinct domain names")
        }
        index[name] = UInt16(names.count)
        names.append(name)
    }
}
