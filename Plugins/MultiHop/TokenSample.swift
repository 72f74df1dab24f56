// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// TokenSample: a bounded, deterministic and exactly mergeable sample of tokens (the N tokens with
// the smallest hash of their identity), from which the multihop analyzer estimates the figures it
// cannot afford to count for every layer pair or every path.

import MoERouting

/// The "bottom-N" sample: of every token offered, the ``capacity`` ones with the smallest hash of
/// (domain, problem id, position, phase), ties broken by fold and routing, so the kept set does
/// not depend on the order of the stream or on how it was split into shards: two samples merged
/// hold exactly what one sample of the whole stream holds. While at most ``capacity`` tokens were
/// offered, the sample holds every token, so figures computed from it are exact.
///
/// Each kept token stores its fold and its L x k expert ids (``missing`` for an absent layer).
///
/// ```swift
/// var sample = TokenSample(capacity: 4096, layers: 48, topK: 8)
/// sample.add(block)            // or per token, from the analyzer's kernel
/// let kept = sample.finalized()
/// ```
///
/// - Complexity: O(L x k) per admitted token; memory at most `2 x capacity x (L x k x 2 + 9)`
///   bytes.
struct TokenSample {
    /// The most tokens kept.
    let capacity: Int
    /// Layers and experts per layer of each token.
    let layers: Int, topK: Int
    /// Per kept token: its hash.
    private(set) var hashes: [UInt64] = []
    /// Per kept token: its fold.
    private(set) var folds: [UInt8] = []
    /// Per kept token, `layers x topK` ids, ``missing`` where the layer is absent.
    private(set) var ids: [UInt16] = []
    /// A token whose hash is above this can no longer enter (``capacity`` smaller ones are kept).
    private var threshold = UInt64.max

    /// The id stored for an absent layer.
    static let missing = UInt16.max

    /// An empty sample.
    init(capacity: Int, layers: Int, topK: Int) {
        self.capacity = max(0, capacity)
        self.layers = layers
        self.topK = topK
    }

    /// Ids per token.
    var width: Int { layers * topK }
    /// Tokens held (up to twice ``capacity`` before ``finalized()``).
    var count: Int { hashes.count }

    /// The hash identifying a token: its domain's hash, problem id, position and phase, mixed.
    @inline(__always)
    static func tokenHash(domain: UInt64, problemID: Int64, position: Int32, phase: RoutingPhase) -> UInt64 {
        var z = domain ^ (UInt64(bitPattern: problemID) &* 0x9E37_79B9_7F4A_7C15)
        z ^= UInt64(UInt32(bitPattern: position)) << 1 | (phase == .prefill ? 1 : 0)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a of a domain name.
    static func domainHash(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Whether a token of this hash may still belong to the sample.
    @inline(__always) func admits(_ hash: UInt64) -> Bool { capacity > 0 && hash <= threshold }

    /// Offers token `t` of a block's columns (ids `[T][L][k]`, presence `[T][L]`).
    mutating func add<ID: FixedWidthInteger & UnsignedInteger>(
        hash: UInt64,
        fold: Int,
        token t: Int,
        ids source: UnsafeBufferPointer<ID>,
        present: UnsafeBufferPointer<Bool>
    ) {
        guard admits(hash) else { return }
        hashes.append(hash)
        folds.append(UInt8(truncatingIfNeeded: fold))
        let L = layers
        let k = topK
        for l in 0..<L {
            if present[t * L + l] {
                let cell = (t * L + l) * k
                for q in 0..<k { ids.append(UInt16(truncatingIfNeeded: source[cell + q])) }
            } else {
                ids.append(contentsOf: repeatElement(Self.missing, count: k))
            }
        }
        if hashes.count >= 2 * capacity { compact() }
    }

    /// Keeps the ``capacity`` smallest tokens (hash, then fold, then ids), in that order.
    private mutating func compact() {
        let w = width
        let order = hashes.indices.sorted { a, b in
            if hashes[a] != hashes[b] { return hashes[a] < hashes[b] }
            if folds[a] != folds[b] { return folds[a] < folds[b] }
            for i in 0..<w where ids[a * w + i] != ids[b * w + i] { return ids[a * w + i] < ids[b * w + i] }
            return false
        }
        let kept = order.prefix(capacity)
        var h: [UInt64] = []
        var f: [UInt8] = []
        var x: [UInt16] = []
        h.reserveCapacity(kept.count)
        f.reserveCapacity(kept.count)
        x.reserveCapacity(kept.count * w)
        for i in kept {
            h.append(hashes[i])
            f.append(folds[i])
            x.append(contentsOf: ids[(i * w)..<((i + 1) * w)])
        }
        hashes = h
        folds = f
        ids = x
        if hashes.count >= capacity, let last = hashes.last { threshold = min(threshold, last) }
    }

    /// The sample in its canonical form: at most ``capacity`` tokens, ordered.
    func finalized() -> TokenSample {
        var copy = self
        copy.compact()
        return copy
    }

    /// Adds another sample's tokens (same shape): the result keeps what one sample of both
    /// streams would keep.
    mutating func merge(_ other: TokenSample) {
        precondition(other.width == width, "sample shapes differ")
        let w = width
        for i in 0..<other.count {
            guard admits(other.hashes[i]) else { continue }
            hashes.append(other.hashes[i])
            folds.append(other.folds[i])
            ids.append(contentsOf: other.ids[(i * w)..<((i + 1) * w)])
            if hashes.count >= 2 * capacity { compact() }
        }
    }

    /// The top-1 expert of token `i` at layer `l`, or nil when the layer is absent.
    @inline(__always) func top1(_ i: Int, _ l: Int) -> Int? {
        let x = ids[(i * layers + l) * topK]
        return x == Self.missing ? nil : Int(x)
    }
}
