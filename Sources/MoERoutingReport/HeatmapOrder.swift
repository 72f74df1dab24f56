// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import MoERouting

/// The order in which a heatmap's rows and columns are drawn, and the sentence that says so on
/// the chart. Expert ids are local to a layer, so only a matrix whose two axes are experts (an
/// affinity or transition matrix between two layers; axis titles containing "expert") is
/// reordered, and only above ``maxNaturalExperts`` experts per axis:
///
/// - **usage order**: rows by their sum, columns by their sum, largest first, ties by lower id;
///   a row or column without any finite value goes last. When every row sums to the same total
///   (rows normalised to probabilities), the rows stay in id order and the note says why;
/// - **id order** for everything else (Mixtral's 8 experts; a layer × expert usage map, where one
///   column is a different expert at every layer, so no single order fits every row).
///
/// Labels and tooltips keep the true expert ids; only their positions change.
///
/// ```swift
/// let order = HeatmapOrder(heatmap)   // .usage for a 256 × 256 affinity matrix
/// order.rows.prefix(3)                // [17, 3, 200]: the most used source experts first
/// order.note                          // "experts ordered by usage: ..."
/// ```
struct HeatmapOrder: Equatable {
    /// Which rule placed the rows and columns.
    enum Rule: Equatable {
        /// Row and column indices as given (expert ids in id order).
        case natural
        /// Rows and columns by their sums, largest first.
        case usage
    }

    /// Matrices with at most this many experts per axis keep id order.
    static let maxNaturalExperts = 16

    let rule: Rule
    /// For each drawn row position, the row index in the figure.
    let rows: [Int]
    /// For each drawn column position, the column index in the figure.
    let columns: [Int]
    /// What the chart says about the order, or nil when neither axis shows experts.
    let note: String?

    init(rule: Rule, rows: [Int], columns: [Int], note: String?) {
        self.rule = rule
        self.rows = rows
        self.columns = columns
        self.note = note
    }

    /// Whether an axis title names experts ("expert at layer 3", "top-1 expert").
    static func isExpertAxis(_ title: String) -> Bool { title.lowercased().contains("expert") }

    /// The order for `heatmap` (ragged rows count as padded with no data).
    init(_ heatmap: ReportFigure.Heatmap) {
        let rowCount = heatmap.values.count
        let columnCount = heatmap.values.map(\.count).max() ?? 0
        let natural = (Array(0..<rowCount), Array(0..<columnCount))
        let expertRows = Self.isExpertAxis(heatmap.yLabel)
        let expertColumns = Self.isExpertAxis(heatmap.xLabel)
        guard expertRows || expertColumns else {
            self.init(rule: .natural, rows: natural.0, columns: natural.1, note: nil)
            return
        }
        guard expertRows && expertColumns else {
            self.init(
                rule: .natural,
                rows: natural.0,
                columns: natural.1,
                note: "experts in id order (an id is a different expert at each layer)"
            )
            return
        }
        guard max(rowCount, columnCount) > Self.maxNaturalExperts else {
            self.init(
                rule: .natural,
                rows: natural.0,
                columns: natural.1,
                note: "experts in id order (at most \(Self.maxNaturalExperts) per axis)"
            )
            return
        }
        var rowSums = [Double](repeating: 0, count: rowCount)
        var columnSums = [Double](repeating: 0, count: columnCount)
        var rowHasData = [Bool](repeating: false, count: rowCount)
        var columnHasData = [Bool](repeating: false, count: columnCount)
        for (r, row) in heatmap.values.enumerated() {
            for (c, v) in row.enumerated() where v.isFinite {
                rowSums[r] += v
                columnSums[c] += v
                rowHasData[r] = true
                columnHasData[c] = true
            }
        }
        let rowKeys = Self.massKeys(rowSums, hasData: rowHasData)
        let equalRows = Set(rowKeys.compactMap { $0 }).count <= 1
        let rows = equalRows ? natural.0 : Self.byMass(rowKeys)
        let columns = Self.byMass(Self.massKeys(columnSums, hasData: columnHasData))
        let note =
            equalRows
            ? "experts ordered by usage: columns by column sum, largest first, ties by id; rows in id order "
                + "(all rows have the same sum); labels are expert ids"
            : "experts ordered by usage: rows by row sum, columns by column sum, largest first, ties by id; "
                + "labels are expert ids"
        self.init(rule: .usage, rows: rows, columns: columns, note: note)
    }

    /// Sums made comparable: rounded to nine significant digits of the largest one, so that sums
    /// equal up to floating-point rounding tie (and then go by id); nil where there is no data.
    static func massKeys(_ sums: [Double], hasData: [Bool]) -> [Int64?] {
        let largest = zip(sums, hasData).filter(\.1).map { abs($0.0) }.max() ?? 0
        return zip(sums, hasData).map { sum, has in
            guard has else { return nil }
            guard largest > 0 else { return 0 }
            return Int64((sum / largest * 1e9).rounded())
        }
    }

    /// Indices by key, largest first, ties by lower index, nil keys last (in index order).
    static func byMass(_ keys: [Int64?]) -> [Int] {
        keys.indices.sorted { a, b in
            switch (keys[a], keys[b]) {
            case (let x?, let y?): return x != y ? x > y : a < b
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
    }
}
