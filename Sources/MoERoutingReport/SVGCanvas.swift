// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// Builds one compact `<svg>` element: coordinates rounded to one decimal, text escaped, styling
/// through the report's CSS classes (see ``Stylesheet``) rather than per-element style attributes.
///
/// ```swift
/// var svg = SVGCanvas(label: "Load by layer")
/// svg.rect(x: 0, y: 0, width: 10, height: 10, fill: "#440154", title: "layer 0: 0.5")
/// svg.text("layer", x: 5, y: 20, class: "ax", anchor: .middle)
/// let markup = svg.finish(width: 100, height: 40)
/// ```
struct SVGCanvas {
    /// Horizontal anchoring of a text element.
    enum Anchor: String {
        case start, middle, end
    }

    /// The accessible name of the figure (`aria-label`).
    var label: String
    /// Extra classes on the `<svg>` element.
    var classes: String
    /// Definitions (gradients, patterns) emitted first inside `<defs>`.
    private(set) var defs = ""
    /// The drawing, in document order.
    private(set) var body = ""

    init(label: String, classes: String = "chart") {
        self.label = label
        self.classes = classes
    }

    private static func c(_ v: Double) -> String { NumberFormat.coordinate(v) }

    /// Appends markup as is (the caller escapes any text in it).
    mutating func raw(_ markup: String) { body += markup }

    /// Appends a definition as is.
    mutating func define(_ markup: String) { defs += markup }

    /// A rectangle with an optional tooltip (`<title>`) and class.
    mutating func rect(
        x: Double,
        y: Double,
        width: Double,
        height: Double,
        fill: String? = nil,
        class cls: String? = nil,
        title: String? = nil
    ) {
        body +=
            "<rect x=\"\(Self.c(x))\" y=\"\(Self.c(y))\" width=\"\(Self.c(max(width, 0)))\" height=\"\(Self.c(max(height, 0)))\""
        if let cls { body += " class=\"\(cls)\"" }
        if let fill { body += " fill=\"\(fill)\"" }
        if let title {
            body += "><title>\(HTMLEscaping.escape(title))</title></rect>"
        } else {
            body += "/>"
        }
    }

    /// A straight line.
    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, class cls: String, stroke: String? = nil) {
        body +=
            "<line x1=\"\(Self.c(x1))\" y1=\"\(Self.c(y1))\" x2=\"\(Self.c(x2))\" y2=\"\(Self.c(y2))\" class=\"\(cls)\""
        if let stroke { body += " stroke=\"\(stroke)\"" }
        body += "/>"
    }

    /// A straight line with a tooltip (`<title>`), for markers that carry a value.
    mutating func line(
        x1: Double,
        y1: Double,
        x2: Double,
        y2: Double,
        class cls: String,
        stroke: String? = nil,
        title: String
    ) {
        body +=
            "<line x1=\"\(Self.c(x1))\" y1=\"\(Self.c(y1))\" x2=\"\(Self.c(x2))\" y2=\"\(Self.c(y2))\" class=\"\(cls)\""
        if let stroke { body += " stroke=\"\(stroke)\"" }
        body += "><title>\(HTMLEscaping.escape(title))</title></line>"
    }

    /// A closed, filled polygon through `points` (an interval band), filled with `fill`.
    mutating func polygon(_ points: [(Double, Double)], fill: String, class cls: String) {
        guard points.count > 2 else { return }
        let list = points.map { "\(Self.c($0.0)),\(Self.c($0.1))" }.joined(separator: " ")
        body += "<polygon points=\"\(list)\" class=\"\(cls)\" fill=\"\(fill)\"/>"
    }

    /// A polyline through `points`; `dashed` draws it dashed.
    mutating func polyline(_ points: [(Double, Double)], stroke: String, dashed: Bool) {
        guard points.count > 1 else { return }
        let list = points.map { "\(Self.c($0.0)),\(Self.c($0.1))" }.joined(separator: " ")
        body += "<polyline points=\"\(list)\" class=\"\(dashed ? "series dashed" : "series")\" stroke=\"\(stroke)\"/>"
    }

    /// A circle with a tooltip.
    mutating func circle(cx: Double, cy: Double, r: Double, fill: String, class cls: String = "pt", title: String) {
        body +=
            "<circle cx=\"\(Self.c(cx))\" cy=\"\(Self.c(cy))\" r=\"\(Self.c(r))\" class=\"\(cls)\" fill=\"\(fill)\">"
        body += "<title>\(HTMLEscaping.escape(title))</title></circle>"
    }

    /// A text element; `rotate` turns it about its anchor point (degrees); `title` adds a tooltip
    /// (for labels shortened to fit).
    mutating func text(
        _ s: String,
        x: Double,
        y: Double,
        class cls: String,
        anchor: Anchor = .start,
        rotate: Double? = nil,
        fill: String? = nil,
        title: String? = nil
    ) {
        body += "<text x=\"\(Self.c(x))\" y=\"\(Self.c(y))\" class=\"\(cls)\""
        if anchor != .start { body += " text-anchor=\"\(anchor.rawValue)\"" }
        if let rotate { body += " transform=\"rotate(\(Self.c(rotate)) \(Self.c(x)) \(Self.c(y)))\"" }
        if let fill { body += " fill=\"\(fill)\"" }
        body += ">"
        if let title { body += "<title>\(HTMLEscaping.escape(title))</title>" }
        body += "\(HTMLEscaping.escape(s))</text>"
    }

    /// The finished `<svg>` element, `width` × `height` pixels, scaling down to fit its container.
    func finish(width: Double, height: Double, standalone: Bool = false) -> String {
        let w = Self.c(width.rounded(.up))
        let h = Self.c(height.rounded(.up))
        var out =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"\(classes)\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
        out += " role=\"img\" aria-label=\"\(HTMLEscaping.escape(label))\">"
        if standalone { out += "<style>\(Stylesheet.svg)</style>" }
        if !defs.isEmpty { out += "<defs>\(defs)</defs>" }
        out += body + "</svg>"
        return out
    }
}
