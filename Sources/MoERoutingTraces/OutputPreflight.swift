// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// Checks made before a command starts its work: every output can be written, no output is one of
// the inputs (which writing it would destroy), no two outputs are one file, no input is given twice.

/// A file's identity: its device and inode, after symbolic links. Two paths with the same
/// identity are the same file (a symbolic link, a hard link, `./a` and `a`).
///
/// ```swift
/// FileIdentity(path: "a.moetrace") == FileIdentity(path: "link-to-a.moetrace")   // true
/// ```
public struct FileIdentity: Hashable, Sendable {
    /// The device holding the file.
    public var device: UInt64
    /// The file's inode on that device.
    public var inode: UInt64

    /// The identity of the file at `path` (symbolic links followed), or `nil` when there is none.
    public init?(path: String) {
        guard let st = LibC.status(path) else { return nil }
        device = st.device
        inode = st.inode
    }

    /// Refuses a list of inputs in which one file appears twice (the same path, or two paths of
    /// one file): read twice, every count would double.
    ///
    /// ```swift
    /// try FileIdentity.requireDistinct(["a.moetrace", "./a.moetrace"])
    /// // throws "./a.moetrace: the same file as a.moetrace, given twice; give each trace once (every count would double)"
    /// ```
    ///
    /// - Throws: ``TraceFileError`` naming both paths. Paths that do not exist are left to the
    ///   readers to report.
    public static func requireDistinct(_ paths: [String]) throws(TraceFileError) {
        var seen: [FileIdentity: String] = [:]
        for p in paths {
            guard let id = FileIdentity(path: p) else { continue }
            if let earlier = seen[id] {
                let what = earlier == p ? "given twice" : "the same file as \(earlier), given twice"
                throw TraceFileError(path: p, message: "\(what); give each trace once (every count would double)")
            }
            seen[id] = p
        }
    }
}

/// Checks, before a command starts its work, that each of its outputs can be written: so a
/// command fails at once with one line ("cannot write PATH: REASON") instead of after minutes of
/// work, and never overwrites one of its own inputs.
///
/// - Output directories are created when absent (`mkdir -p`); an existing one must be a directory.
/// - Each output directory, and the directory of each output file, is tried for real: a
///   temporary file is created there and removed, so the reason is the system's (`Permission
///   denied`, `Read-only file system`, `No such file or directory`), even for root, for whom
///   `access(2)` would say yes.
/// - An output file that exists and is the same file as an input (same device and inode, after
///   symbolic links) is refused: writing it would destroy the input. So are two outputs that are
///   one file.
///
/// ```swift
/// try OutputPreflight.check(files: ["out.moetrace"], inputs: ["in.jsonl"])
/// try OutputPreflight.check(files: ["out/run.json"], directories: ["out"])
/// ```
public enum OutputPreflight {
    /// Checks every output; see the type's description.
    ///
    /// - Parameters:
    ///   - files: Output files (their directories must exist, or be among `directories`).
    ///   - directories: Output directories, created when absent.
    ///   - inputs: The command's input files; none may be an output.
    /// - Throws: ``OutputFileError`` for the first output that cannot be written.
    public static func check(files: [String], directories: [String] = [], inputs: [String] = []) throws(OutputFileError)
    {
        for d in directories { try prepareDirectory(d) }
        var inputIDs: [FileIdentity: String] = [:]
        for p in inputs {
            if let id = FileIdentity(path: p), inputIDs[id] == nil { inputIDs[id] = p }
        }
        var outputIDs: [FileIdentity: String] = [:]
        var outputNames: [String: String] = [:]
        var probed: Set<String> = []
        for f in files {
            if let id = FileIdentity(path: f) {
                if let input = inputIDs[id] {
                    let same = input == f ? "it is also an input" : "it is the same file as the input \(input)"
                    throw OutputFileError(
                        path: f,
                        reason: "\(same); writing it would destroy that input, so name another output file"
                    )
                }
                if let other = outputIDs[id] {
                    throw OutputFileError(
                        path: f,
                        reason: "it is the same file as the output \(other); name different outputs"
                    )
                }
                outputIDs[id] = f
            }
            let name = canonicalName(f)
            if let other = outputNames[name] {
                throw OutputFileError(
                    path: f,
                    reason: "it is the same file as the output \(other); name different outputs"
                )
            }
            outputNames[name] = f
            try probeFile(f, probedDirectories: &probed)
        }
    }

    /// Creates `directory` when absent (parents too), checks it is a directory, and creates and
    /// removes a file in it.
    ///
    /// - Throws: ``OutputFileError`` naming the directory (or the component that is in the way).
    public static func prepareDirectory(_ directory: String) throws(OutputFileError) {
        let dir = trimmedDirectory(directory)
        try makeDirectory(dir, named: directory)
        try probeDirectory(dir, named: directory)
    }

    // MARK: - Steps

    /// `mkdir -p`, with the system's reason on failure.
    private static func makeDirectory(_ dir: String, named shown: String) throws(OutputFileError) {
        if let st = LibC.status(dir) {
            guard st.kind == .directory else {
                throw OutputFileError(
                    path: dir == trimmedDirectory(shown) ? shown : dir,
                    reason: "it exists and is not a directory"
                )
            }
            return
        }
        let parent = outputDirectoryName(dir)
        if parent != dir, parent != ".", parent != "/" {
            try makeDirectory(parent, named: shown)
        }
        if LibC.mkdir(dir, 0o755) != 0, LibC.errno != LibC.EEXIST {
            throw OutputFileError(path: dir == trimmedDirectory(shown) ? shown : dir, reason: binarySystemErrorText())
        }
    }

    /// Creates and removes a probe file in `dir`.
    private static func probeDirectory(_ dir: String, named shown: String) throws(OutputFileError) {
        let probe = AtomicOutputFile.temporaryPath(for: dir + "/.moe-routing-probe")
        let fd = LibC.open(probe, LibC.writeOnly | LibC.create | LibC.truncate | LibC.closeOnExec, 0o644)
        guard fd >= 0 else { throw OutputFileError(path: shown, reason: binarySystemErrorText()) }
        _ = LibC.close(fd)
        _ = LibC.unlink(probe)
    }

    /// Checks that a file can be written: an existing directory is refused; a device or pipe
    /// must be writable; otherwise the temporary file the writer will use is created and removed.
    private static func probeFile(_ file: String, probedDirectories: inout Set<String>) throws(OutputFileError) {
        if let st = LibC.status(file) {
            switch st.kind {
            case .directory:
                throw OutputFileError(path: file, reason: "it is a directory")
            case .regular:
                break
            case .symbolicLink, .other:
                guard LibC.isWritable(file) else { throw OutputFileError(path: file, reason: binarySystemErrorText()) }
                return
            }
        }
        let target = outputRealPath(file) ?? file
        let dir = outputDirectoryName(target)
        guard !probedDirectories.contains(dir) else { return }
        let probe = AtomicOutputFile.temporaryPath(for: target)
        let fd = LibC.open(probe, LibC.writeOnly | LibC.create | LibC.exclusive | LibC.closeOnExec, 0o644)
        if fd < 0 {
            // A stale temporary of an earlier process with this id is no proof either way.
            if LibC.errno == LibC.EEXIST { return }
            throw OutputFileError(path: file, reason: binarySystemErrorText())
        }
        _ = LibC.close(fd)
        _ = LibC.unlink(probe)
        probedDirectories.insert(dir)
    }

    // MARK: - Names

    /// A path without trailing slashes (`/` stays `/`).
    private static func trimmedDirectory(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    /// The name a file will have once written: the real path of its directory and its last
    /// component (the real path of the file itself when it exists).
    private static func canonicalName(_ file: String) -> String {
        if let real = outputRealPath(file) { return real }
        let dir = outputDirectoryName(file)
        let base = file.lastIndex(of: "/").map { String(file[file.index(after: $0)...]) } ?? file
        return (outputRealPath(dir) ?? dir) + "/" + base
    }
}
