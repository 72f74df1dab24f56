// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// ParallelLoop: independent per-index work of an analyzer's finish spread over idle cores.

import Foundation
import Synchronization

/// Runs `body` once for each index of `0..<count` on the calling thread and on helper threads,
/// each index claimed by exactly one of them, and returns when all are done; results go where
/// `body` writes them (by index), so they do not depend on how the work was spread.
///
/// Helpers are plain threads, not Dispatch: an analyzer's `finish` already runs inside the
/// multiplexer's `concurrentPerform`, which would run a nested one serially. While another
/// analyzer's `finish` holds a core, the helper shares it with that one (the total work is the
/// same); once it is done, the helper has the core to itself. So a long `finish` no longer
/// outlasts shorter ones that run beside it.
///
/// ```swift
/// var out = [Double](repeating: 0, count: 100)
/// out.withUnsafeMutableBufferPointer { buffer in
///     let slots = ParallelLoop.Slots(buffer)
///     ParallelLoop.forEach(count: 100) { i in slots[i] = Double(i * i) }
/// }
/// ```
public enum ParallelLoop {
    /// At most this many threads, the caller's included (the default: the active cores, up to 8).
    public static var defaultThreads: Int { min(8, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Calls `body(i)` for every i in `0..<count`, on up to `threads` threads (the calling one
    /// included). `body` must be safe to call at once for different indices.
    public static func forEach(count: Int, threads: Int = defaultThreads, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let helpers = min(max(1, threads), count) - 1
        guard helpers > 0 else {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = Work(count: count, body: body)
            let done = DispatchGroup()
            for _ in 0..<helpers {
                done.enter()
                let thread = Thread {
                    work.run()
                    done.leave()
                }
                thread.stackSize = 8 << 20
                thread.start()
            }
            work.run()
            done.wait()
            // A finished helper's Thread may still hold `work` for a moment: drop the body now,
            // before `withoutActuallyEscaping` checks that it did not escape.
            work.body = nil
        }
    }

    /// A buffer that several threads write at distinct indices.
    ///
    /// `@unchecked Sendable`: callers write each index from one thread only, and read the buffer
    /// after ``ParallelLoop/forEach(count:threads:_:)`` returns (which waits for every thread).
    public struct Slots<Element>: @unchecked Sendable {
        let base: UnsafeMutableBufferPointer<Element>
        /// Wraps a buffer that outlives the loop.
        public init(_ base: UnsafeMutableBufferPointer<Element>) { self.base = base }
        /// The element at `i`.
        public subscript(i: Int) -> Element {
            get { base[i] }
            nonmutating set { base[i] = newValue }
        }
    }

    /// The shared claim counter and the body.
    ///
    /// `@unchecked Sendable`: `body` is called for distinct indices from several threads, which
    /// its caller allows, and cleared only after they are all done; the counter is atomic.
    private final class Work: @unchecked Sendable {
        let count: Int
        /// Set to nil once every thread is done.
        var body: ((Int) -> Void)?
        let next = Atomic<Int>(0)

        init(count: Int, body: @escaping (Int) -> Void) {
            self.count = count
            self.body = body
        }

        func run() {
            guard let body else { return }
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { return }
                body(i)
            }
        }
    }
}
