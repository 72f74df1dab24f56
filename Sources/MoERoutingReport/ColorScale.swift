// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The sequential colour scale of heatmaps: viridis (dark purple for the smallest value, yellow
/// for the largest), interpolated in Swift between ten anchor colours, so lightness rises
/// monotonically and the scale reads in grey and for common colour-vision deficiencies.
///
/// ```swift
/// let scale = ColorScale(minimum: 0, maximum: 0.5)
/// scale.hex(0.25)   // a teal, "#21908d"-ish
/// ```
struct ColorScale: Equatable {
    /// The value drawn in the darkest colour.
    var minimum: Double
    /// The value drawn in the brightest colour.
    var maximum: Double

    /// A scale over `[minimum, maximum]`; a degenerate range is widened so every value maps.
    init(minimum: Double, maximum: Double) {
        if minimum.isFinite, maximum.isFinite, minimum < maximum {
            self.minimum = minimum
            self.maximum = maximum
        } else if minimum.isFinite {
            self.minimum = minimum
            self.maximum = minimum + (minimum == 0 ? 1 : abs(minimum))
        } else {
            self.minimum = 0
            self.maximum = 1
        }
    }

    /// The smallest range covering every finite value of `matrices`, or nil when none is finite.
    static func covering(_ matrices: [[[Double]]]) -> ColorScale? {
        var lo = Double.infinity
        var hi = -Double.infinity
        for m in matrices {
            for row in m {
                for v in row where v.isFinite {
                    lo = min(lo, v)
                    hi = max(hi, v)
                }
            }
        }
        return lo.isFinite ? ColorScale(minimum: lo, maximum: hi) : nil
    }

    /// The range widened outwards to whole steps of 1, 2 or 5 × 10^n (about five of them), so
    /// the legend's ends are round numbers: 0.0003...0.4375 becomes 0...0.5.
    /// Widening can change the step the legend picks for the wider range; it is repeated until
    /// both ends are ticks of the legend's own step.
    func rounded() -> ColorScale {
        var lo = minimum
        var hi = maximum
        for _ in 0..<4 {
            let axis = AxisScale(minimum: lo, maximum: hi, targetTicks: Self.legendTicks, from: 0, to: 1)
            if axis.minimum == lo && axis.maximum == hi { break }
            lo = axis.minimum
            hi = axis.maximum
        }
        return ColorScale(minimum: lo, maximum: hi)
    }

    /// About how many steps a legend shows.
    static let legendTicks = 5

    /// Where `value` lies in the range, clamped to 0...1 (0 for non-finite values).
    func position(_ value: Double) -> Double {
        guard value.isFinite else { return 0 }
        return min(max((value - minimum) / (maximum - minimum), 0), 1)
    }

    /// The colour of `value` as "#rrggbb".
    func hex(_ value: Double) -> String { Self.viridisHex(position(value)) }

    /// Whether text over the colour of `value` should be dark (the colour is light).
    func wantsDarkText(_ value: Double) -> Bool {
        let (r, g, b) = Self.viridis(position(value))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 * 255
    }

    // MARK: - Viridis

    /// Viridis at ten evenly spaced positions (matplotlib's colour map sampled at i/9).
    static let anchors: [(Double, Double, Double)] = [
        (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x49, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
        (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6E, 0xCE, 0x58), (0xB5, 0xDE, 0x2B), (0xFD, 0xE7, 0x25),
    ]

    /// Viridis at `t` in 0...1 as 0-255 channels, linearly interpolated between anchors.
    static func viridis(_ t: Double) -> (Double, Double, Double) {
        let x = (t.isFinite ? min(max(t, 0), 1) : 0) * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2)
        let f = x - Double(i)
        let a = anchors[i]
        let b = anchors[i + 1]
        return (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
    }

    /// Viridis at `t` as rounded 8-bit channels (the bytes of ``viridisHex(_:)``).
    static func viridisBytes(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let (r, g, b) = viridis(t)
        func byte(_ v: Double) -> UInt8 { UInt8(min(max(v.rounded(), 0), 255)) }
        return (byte(r), byte(g), byte(b))
    }

    /// Viridis at `t` as "#rrggbb".
    static func viridisHex(_ t: Double) -> String {
        let (r, g, b) = viridisBytes(t)
        let digits = Array("0123456789abcdef")
        return "#" + [r, g, b].map { String(digits[Int($0 / 16)]) + String(digits[Int($0 % 16)]) }.joined()
    }

    /// The colour of `value` as 8-bit channels.
    func bytes(_ value: Double) -> (UInt8, UInt8, UInt8) { Self.viridisBytes(position(value)) }
}
