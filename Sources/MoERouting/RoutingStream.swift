// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A source of routing blocks: a trace reader, or an engine capture.
public protocol RoutingBlockSource: AnyObject {
    /// The shape of every block this source yields.
    var shape: ModelShape { get }
    /// The next block, or `nil` at the end of the stream.
    func nextBlock() throws -> RoutingBlock?
}

/// A consumer of blocks that is not an analyzer, such as a trace writer.
public protocol RoutingBlockSink: AnyObject {
    /// Writes one block.
    func write(_ block: RoutingBlock) throws
    /// Flushes and closes. Called once at the end of the stream. A file sink puts its file in
    /// place here (written under a temporary name until then).
    func close() throws
    /// Abandons the output after a failure, instead of ``close()``: a file sink removes what it
    /// wrote so far and leaves any earlier file at its path untouched. The default does nothing.
    func discard()
}

extension RoutingBlockSink {
    /// Does nothing: a sink with nothing to abandon.
    public func discard() {}
}

/// Counts of what passed through a stream.
public struct StreamStatistics: Sendable, Equatable {
    /// Tokens seen.
    public var tokens = 0
    /// Present (token, layer) cells: token-layer records.
    public var records = 0
    /// Tokens with every layer present.
    public var completeJourneys = 0
    /// Tokens with at least one layer missing.
    public var incompleteJourneys: Int { tokens - completeJourneys }
    /// Blocks seen.
    public var blocks = 0

    public init() {}

    /// Adds one block's counts.
    public mutating func add(_ block: RoutingBlock) {
        blocks += 1
        tokens += block.tokenCount
        let L = block.shape.layers
        block.present.withUnsafeBufferPointer { p in
            for t in 0..<block.tokenCount {
                var n = 0
                for l in 0..<L where p[t * L + l] { n += 1 }
                records += n
                if n == L { completeJourneys += 1 }
            }
        }
    }
}

/// Feeds one stream of blocks to an analyzer (usually a ``MultiplexAnalyzer``) and to sinks.
///
/// An analyzer that throws is dropped by the multiplexer and the stream goes on; a sink that
/// throws stops the run, since losing trace data silently is worse than stopping.
///
/// ```swift
/// let mux = MultiplexAnalyzer(try names.map(registry.make))
/// let dispatcher = AnalysisDispatcher(analyzers: mux, sinks: [writer])
/// try dispatcher.run(source: reader, context: AnalysisContext(shape: reader.shape))
/// let (reports, failures) = mux.finishAll()
/// ```
public final class AnalysisDispatcher {
    /// The analyzers fed.
    public let analyzers: MultiplexAnalyzer
    /// The sinks fed.
    public let sinks: [any RoutingBlockSink]
    /// What has passed so far.
    public private(set) var statistics = StreamStatistics()
    private var begun = false

    /// Creates a dispatcher.
    public init(analyzers: MultiplexAnalyzer, sinks: [any RoutingBlockSink] = []) {
        self.analyzers = analyzers
        self.sinks = sinks
    }

    /// Starts the analyzers. Called by ``run(source:context:)``; call it yourself when pushing
    /// blocks with ``dispatch(_:)``.
    public func begin(_ context: AnalysisContext) throws {
        guard !begun else { return }
        begun = true
        try analyzers.begin(context)
    }

    /// Feeds one block to the sinks, then the analyzers.
    public func dispatch(_ block: RoutingBlock) throws {
        statistics.add(block)
        for s in sinks { try s.write(block) }
        try analyzers.consume(block)
    }

    /// Drains `source` and closes the sinks; when reading, analyzing or writing fails, discards
    /// the sinks (``RoutingBlockSink/discard()``) and rethrows, so no partial output is put in place.
    public func run(source: some RoutingBlockSource, context: AnalysisContext) throws {
        do {
            try begin(context)
            while let block = try source.nextBlock() { try dispatch(block) }
            for s in sinks { try s.close() }
        } catch {
            discardSinks()
            throw error
        }
    }

    /// Abandons every sink's output (``RoutingBlockSink/discard()``); a sink already closed
    /// keeps its file.
    public func discardSinks() {
        for s in sinks { s.discard() }
    }
}
