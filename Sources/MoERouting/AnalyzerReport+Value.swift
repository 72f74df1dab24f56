// speculative-moe
// SPDX-License-Identifier: Apache-2.0

extension AnalyzerReport {
    /// The whole report (payload, tables, figures, headlines, notes) as one JSON value: the form
    /// in which plugins hand reports across the C boundary (see `docs/plugins.md`).
    public var reportValue: ReportValue {
        [
            "analyzer": .string(analyzer),
            "title": .string(title),
            "json": json,
            "tables": .array(
                tables.map { t in
                    [
                        "title": .string(t.title), "columns": .array(t.columns.map(ReportValue.string)),
                        "rows": .array(t.rows.map { .array($0.map(ReportValue.string)) }),
                    ]
                }
            ),
            "figures": .array(figures.map(\.reportValue)),
            "headlines": .array(
                headlines.map {
                    ["label": .string($0.label), "value": .string($0.value), "reference": .string($0.reference)]
                }
            ),
            "notes": .array(notes.map(ReportValue.string)),
        ]
    }

    /// Reads a report written by ``reportValue``.
    ///
    /// - Throws: ``RoutingError/analyzerFailed(name:message:)`` naming the missing or mistyped field.
    public init(reportValue v: ReportValue) throws {
        func fail(_ m: String) -> RoutingError {
            .analyzerFailed(name: v["analyzer"]?.stringValue ?? "?", message: "bad report: \(m)")
        }
        guard let analyzer = v["analyzer"]?.stringValue else { throw fail("missing string 'analyzer'") }
        guard let json = v["json"] else { throw fail("missing 'json'") }
        let strings: (ReportValue?) throws -> [String] = { a in
            guard let arr = a?.arrayValue else { return [] }
            return try arr.map {
                guard let s = $0.stringValue else { throw fail("expected strings") }
                return s
            }
        }
        var tables: [ReportTable] = []
        for t in v["tables"]?.arrayValue ?? [] {
            tables.append(
                ReportTable(
                    title: t["title"]?.stringValue ?? "",
                    columns: try strings(t["columns"]),
                    rows: try (t["rows"]?.arrayValue ?? []).map { try strings($0) }
                )
            )
        }
        let headlines = (v["headlines"]?.arrayValue ?? []).map {
            Headline(
                label: $0["label"]?.stringValue ?? "",
                value: $0["value"]?.stringValue ?? "",
                reference: $0["reference"]?.stringValue ?? ""
            )
        }
        self.init(
            analyzer: analyzer,
            title: v["title"]?.stringValue ?? analyzer,
            json: json,
            tables: tables,
            figures: try (v["figures"]?.arrayValue ?? []).map { try ReportFigure(reportValue: $0) },
            headlines: headlines,
            notes: try strings(v["notes"])
        )
    }
}

extension ReportFigure {
    /// The figure as a JSON value (`{"kind": "heatmap"|"lines"|"bars", ...}`).
    public var reportValue: ReportValue {
        func nums(_ a: [Double]) -> ReportValue { .array(a.map { .number($0) }) }
        func strs(_ a: [String]) -> ReportValue { .array(a.map(ReportValue.string)) }
        switch self {
        case .heatmap(let h):
            return [
                "kind": "heatmap", "title": .string(h.title), "x_label": .string(h.xLabel),
                "y_label": .string(h.yLabel),
                "row_labels": strs(h.rowLabels), "column_labels": strs(h.columnLabels), "values": .matrix(h.values),
            ]
        case .lines(let c):
            return [
                "kind": "lines", "title": .string(c.title), "x_label": .string(c.xLabel), "y_label": .string(c.yLabel),
                "x": nums(c.x),
                "series": .array(
                    c.series.map { series in
                        var members: [ReportValue.Member] = [
                            .init("name", .string(series.name)), .init("values", nums(series.values)),
                            .init("dashed", .bool(series.dashed)),
                        ]
                        if let lower = series.lower { members.append(.init("lower", nums(lower))) }
                        if let upper = series.upper { members.append(.init("upper", nums(upper))) }
                        return .object(members)
                    }
                ),
            ]
        case .bars(let b):
            var members: [ReportValue.Member] = [
                .init("kind", "bars"), .init("title", .string(b.title)), .init("x_label", .string(b.xLabel)),
                .init("y_label", .string(b.yLabel)), .init("labels", strs(b.labels)), .init("values", nums(b.values)),
                .init("highlighted", .array(b.highlighted.map(ReportValue.bool))),
            ]
            // Optional parts only when present, so figures without them keep their bytes.
            if let lower = b.lower { members.append(.init("lower", nums(lower))) }
            if let upper = b.upper { members.append(.init("upper", nums(upper))) }
            if let reference = b.reference { members.append(.init("reference", nums(reference))) }
            if let label = b.referenceLabel { members.append(.init("reference_label", .string(label))) }
            return .object(members)
        }
    }

    /// Reads a figure written by ``reportValue``. Missing numbers (null) read as NaN.
    public init(reportValue v: ReportValue) throws {
        func nums(_ x: ReportValue?) -> [Double] { (x?.arrayValue ?? []).map { $0.doubleValue ?? .nan } }
        func strs(_ x: ReportValue?) -> [String] { (x?.arrayValue ?? []).map { $0.stringValue ?? "" } }
        let title = v["title"]?.stringValue ?? ""
        let xl = v["x_label"]?.stringValue ?? ""
        let yl = v["y_label"]?.stringValue ?? ""
        switch v["kind"]?.stringValue {
        case "heatmap":
            self = .heatmap(
                .init(
                    title: title,
                    xLabel: xl,
                    yLabel: yl,
                    rowLabels: strs(v["row_labels"]),
                    columnLabels: strs(v["column_labels"]),
                    values: (v["values"]?.arrayValue ?? []).map { nums($0) }
                )
            )
        case "lines":
            self = .lines(
                .init(
                    title: title,
                    xLabel: xl,
                    yLabel: yl,
                    x: nums(v["x"]),
                    series: (v["series"]?.arrayValue ?? []).map {
                        Series(
                            name: $0["name"]?.stringValue ?? "",
                            values: nums($0["values"]),
                            dashed: $0["dashed"] == .bool(true),
                            lower: $0["lower"].map { nums($0) },
                            upper: $0["upper"].map { nums($0) }
                        )
                    }
                )
            )
        case "bars":
            self = .bars(
                .init(
                    title: title,
                    xLabel: xl,
                    yLabel: yl,
                    labels: strs(v["labels"]),
                    values: nums(v["values"]),
                    highlighted: (v["highlighted"]?.arrayValue ?? []).map { $0 == .bool(true) },
                    lower: v["lower"].map { nums($0) },
                    upper: v["upper"].map { nums($0) },
                    reference: v["reference"].map { nums($0) },
                    referenceLabel: v["reference_label"]?.stringValue
                )
            )
        default:
            throw RoutingError.analyzerFailed(
                name: "?",
                message: "bad report: unknown figure kind \(v["kind"]?.jsonString() ?? "null")"
            )
        }
    }
}

extension AnalysisContext {
    /// The context as JSON: `{"shape":{...},"settings":{...},"seed":N}` (sorted settings keys;
    /// the seed a JSON number, exact up to `UInt64.max`).
    public var reportValue: ReportValue {
        var shapeMembers: [ReportValue.Member] = [
            .init("layers", .int(shape.layers)), .init("experts", .int(shape.experts)),
            .init("top_k", .int(shape.topK)),
        ]
        if let n = shape.name { shapeMembers.append(.init("name", .string(n))) }
        return [
            "shape": .object(shapeMembers),
            "settings": .object(settings.keys.sorted().map { .init($0, .string(settings[$0]!)) }),
            "seed": .integer(seed),
        ]
    }

    /// Reads a context written by ``reportValue``.
    ///
    /// The seed is a JSON number; a string of digits (as hosts before the seed became a number
    /// wrote it) is read too, and a missing seed is the default `0x5EED`.
    ///
    /// - Throws: ``RoutingError/invalidShape(_:)`` when the shape is missing or invalid;
    ///   ``RoutingError/analyzerFailed(name:message:)`` when the seed is not a whole number from 0
    ///   to `UInt64.max`.
    public init(reportValue v: ReportValue) throws {
        guard let s = v["shape"], let l = s["layers"]?.intValue, let e = s["experts"]?.intValue,
            let k = s["top_k"]?.intValue
        else {
            throw RoutingError.invalidShape("context JSON lacks shape.layers/experts/top_k")
        }
        var settings: [String: String] = [:]
        for m in v["settings"]?.objectMembers ?? [] { settings[m.key] = m.value.stringValue ?? m.value.jsonString() }
        var seed: UInt64 = 0x5EED
        if let value = v["seed"] {
            guard let exact = value.uint64Value ?? value.stringValue.flatMap({ UInt64($0) }) else {
                throw RoutingError.analyzerFailed(
                    name: "?",
                    message:
                        "context JSON: 'seed' must be a whole number from 0 to \(UInt64.max), not \(value.jsonString())"
                )
            }
            seed = exact
        }
        self.init(
            shape: try ModelShape(layers: l, experts: e, topK: k, name: s["name"]?.stringValue),
            settings: settings,
            seed: seed
        )
    }
}
