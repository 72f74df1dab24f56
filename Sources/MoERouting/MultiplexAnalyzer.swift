// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An analyzer that fans one stream out to several analyzers and isolates their failures: one
/// that throws is recorded in ``failures`` and dropped, and the others go on.
///
/// With ``Concurrency-swift.enum/parallel`` (the default) `consume` and `finishAll` run the
/// analyzers side by side, one analyzer per worker at a time, and return when all are done: each
/// analyzer still sees every block in stream order and is never called from two threads at once,
/// but it may be called from a different thread for each block, and two analyzers may run at
/// the same moment. Results and failures are the same as with ``Concurrency-swift.enum/serial``,
/// in the order the analyzers were given. `finishAll` starts the analyzers that spent longest in
/// `consume` first (their `finish` tends to be the longest too, and starting it last would leave
/// the other workers idle at the end).
///
/// A parallel `consume` is pipelined: it hands the block to each analyzer's own serial queue and
/// returns once no more than ``blocksInFlight`` earlier blocks are still being consumed, so a
/// fast analyzer runs ahead of a slow one instead of waiting for it at every block, and the
/// caller reads its next block meanwhile. The cost is memory for up to ``blocksInFlight`` + 1
/// blocks held in flight, and failures that show a little later: an analyzer that throws on
/// block *n* skips the blocks after it and is dropped at the next ``flush()``, which every
/// other member (``analyzers``, ``failures``, ``consumeDurations``, `begin`, `merge`,
/// `finishAll`) calls first. Failures still come in the serial order: by block, then by the
/// order of the analyzers.
///
/// ```swift
/// let mux = MultiplexAnalyzer([transition, multihop])
/// try mux.begin(context)
/// for block in blocks { try mux.consume(block) }
/// let (reports, failures) = mux.finishAll()
/// ```
public final class MultiplexAnalyzer: RoutingAnalyzer {
    /// How the analyzers of one multiplexer share the machine.
    public enum Concurrency: Sendable, Equatable {
        /// One after the other on the calling thread. For analyzers that share state with each
        /// other or need the calling thread (for example one that calls into Python).
        case serial
        /// Side by side, at most `maxThreads` analyzers at once and never more than the machine
        /// has processors: in `begin`, `merge` and `finishAll` on the calling thread and
        /// `concurrentPerform`'s workers, in a pipelined `consume` on one serial queue per
        /// analyzer (the calling thread only hands blocks over).
        case parallel(maxThreads: Int)

        /// Parallel on every active processor.
        public static let automatic = Concurrency.parallel(maxThreads: Int.max)
    }

    public let name = "multiplex"

    /// The analyzers still running, in the order given (after a ``flush()``).
    public var analyzers: [any RoutingAnalyzer] {
        flush()
        return running
    }
    /// Analyzers dropped so far, with their errors (after a ``flush()``).
    public var failures: [AnalyzerFailure] {
        flush()
        return dropped
    }
    /// How `consume` and `finishAll` run the analyzers.
    public let concurrency: Concurrency
    /// Time each analyzer has spent in `consume` so far, by name (after a ``flush()``).
    public var consumeDurations: [String: Duration] {
        flush()
        return consumeTime
    }
    /// How many earlier blocks a parallel `consume` may leave unfinished when it returns.
    public static let blocksInFlight = 2

    private var running: [any RoutingAnalyzer]
    private var dropped: [AnalyzerFailure] = []
    private var consumeTime: [String: Duration] = [:]
    /// The pipelined consume in progress, if any (see ``flush()``).
    private var pipeline: ConsumePipeline?
    /// Blocks given to `consume` so far: the index of the next one.
    private var blocksGiven = 0

    /// Fans out to `analyzers`, in order, running them as `concurrency` says (by default side by
    /// side on every active processor).
    public init(_ analyzers: [any RoutingAnalyzer], concurrency: Concurrency = .automatic) {
        self.running = analyzers
        self.concurrency = concurrency
    }

    /// Threads for `tasks` independent tasks: 1 when serial.
    private func threads(for tasks: Int) -> Int {
        switch concurrency {
        case .serial: return 1
        case .parallel(let maxThreads):
            // As many as concurrentPerform would run at once: no more than the online processors.
            return max(1, min(tasks, maxThreads, Self.onlineProcessors))
        }
    }

    /// The processors online, as libdispatch counts them for `concurrentPerform`.
    private static let onlineProcessors: Int = {
        #if canImport(Glibc) || canImport(Darwin)
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }()

    /// Runs `body` on every analyzer (side by side where allowed) and drops those that threw,
    /// recording their failures in the order of ``analyzers``.
    private func each(
        _ stage: String,
        order: [Int]? = nil,
        timed: Bool = false,
        _ body: (any RoutingAnalyzer) throws -> Void
    ) {
        flush()
        let current = running
        let width = threads(for: current.count)
        let (errors, durations) = withoutActuallyEscaping(body) { body in
            let work = ParallelWork(analyzers: current, order: order, timed: timed, body: body)
            if width <= 1 {
                work.run()
            } else {
                DispatchQueue.concurrentPerform(iterations: width) { _ in work.run() }
            }
            return (work.errors, work.durations)
        }
        var kept: [any RoutingAnalyzer] = []
        kept.reserveCapacity(current.count)
        for (i, a) in current.enumerated() {
            if timed { consumeTime[a.name, default: .zero] += durations[i] }
            if let error = errors[i] {
                dropped.append(AnalyzerFailure(analyzer: a.name, stage: stage, message: "\(error)"))
            } else {
                kept.append(a)
            }
        }
        running = kept
    }

    public func begin(_ context: AnalysisContext) throws { each("begin") { try $0.begin(context) } }

    /// Gives `block` to every running analyzer: serially on the calling thread, or pipelined
    /// (see the type's notes) when parallel with more than one analyzer and thread.
    public func consume(_ block: RoutingBlock) throws {
        let index = blocksGiven
        blocksGiven += 1
        let width = threads(for: running.count)
        guard width > 1 else {
            each("consume", timed: true) { try $0.consume(block) }
            return
        }
        if pipeline == nil {
            pipeline = ConsumePipeline(analyzers: running, workers: width, blocksInFlight: Self.blocksInFlight)
        }
        pipeline?.submit(block, index: index)
    }

    /// Returns once every analyzer has consumed every block given so far, then drops those that
    /// threw (recording their failures by block, then in the order of ``analyzers``) and adds up
    /// their consume times. Does nothing when no pipelined consume is in progress.
    public func flush() {
        guard let pipeline else { return }
        self.pipeline = nil
        pipeline.drain()
        var failed: [(block: Int, order: Int, failure: AnalyzerFailure)] = []
        var kept: [any RoutingAnalyzer] = []
        for (order, lane) in pipeline.lanes.enumerated() {
            let a = lane.analyzer
            consumeTime[a.name, default: .zero] += lane.spent
            if let (block, error) = lane.failure {
                let f = AnalyzerFailure(analyzer: a.name, stage: "consume", message: "\(error)")
                failed.append((block, order, f))
            } else {
                kept.append(a)
            }
        }
        failed.sort { ($0.block, $0.order) < ($1.block, $1.order) }
        dropped += failed.map(\.failure)
        running = kept
    }

    /// Merges analyzer by analyzer, matched by name. An analyzer the other side dropped is
    /// dropped here too (its result would be partial).
    public func merge(_ other: any RoutingAnalyzer) throws {
        let o = try mergeable(other)
        flush()
        let theirs = Dictionary(o.analyzers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for f in o.failures where !dropped.contains(f) { dropped.append(f) }
        each("merge") { a in
            guard let b = theirs[a.name] else {
                throw RoutingError.incompatibleMerge("the other shard has no running '\(a.name)'")
            }
            try a.merge(b)
        }
    }

    /// Not used: call ``finishAll()`` to get every analyzer's report.
    public func finish() throws -> AnalyzerReport {
        let (reports, _) = finishAll()
        return AnalyzerReport(
            analyzer: name,
            title: "All analyzers",
            json: .object(reports.map { .init($0.analyzer, $0.json) })
        )
    }

    /// Finishes every running analyzer (side by side where allowed); a throwing `finish`
    /// becomes a failure. Reports come in the order of ``analyzers``.
    public func finishAll() -> (reports: [AnalyzerReport], failures: [AnalyzerFailure]) {
        flush()
        let current = running
        let box = ReportSlots(count: current.count)
        // Longest consumers first; ties keep the given order.
        let order = current.indices.sorted { i, j in
            let a = consumeTime[current[i].name] ?? .zero
            let b = consumeTime[current[j].name] ?? .zero
            return a != b ? a > b : i < j
        }
        each("finish", order: order) { a in
            let report = try a.finish()
            if let i = current.firstIndex(where: { $0 === a }) { box.store(report, at: i) }
        }
        return (box.reports, dropped)
    }
}

/// A pipelined `consume`: one serial queue (a lane) per analyzer, each taking the blocks in
/// order, at most `workers` of them running at once, and the submitting thread held back once
/// more than `blocksInFlight` blocks are unfinished.
///
/// `@unchecked Sendable`: each lane's analyzer and its ``Lane/failure`` and ``Lane/spent`` are
/// touched only by the jobs of its own serial queue, one at a time; the multiplexer reads them
/// only after ``drain()`` has waited for every job, which orders those writes before its reads.
/// ``inFlight`` is touched only by the multiplexer's thread.
private final class ConsumePipeline: @unchecked Sendable {
    final class Lane: @unchecked Sendable {
        let analyzer: any RoutingAnalyzer
        let queue: DispatchQueue
        /// The first block whose `consume` threw, and the error; later blocks are skipped.
        var failure: (block: Int, error: any Error)?
        /// Time in `consume`, not counting the wait for a worker.
        var spent: Duration = .zero

        init(_ analyzer: any RoutingAnalyzer) {
            self.analyzer = analyzer
            queue = DispatchQueue(label: "speculative-moe.multiplex.\(analyzer.name)")
        }
    }

    let lanes: [Lane]
    private let workers: DispatchSemaphore
    private let blocksInFlight: Int
    private var inFlight: [DispatchGroup] = []

    init(analyzers: [any RoutingAnalyzer], workers: Int, blocksInFlight: Int) {
        lanes = analyzers.map(Lane.init)
        self.workers = DispatchSemaphore(value: workers)
        self.blocksInFlight = blocksInFlight
    }

    /// Queues `block` (the stream's block number `index`) on every lane, then waits while more
    /// than `blocksInFlight` blocks are unfinished.
    func submit(_ block: RoutingBlock, index: Int) {
        let group = DispatchGroup()
        let workers = workers
        for lane in lanes {
            lane.queue.async(group: group) {
                guard lane.failure == nil else { return }
                workers.wait()
                defer { workers.signal() }
                let start = ContinuousClock.now
                do { try lane.analyzer.consume(block) } catch { lane.failure = (index, error) }
                lane.spent += ContinuousClock.now - start
            }
        }
        inFlight.append(group)
        while inFlight.count > blocksInFlight { inFlight.removeFirst().wait() }
    }

    /// Waits until every lane has consumed every block submitted.
    func drain() {
        for group in inFlight { group.wait() }
        inFlight.removeAll()
    }
}

/// One stage of a multiplexer: `body` applied to every analyzer by however many workers call
/// ``run()``, each analyzer claimed by exactly one of them.
///
/// `@unchecked Sendable`: the analyzers are not `Sendable`, but no two workers ever touch the
/// same one (each index is handed out once, under the lock), and `concurrentPerform` returns
/// only after every worker is done, so the caller sees their effects.
private final class ParallelWork: @unchecked Sendable {
    let analyzers: [any RoutingAnalyzer]
    let body: (any RoutingAnalyzer) throws -> Void
    /// The order in which workers claim the analyzers (indices into ``analyzers``).
    let order: [Int]
    let timed: Bool
    private var next = 0
    private var failed: [(any Error)?]
    private var took: [Duration]
    private let lock = DispatchSemaphore(value: 1)

    init(
        analyzers: [any RoutingAnalyzer],
        order: [Int]?,
        timed: Bool,
        body: @escaping (any RoutingAnalyzer) throws -> Void
    ) {
        self.analyzers = analyzers
        self.body = body
        self.order = order ?? Array(analyzers.indices)
        self.timed = timed
        failed = [(any Error)?](repeating: nil, count: analyzers.count)
        took = [Duration](repeating: .zero, count: analyzers.count)
    }

    /// Claims and runs analyzers until none is left.
    func run() {
        let clock = ContinuousClock()
        while let i = claim() {
            let start = timed ? clock.now : nil
            var error: (any Error)?
            do { try body(analyzers[i]) } catch let e { error = e }
            let elapsed = start.map { clock.now - $0 }
            if error != nil || elapsed != nil { record(error, elapsed, at: i) }
        }
    }

    /// Each analyzer's error, or nil where it succeeded; read after every worker is done.
    var errors: [(any Error)?] {
        lock.wait()
        defer { lock.signal() }
        return failed
    }

    /// Each analyzer's time in `body` (zero unless timed); read after every worker is done.
    var durations: [Duration] {
        lock.wait()
        defer { lock.signal() }
        return took
    }

    private func claim() -> Int? {
        lock.wait()
        defer { lock.signal() }
        guard next < order.count else { return nil }
        next += 1
        return order[next - 1]
    }

    private func record(_ error: (any Error)?, _ elapsed: Duration?, at i: Int) {
        lock.wait()
        if let error { failed[i] = error }
        if let elapsed { took[i] = elapsed }
        lock.signal()
    }
}

/// Reports written by parallel `finish` calls, each into its own slot.
private final class ReportSlots: @unchecked Sendable {
    private var slots: [AnalyzerReport?]
    private let lock = DispatchSemaphore(value: 1)

    init(count: Int) { slots = [AnalyzerReport?](repeating: nil, count: count) }

    func store(_ report: AnalyzerReport, at i: Int) {
        lock.wait()
        slots[i] = report
        lock.signal()
    }

    /// The stored reports, in slot order.
    var reports: [AnalyzerReport] {
        lock.wait()
        defer { lock.signal() }
        return slots.compactMap { $0 }
    }
}

/// An analyzer that was dropped from a run, and why.
public struct AnalyzerFailure: Sendable, Equatable, CustomStringConvertible {
    /// The analyzer's name.
    public var analyzer: String
    /// Where it failed: begin, consume, merge or finish.
    public var stage: String
    /// The error, as text.
    public var message: String

    public init(analyzer: String, stage: String, message: String) {
        self.analyzer = analyzer
        self.stage = stage
        self.message = message
    }

    public var description: String { "analyzer '\(analyzer)' failed in \(stage) and was dropped: \(message)" }
}
