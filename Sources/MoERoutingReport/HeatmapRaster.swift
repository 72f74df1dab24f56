// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The cells of a heatmap quantised to one byte each and encoded as a palette PNG, one pixel per
/// cell: level `q` in `0...254` stands for `minimum + q × step` of the colour scale (step =
/// range / 254) and is drawn in viridis at `q / 254`; ``missingLevel`` (255) is a cell without
/// data, drawn grey. A value inside the scale is recovered from its level within half a step.
///
/// ```swift
/// let raster = HeatmapRaster(values: [[0, 0.5], [1, .nan]], columns: 2, scale: ColorScale(minimum: 0, maximum: 1))
/// raster.levels            // [0, 127, 254, 255]
/// raster.value(level: 127) // 0.5
/// ```
struct HeatmapRaster {
    /// The highest level of a value; levels run 0...254.
    static let topLevel: UInt8 = 254
    /// The level of a cell with no data (not finite, or missing from a short row).
    static let missingLevel: UInt8 = 255

    let rows: Int
    let columns: Int
    let scale: ColorScale
    /// One level per cell, row after row.
    let levels: [UInt8]

    /// Quantises `values` (ragged rows padded with no data) on `scale`; values outside the scale
    /// are clamped to its ends.
    init(values: [[Double]], columns: Int, scale: ColorScale) {
        self.rows = values.count
        self.columns = columns
        self.scale = scale
        var levels = [UInt8](repeating: Self.missingLevel, count: values.count * columns)
        for (r, row) in values.enumerated() {
            for (c, v) in row.prefix(columns).enumerated() where v.isFinite {
                levels[r * columns + c] = Self.level(v, scale: scale)
            }
        }
        self.levels = levels
    }

    /// The value a level of one scale step stands for.
    var step: Double { (scale.maximum - scale.minimum) / Double(Self.topLevel) }

    /// The level of a finite `value` on `scale`.
    static func level(_ value: Double, scale: ColorScale) -> UInt8 {
        UInt8((scale.position(value) * Double(topLevel)).rounded())
    }

    /// The value a level stands for (NaN for ``missingLevel``).
    func value(level: UInt8) -> Double {
        level == Self.missingLevel ? .nan : scale.minimum + Double(level) * step
    }

    /// The 256 palette colours: viridis at `q / 254` for each level, then grey for no data.
    static let palette: [(UInt8, UInt8, UInt8)] =
        (0...Int(topLevel)).map { ColorScale.viridisBytes(Double($0) / Double(topLevel)) } + [(0xD0, 0xD7, 0xDE)]

    /// The PNG, one pixel per cell.
    func png() -> [UInt8] {
        PNGEncoder.encodeIndexed(width: columns, height: rows, indices: levels, palette: Self.palette)
    }
}
