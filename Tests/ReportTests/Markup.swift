// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Test helpers that read the report's markup: the `<svg>` fragments of a page, substring
/// counts, and an XML parse (Foundation's `XMLParser`) that lists every element.
enum Markup {
    /// One parsed element: its name, attributes, and the text directly inside it.
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
    }

    /// Every `<svg ...>...</svg>` fragment, in document order (SVGs do not nest in the report).
    static func svgFragments(_ html: String) -> [String] {
        var out: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest[start.lowerBound...].range(of: "</svg>") {
            out.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// Non-overlapping occurrences of `needle`.
    static func count(_ needle: String, in haystack: String) -> Int {
        haystack.components(separatedBy: needle).count - 1
    }

    /// The text between the first `open` and the next `close` after it.
    static func between(_ open: String, _ close: String, in s: String) -> String? {
        guard let a = s.range(of: open), let b = s[a.upperBound...].range(of: close) else { return nil }
        return String(s[a.upperBound..<b.lowerBound])
    }

    /// Parses `xml`; returns the elements, or the parser's error.
    static func parse(_ xml: String) -> Result<[Element], ParseFailure> {
        let collector = Collector()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = collector
        if parser.parse() { return .success(collector.elements) }
        return .failure(
            ParseFailure(
                message: "\(parser.parserError.map { "\($0)" } ?? "unknown error") at line \(parser.lineNumber)"
            )
        )
    }

    struct ParseFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        var open: [Int] = []

        func parser(
            _ parser: XMLParser,
            didStartElement elementName: String,
            namespaceURI: String?,
            qualifiedName qName: String?,
            attributes attributeDict: [String: String] = [:]
        ) {
            open.append(elements.count)
            elements.append(Element(name: elementName, attributes: attributeDict, text: ""))
        }

        func parser(
            _ parser: XMLParser,
            didEndElement elementName: String,
            namespaceURI: String?,
            qualifiedName qName: String?
        ) {
            _ = open.popLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let i = open.last { elements[i].text += string }
        }
    }
}
