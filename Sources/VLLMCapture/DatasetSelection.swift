// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// The datasets a capture reads, as a user names them: `humaneval`, `gsm8k`, `NAME=PATH` (a local
/// JSONL copy of a built-in dataset) or `jsonl:PATH`, with one slice (count, offset) and prompt
/// field for all of them; none named means the built-in samples of both.
///
/// ```swift
/// let selection = DatasetSelection(["humaneval=../shared/data/humaneval.jsonl"], numProblems: 4)
/// let specs = try selection.specs(samples: CapturePythonPackage.samplePath)
/// ```
public struct DatasetSelection: Sendable, Hashable {
    /// The datasets, one string each (`humaneval`, `gsm8k`, `NAME=PATH`, `jsonl:PATH`).
    public var arguments: [String]
    /// The prompt field of `jsonl:PATH` datasets (`nil`: `prompt`).
    public var promptField: String?
    /// Problems to take from each dataset (`nil`: all).
    public var numProblems: Int?
    /// Problems to skip at the start of each dataset.
    public var offset: Int

    /// Creates a selection; nothing is checked until ``specs(samples:)``.
    public init(_ arguments: [String] = [], promptField: String? = nil, numProblems: Int? = nil, offset: Int = 0) {
        self.arguments = arguments
        self.promptField = promptField
        self.numProblems = numProblems
        self.offset = offset
    }

    /// The local files the datasets read (the `PATH` of `NAME=PATH` and `jsonl:PATH`), which no
    /// output may replace.
    public var inputFiles: [String] {
        arguments.compactMap { value in
            if value.hasPrefix("jsonl:") { return String(value.dropFirst("jsonl:".count)) }
            guard let eq = value.firstIndex(of: "=") else { return nil }
            return String(value[value.index(after: eq)...])
        }
    }

    /// The datasets to load; with none named, the built-in samples (`samples(name)` gives a
    /// sample's path, ``CapturePythonPackage/samplePath(_:)`` in a real run).
    ///
    /// - Throws: ``CaptureError/invalidOption(_:)`` naming the bad `--dataset` value and the fix.
    public func specs(samples: (String) throws -> String) throws -> [DatasetSpec] {
        if arguments.isEmpty {
            return try DatasetSpec.builtinNames.map {
                try DatasetSpec(name: $0, file: try samples($0), numProblems: numProblems, offset: offset)
            }
        }
        return try arguments.map { value in
            var name = value
            var file: String?
            if !value.hasPrefix("jsonl:"), let eq = value.firstIndex(of: "=") {
                name = String(value[..<eq])
                file = String(value[value.index(after: eq)...])
                guard DatasetSpec.builtinNames.contains(name) else {
                    throw CaptureError.invalidOption(
                        "--dataset \(value): NAME=PATH takes NAME \(DatasetSpec.builtinNames.joined(separator: " or ")); for another JSONL file use jsonl:PATH"
                    )
                }
                guard file?.isEmpty == false else {
                    throw CaptureError.invalidOption(
                        "--dataset \(value): give the file after '=', as in \(name)=data/\(name).jsonl"
                    )
                }
            }
            return try DatasetSpec(
                name: name,
                file: file,
                promptField: promptField,
                numProblems: numProblems,
                offset: offset
            )
        }
    }
}
