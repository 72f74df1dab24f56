// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Testing

@testable import MoERoutingCLI

/// Every `moe-routing …` command written in README.md, docs/*.md, the examples' READMEs and the
/// tool's own `--help` examples must parse with today's tool, and the cheap ones (inspect,
/// analyze, convert, demo on files that exist) must run, so the docs cannot drift from the tool.
struct DocumentedCommandsTests {
    /// One command found in a document.
    struct DocumentedCommand: CustomStringConvertible, Sendable {
        var source: String
        var line: Int
        var text: String
        var arguments: [String]
        /// The writer elided arguments (`...`): only the option names are checked.
        var elided: Bool
        var description: String { "\(source):\(line): \(text)" }
    }

    static let documents: [String] = {
        var files = ["README.md"]
        let fm = FileManager.default
        if let docs = try? fm.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("docs").path) {
            files += docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
        }
        if let examples = try? fm.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("examples").path) {
            files += examples.sorted().map { "examples/\($0)/README.md" }
                .filter { fm.fileExists(atPath: packageRoot.appendingPathComponent($0).path) }
        }
        return files
    }()

    /// The commands of every document and of every subcommand's `--help` examples.
    static let commands: [DocumentedCommand] = {
        var out: [DocumentedCommand] = []
        for file in documents {
            guard let text = try? String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8) else {
                continue
            }
            out += CommandExtractor.commands(inMarkdown: text, source: file)
        }
        let helpSources: [(String, CommandConfiguration)] =
            [("moe-routing --help", MoERoutingCommand.configuration)]
            + MoERoutingCommand.configuration.subcommands.map { ("\($0._commandName) --help", $0.configuration) }
        for (name, configuration) in helpSources {
            out += CommandExtractor.commands(inHelp: configuration.discussion, source: name)
        }
        return out
    }()

    @Test func findsTheDocumentedCommands() {
        // The extractor must see the commands it is meant to guard (a broken extractor that finds
        // nothing would pass every check below).
        #expect(Self.commands.count >= 25, "\(Self.commands)")
        let sources = Set(Self.commands.map(\.source))
        for expected in [
            "README.md", "docs/capture.md", "docs/plugins.md", "run --help", "analyze --help", "convert --help",
        ] {
            #expect(sources.contains(expected), "no command found in \(expected)")
        }
        #expect(Self.commands.contains { $0.arguments.first == "run" })
        #expect(Self.commands.contains { $0.arguments.first == "analyze" && $0.arguments.contains("--format") })
    }

    @Test func everyDocumentedCommandParses() {
        for command in Self.commands {
            if let problem = Self.parseProblem(command) {
                Issue.record("\(command)\n  does not parse: \(problem)")
            }
        }
    }

    @Test(.enabled(if: sharedData != nil, "needs ../shared/data"))
    func cheapDocumentedCommandsRun() throws {
        let scratch = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var ran = 0
        for command in Self.commands where !command.elided {
            guard let arguments = Self.runnable(command, scratch: scratch) else { continue }
            let r = try tool(arguments, timeout: 120)
            #expect(r.status == 0, "\(command)\n  ran as \(arguments) and exited \(r.status): \(r.stderr)")
            ran += 1
        }
        #expect(ran >= 5, "only \(ran) documented commands were cheap enough to run")
    }

    // MARK: - Checks

    /// Why the command does not parse with today's tool, or nil when it does.
    static func parseProblem(_ command: DocumentedCommand) -> String? {
        do {
            _ = try MoERoutingCommand.parseAsRoot(command.arguments)
            return nil
        } catch {
            let message = MoERoutingCommand.message(for: error)
            let placeholders = command.arguments.filter(isPlaceholder)
            if command.elided || !placeholders.isEmpty {
                // Elided or schematic commands: a missing argument is what the writer left out on
                // purpose, and a placeholder path ("/models/Mixtral-...") need not exist here;
                // anything else (an unknown name, a value the tool refuses) is drift.
                let leftOut = ["Missing expected argument", "give at least one trace file", "give at least one input"]
                if leftOut.contains(where: message.contains) { return nil }
                if placeholders.contains(where: { message.contains($0 + ":") }) { return nil }
                return message
            }
            return message
        }
    }

    /// Placeholders a writer uses for "a path of yours".
    static func isPlaceholder(_ argument: String) -> Bool {
        let upper = argument.uppercased() == argument && argument.contains(where: \.isLetter)
        return upper || argument.contains("<") || argument.hasPrefix("/models/")
    }

    /// The arguments to run a documented command cheaply, with outputs redirected into `scratch`,
    /// or nil when it is not cheap or needs files that are not here.
    static func runnable(_ command: DocumentedCommand, scratch: URL) -> [String]? {
        var arguments = command.arguments
        guard let sub = arguments.first, ["inspect", "analyze", "convert", "demo"].contains(sub) else { return nil }
        guard !arguments.contains(where: { $0.hasPrefix("--plugin") || $0 == "--help" }) else { return nil }
        // Expand globs and check that every input exists.
        var expanded: [String] = [sub]
        var index = 1
        var valueOf: String?
        while index < arguments.count {
            let a = arguments[index]
            if let option = valueOf {
                valueOf = nil
                if option == "--output" {
                    expanded.append(scratch.appendingPathComponent("out-\(command.line)").path)
                } else {
                    expanded.append(a)
                }
            } else if a.hasPrefix("--") {
                expanded.append(a)
                if [
                    "--output", "--format", "--shape", "--domain", "--layers", "--experts", "--top-k", "--analyzer",
                    "--analysis-seed", "--seed", "--phase", "--positions", "--problems", "--tokens", "--dependence",
                ]
                .contains(a) {
                    valueOf = a
                }
            } else if a.contains("*") {
                let matches = glob(a)
                guard !matches.isEmpty else { return nil }
                expanded += matches
            } else {
                expanded.append(a)
            }
            index += 1
        }
        arguments = expanded
        if sub == "convert" {
            // The last path is the output: write it into the scratch directory.
            guard let last = arguments.lastIndex(where: { !$0.hasPrefix("--") && $0 != sub }) else { return nil }
            arguments[last] =
                scratch.appendingPathComponent(
                    "converted-\(command.line)-" + (arguments[last] as NSString).lastPathComponent
                ).path
            let inputs = arguments[1..<last].filter { !$0.hasPrefix("--") }
            guard inputs.allSatisfy(exists) else { return nil }
        } else if sub == "demo" {
            if !arguments.contains("--output") {
                arguments += ["--output", scratch.appendingPathComponent("demo-\(command.line)").path]
            }
        } else {
            let traces = arguments.dropFirst().filter {
                $0.hasSuffix(".jsonl") || $0.hasSuffix(".moetrace") || $0.hasSuffix(".npz")
            }
            guard !traces.isEmpty, traces.allSatisfy(exists) else { return nil }
        }
        return arguments
    }

    static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(path).standardized.path)
            || (path.hasPrefix("/") && FileManager.default.fileExists(atPath: path))
    }

    /// Shell-style `*` expansion of one path pattern, relative to the package root.
    static func glob(_ pattern: String) -> [String] {
        let directory = (pattern as NSString).deletingLastPathComponent
        let name = (pattern as NSString).lastPathComponent
        let base = packageRoot.appendingPathComponent(directory).standardized.path
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
        let parts = name.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        return entries.filter { entry in
            guard entry.hasPrefix(parts[0]), entry.hasSuffix(parts[parts.count - 1]) else { return false }
            var rest = Substring(entry.dropFirst(parts[0].count))
            for part in parts.dropFirst().dropLast() {
                guard let r = rest.range(of: part) else { return false }
                rest = rest[r.upperBound...]
            }
            return rest.count >= parts[parts.count - 1].count
        }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }
}

/// Finds `moe-routing` command lines in Markdown (console blocks, inline code) and in `--help`
/// discussions, and splits them into arguments as a shell would (quotes, `\` continuations,
/// comments; redirections and pipes end the command).
enum CommandExtractor {
    static func commands(inMarkdown text: String, source: String) -> [DocumentedCommandsTests.DocumentedCommand] {
        var out: [DocumentedCommandsTests.DocumentedCommand] = []
        let lines = text.components(separatedBy: "\n")
        var inFence = false
        var i = 0
        while i < lines.count {
            let line = lines[i]
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                inFence.toggle()
                i += 1
                continue
            }
            if inFence {
                var full = line
                let start = i
                while full.hasSuffix("\\"), i + 1 < lines.count {
                    full = String(full.dropLast()) + " " + lines[i + 1]
                    i += 1
                }
                if let c = command(fromShellLine: full, source: source, line: start + 1) { out.append(c) }
            } else {
                // Inline code spans: `moe-routing ...`.
                var rest = Substring(line)
                while let open = rest.firstIndex(of: "`") {
                    let after = rest[rest.index(after: open)...]
                    guard let close = after.firstIndex(of: "`") else { break }
                    let span = String(after[..<close])
                    // A span in prose names a command rather than spelling all of it: check its
                    // subcommand and option names only.
                    if span.hasPrefix("moe-routing "), var c = command(fromShellLine: span, source: source, line: i + 1)
                    {
                        c.elided = true
                        out.append(c)
                    }
                    rest = after[after.index(after: close)...]
                }
            }
            i += 1
        }
        return out
    }

    static func commands(inHelp discussion: String, source: String) -> [DocumentedCommandsTests.DocumentedCommand] {
        var out: [DocumentedCommandsTests.DocumentedCommand] = []
        let lines = discussion.components(separatedBy: "\n")
        var i = 0
        while i < lines.count {
            var full = lines[i]
            let start = i
            while full.hasSuffix("\\"), i + 1 < lines.count {
                full = String(full.dropLast()) + " " + lines[i + 1]
                i += 1
            }
            let trimmed = full.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("moe-routing "),
                let c = command(fromShellLine: trimmed, source: source, line: start + 1)
            {
                out.append(c)
            }
            i += 1
        }
        return out
    }

    /// The command in one shell line, when it runs `moe-routing` (or `$BIN/moe-routing`).
    static func command(
        fromShellLine raw: String,
        source: String,
        line: Int
    ) -> DocumentedCommandsTests.DocumentedCommand? {
        var text = raw.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("$ ") { text.removeFirst(2) }
        let words = split(text)
        guard let first = words.firstIndex(where: { $0 == "moe-routing" || $0.hasSuffix("/moe-routing") }) else {
            return nil
        }
        // Only a command that starts the line (or follows `&&`), not prose that mentions the tool.
        guard first == 0 || words[first - 1] == "&&" else { return nil }
        var arguments: [String] = []
        var elided = false
        for w in words[(first + 1)...] {
            if ["|", "&&", ";", ">", ">>", "2>&1", "2>"].contains(w) || w.hasPrefix(">") || w.hasPrefix("#") { break }
            if w == "..." || w == "…" {
                elided = true
                continue
            }
            arguments.append(w)
        }
        guard !arguments.isEmpty else { return nil }
        return .init(source: source, line: line, text: text, arguments: arguments, elided: elided)
    }

    /// Splits on unquoted whitespace; single and double quotes group, and are removed.
    static func split(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for ch in text {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "'" || ch == "\"" {
                quote = ch
                inWord = true
            } else if ch == " " || ch == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(ch)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
