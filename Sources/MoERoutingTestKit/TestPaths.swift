// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation

/// Where tests find the package and the shared data (`../shared/data` beside the package root).
public enum TestPaths {
    /// The directory holding Package.swift, found by walking up from a test file's `#filePath`.
    public static func packageRoot(from filePath: String) -> URL? {
        var dir = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir.deleteLastPathComponent()
        }
        return nil
    }

    /// `../shared/data` beside the package root, when it exists.
    public static func sharedData(from filePath: String) -> URL? {
        guard let root = packageRoot(from: filePath) else { return nil }
        let data = root.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: data.path) ? data : nil
    }
}
