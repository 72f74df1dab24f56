// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Who a token is: its domain, problem, position, phase and vocabulary id.
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

    /// Creates token metadata.
    public init(domain: String, problemID: Int64, position: Int32, phase: RoutingPhase, tokenID: Int32 = -1) {
        self.domain = domain
        self.problemID = problemID
        self.position = position
        self.phase = phase
        self.tokenID = tokenID
    }
}
