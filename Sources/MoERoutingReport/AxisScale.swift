// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A linear axis: a value range mapped onto a pixel range, with "nice" ticks (steps of 1, 2 or 5
/// times a power of ten) and labels that all carry the step's number of decimals.
///
/// ```swift
/// let axis = AxisScale(minimum: 0.03, maximum: 0.91, targetTicks: 5, from: 260, to: 0)
/// axis.ticks          // [0, 0.2, 0.4, 0.6, 0.8, 1]   (the range is widened to whole steps)
/// axis.label(0.2)     // "0.2"
/// axis.pixel(0.5)     // 130
/// ```
struct AxisScale {
    /// The lowest value of the axis (a tick).
    private(set) var minimum: Double
    /// The highest value of the axis (a tick).
    private(set) var maximum: Double
    /// Distance between ticks.
    private(set) var step: Double
    /// Decimals in tick labels.
    private(set) var decimals: Int
    /// Pixel of `minimum`.
    var start: Double
    /// Pixel of `maximum`.
    var end: Double

    /// An axis covering `minimum...maximum` (swapped if reversed, widened if empty or non-finite)
    /// with about `targetTicks` ticks; `wholeSteps` makes the range end on ticks; `integers` keeps
    /// the step at 1 or more (for layer numbers and other counts).
    init(
        minimum: Double,
        maximum: Double,
        targetTicks: Int,
        from start: Double,
        to end: Double,
        wholeSteps: Bool = true,
        integers: Bool = false
    ) {
        var lo = minimum.isFinite ? minimum : 0
        var hi = maximum.isFinite ? maximum : 1
        if lo > hi { swap(&lo, &hi) }
        if lo == hi {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        var (step, decimals) = Self.niceStep(span: hi - lo, targetTicks: max(targetTicks, 2))
        if integers && step < 1 {
            step = 1
            decimals = 0
        }
        self.step = step
        self.decimals = decimals
        if wholeSteps {
            lo = (lo / step).rounded(.down) * step
            hi = (hi / step).rounded(.up) * step
        }
        self.minimum = lo
        self.maximum = hi
        self.start = start
        self.end = end
    }

    /// The step closest to `span / targetTicks` among 1, 2, 5 × 10^n, and its decimals.
    static func niceStep(span: Double, targetTicks: Int) -> (Double, Int) {
        let raw = span / Double(targetTicks)
        guard raw.isFinite, raw > 0 else { return (1, 0) }
        guard raw >= 1e-9 else { return (1e-9, 9) }
        var power = 1.0
        var decimals = 0
        while power * 10 <= raw { power *= 10 }
        while power > raw {
            power /= 10
            decimals += 1
        }
        let fraction = raw / power
        if fraction < 1.5 { return (power, decimals) }
        if fraction < 3.5 { return (2 * power, decimals) }
        if fraction < 7.5 { return (5 * power, decimals) }
        return (10 * power, max(decimals - 1, 0))
    }

    /// Tick values from `minimum` to `maximum` inclusive (at most 200).
    var ticks: [Double] {
        let first = (minimum / step).rounded(.up)
        let last = (maximum / step + 1e-9).rounded(.down)
        guard first <= last else { return [] }
        var out: [Double] = []
        var i = first
        while i <= last && out.count < 200 {
            out.append(i * step)
            i += 1
        }
        return out
    }

    /// The pixel of `value` (not clamped).
    func pixel(_ value: Double) -> Double { start + (value - minimum) / (maximum - minimum) * (end - start) }

    /// A tick label with the step's decimals ("-0" spelled "0").
    func label(_ value: Double) -> String {
        let s = NumberFormat.fixed(value, decimals: decimals)
        return s.hasPrefix("-") && s.allSatisfy({ "-0.".contains($0) }) ? String(s.dropFirst()) : s
    }
}
