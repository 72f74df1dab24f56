// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import MoERouting

/// Why a statistic could not be computed from the data given, in one phrase, for the JSON key
/// `"insufficient"` (beside the statistic's `null` values) and for the report's
/// "not computed: ..." notes and table rows.
///
/// An analyzer never prints zeros or an empty table for a statistic it could not compute: the
/// JSON value is `null` and an `"insufficient"` string says why.
///
/// ```swift
/// Insufficient.layers(3)                      // "needs at least 3 MoE layers"
/// Insufficient.folds(problems: 1, filled: 1)  // "cross-validation needs tokens in at least 2 folds by problem; 1 problem(s) fill 1 fold(s)"
/// Insufficient.json(Insufficient.layers(2))   // {"insufficient":"needs at least 2 MoE layers"}
/// Insufficient.note("multi-hop distances", Insufficient.layers(3))  // "not computed: multi-hop distances (needs at least 3 MoE layers)"
/// ```
public enum Insufficient {
    /// The JSON key that carries the reason.
    public static let key = "insufficient"

    /// The model has fewer than `n` MoE layers.
    public static func layers(_ n: Int) -> String { "needs at least \(n) MoE layers" }

    /// Cross-validation by problem is impossible: fewer than two folds hold test tokens.
    public static func folds(problems: Int, filled: Int) -> String {
        "cross-validation needs tokens in at least 2 folds by problem; \(problems) problem(s) fill \(filled) fold(s)"
    }

    /// No (token, layer) pair had both layers present.
    public static let noPairs = "no token has both layers present"

    /// No token has every layer present (full-depth statistics).
    public static let noCompleteTokens = "no token has every layer present"

    /// No token has a routing decision at one layer.
    public static func noRows(layer: Int) -> String { "no token has a routing decision at layer \(layer)" }

    /// `{"insufficient": reason}`.
    public static func json(_ reason: String) -> ReportValue { .object([.init(key, .string(reason))]) }

    /// A report note: `"not computed: <what> (<reason>)"`.
    public static func note(_ what: String, _ reason: String) -> String { "not computed: \(what) (\(reason))" }

    /// A table cell or headline value: `"not computed (<reason>)"`.
    public static func cell(_ reason: String) -> String { "not computed (\(reason))" }
}
