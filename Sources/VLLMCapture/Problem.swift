// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// What a capture run generates for: problems (prompts with their domain and id) and the
// datasets they come from.

/// One prompt of a run: its domain (the dataset name), its id within the dataset and its text.
///
/// The pair (``domain``, ``problemID``) keys the problem's tokens in the trace.
public struct Problem: Sendable, Hashable, Codable {
    /// The domain label: the dataset's name (`humaneval`, `gsm8k`, or a JSONL file's base name).
    public var domain: String
    /// The problem's index in its dataset (independent of `--offset`).
    public var problemID: Int64
    /// The prompt text.
    public var prompt: String
    /// The dataset's own id (HumanEval's `task_id`), or `domain/index`.
    public var sourceID: String

    /// Creates a problem.
    public init(domain: String, problemID: Int64, prompt: String, sourceID: String? = nil) {
        self.domain = domain
        self.problemID = problemID
        self.prompt = prompt
        self.sourceID = sourceID ?? "\(domain)/\(problemID)"
    }
}

/// Where a run's prompts come from: `humaneval`, `gsm8k` or `jsonl:PATH`, optionally read from a
/// local file, with a slice of problems.
///
/// ```swift
/// let spec = try DatasetSpec(name: "humaneval", file: "../shared/data/humaneval.jsonl", numProblems: 4)
/// ```
public struct DatasetSpec: Sendable, Hashable {
    /// The dataset: `humaneval`, `gsm8k` or `jsonl:PATH`.
    public var name: String
    /// A local JSONL copy of a built-in dataset (`nil`: the hub, through the `datasets` package).
    public var file: String?
    /// The field holding the prompt (default: `prompt` for HumanEval and JSONL, `question` for GSM8K).
    public var promptField: String?
    /// How many problems to take, 1 or more (`nil`: all).
    public var numProblems: Int?
    /// How many problems to skip first.
    public var offset: Int

    /// The dataset names known besides `jsonl:PATH`.
    public static let builtinNames = ["humaneval", "gsm8k"]

    /// Creates a spec, checking the name and the numbers.
    ///
    /// - Throws: ``CaptureError/invalidOption(_:)`` for an unknown name, an empty `jsonl:` path,
    ///   a count below 1 or a negative offset.
    public init(
        name: String,
        file: String? = nil,
        promptField: String? = nil,
        numProblems: Int? = nil,
        offset: Int = 0
    )
        throws
    {
        if name.hasPrefix("jsonl:") {
            guard name.count > "jsonl:".count else {
                throw CaptureError.invalidOption("--dataset jsonl: needs a path, as in jsonl:prompts.jsonl")
            }
            if file != nil {
                throw CaptureError.invalidOption(
                    "a local file (--dataset NAME=PATH) applies to humaneval and gsm8k; jsonl:PATH already names its file"
                )
            }
        } else if !Self.builtinNames.contains(name) {
            throw CaptureError.invalidOption(
                "unknown dataset '\(name)': use \(Self.builtinNames.joined(separator: ", ")) or jsonl:PATH"
            )
        }
        if let numProblems, numProblems < 1 {
            throw CaptureError.invalidOption("--num-problems must be a positive integer, got \(numProblems)")
        }
        guard offset >= 0 else { throw CaptureError.invalidOption("--offset must be 0 or more, got \(offset)") }
        self.name = name
        self.file = file
        self.promptField = promptField
        self.numProblems = numProblems
        self.offset = offset
    }

    /// The domain label its problems get: the name, or a JSONL file's base name.
    public var domain: String {
        guard name.hasPrefix("jsonl:") else { return name }
        let path = String(name.dropFirst("jsonl:".count))
        let base = path.split(separator: "/").last.map(String.init) ?? path
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { return String(base[..<dot]) }
        return base.isEmpty ? "jsonl" : base
    }
}
