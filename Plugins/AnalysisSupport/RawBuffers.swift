// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// RawBuffers: allocation helpers for the analyzers' storage types, which own their counters as
// raw buffers so that kernels get plain pointers instead of nested `withUnsafe…` closures.

extension UnsafeMutableBufferPointer {
    /// A new buffer of `count` elements, each `value`. Its base address is never nil (at least
    /// one element is allocated), so the kernel's pointers need no unwrapping; free it with
    /// ``freeRaw()``.
    @inlinable package static func filled(_ count: Int, _ value: Element) -> UnsafeMutableBufferPointer<Element> {
        let n = Swift.max(0, count)
        let base = UnsafeMutablePointer<Element>.allocate(capacity: Swift.max(1, n))
        base.initialize(repeating: value, count: Swift.max(1, n))
        return UnsafeMutableBufferPointer(start: base, count: n)
    }

    /// A new buffer holding a copy of `values` (free it with ``freeRaw()``).
    @inlinable package static func copied(_ values: [Element]) -> UnsafeMutableBufferPointer<Element> {
        let n = values.count
        let base = UnsafeMutablePointer<Element>.allocate(capacity: Swift.max(1, n))
        values.withUnsafeBufferPointer { v in
            if let src = v.baseAddress { base.initialize(from: src, count: n) }
        }
        return UnsafeMutableBufferPointer(start: base, count: n)
    }

    /// The base address of a buffer made by ``filled(_:_:)`` or ``copied(_:)``.
    @inlinable package var base: UnsafeMutablePointer<Element> { baseAddress! }

    /// Frees a buffer made by ``filled(_:_:)`` or ``copied(_:)`` (trivial element types only).
    @inlinable package func freeRaw() { baseAddress?.deallocate() }
}

/// A growable column of trivial values in one raw buffer that its owner frees: for counters that
/// grow with the data (one row per problem or domain) and are handed to a kernel as a plain
/// pointer. The pointer stays valid until the next append.
///
/// ```swift
/// let tokens = RawColumn<Int>()
/// tokens.append(0)                 // a new problem
/// tokens[0] += 5
/// let p = tokens.base              // for the kernel; invalid after the next append
/// ```
package final class RawColumn<Element: BitwiseCopyable> {
    // Unchecked exclusivity: the column is never accessed concurrently (it is not Sendable),
    // and the runtime checks would cost more than the element accesses they guard.
    @exclusivity(unchecked) @usableFromInline var storage: UnsafeMutableBufferPointer<Element>
    @exclusivity(unchecked) @usableFromInline var elementCount = 0
    /// Number of elements.
    @inlinable package var count: Int { elementCount }

    /// An empty column.
    package init() {
        storage = UnsafeMutableBufferPointer(start: UnsafeMutablePointer<Element>.allocate(capacity: 16), count: 16)
    }

    deinit { storage.baseAddress?.deallocate() }

    /// The first element's address (valid until the next append; never nil).
    @inlinable package var base: UnsafeMutablePointer<Element> { storage.baseAddress! }

    /// Element `i`.
    @inlinable package subscript(i: Int) -> Element {
        get {
            precondition(i >= 0 && i < count, "index out of range")
            return storage[i]
        }
        set {
            precondition(i >= 0 && i < count, "index out of range")
            storage[i] = newValue
        }
    }

    /// Appends `n` copies of `value`.
    @inlinable package func append(repeating value: Element, count n: Int) {
        guard n > 0 else { return }
        reserve(elementCount + n)
        (base + elementCount).initialize(repeating: value, count: n)
        elementCount += n
    }

    /// Appends one value.
    @inlinable package func append(_ value: Element) { append(repeating: value, count: 1) }

    /// Removes every element (keeping the memory).
    @inlinable package func removeAll() { elementCount = 0 }

    /// A copy of the elements as an array.
    @inlinable package var array: [Element] { Array(UnsafeBufferPointer(start: base, count: count)) }

    @usableFromInline func reserve(_ needed: Int) {
        guard needed > storage.count else { return }
        var capacity = storage.count
        while capacity < needed { capacity *= 2 }
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
        grown.initialize(from: base, count: count)
        storage.baseAddress?.deallocate()
        storage = UnsafeMutableBufferPointer(start: grown, count: capacity)
    }
}
