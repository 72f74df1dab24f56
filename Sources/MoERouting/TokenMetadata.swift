// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Who a token is: its domain, problem, position, phase, vocabulary id and, when known, the
/// engine step that routed it.
public struct TokenMetadata: Sendable, Hashable {
    /// Domain (dataset) label, for example `"humaneval"`.
    public var domain: String
    /// Problem (request) id.
    public var problemID: Int64
    /// Position in its sequence.
    public var position: Int32
    /// Prefill or decode.
    public var phase: RoutingPhase
    /// Vocabulary token id, -1 when unknown.
    public var tokenID: Int32
    /// The engine step (forward pass) that routed the token, as in ``RoutingBlock/step``; `nil`
    /// when unknown. `UInt32.max` is reserved for "unknown" and counts as `nil`.
    public var step: UInt32?

    /// Creates token metadata.
    public init(
        domain: String,
        problemID: Int64,
        position: Int32,
        phase: RoutingPhase,
        tokenID: Int32 = -1,
        step: UInt32? = nil
    ) {
        self.domain = domain
        self.problemID = problemID
        self.position = position
        self.phase = phase
        self.tokenID = tokenID
        self.step = step
    }
}
