// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import MoERoutingReport
import MoERoutingTestKit
import Testing

/// Renders a synthetic report with headless Chromium through `scripts/screenshot-report.sh` and
/// checks the PNG as a person would glance at it: the expected size, not blank, many colours.
/// Skipped (with a message) when no Chromium is on PATH; `scripts/test.sh` installs it.
struct ScreenshotTests {
    /// The package root: the nearest directory above this file holding Package.swift.
    static let packageRoot: URL? = TestPaths.packageRoot(from: #filePath)

    /// The first of chromium, chromium-browser on PATH.
    static let chromium: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser"] {
            for dir in path.split(separator: ":") {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        print("skipped: ScreenshotTests need chromium on PATH (apt-get install chromium, or scripts/test.sh)")
        return nil
    }()

    @Test(.enabled(if: chromium != nil && packageRoot != nil, "needs chromium on PATH (scripts/test.sh installs it)"))
    func screenshotOfSyntheticReportIsNotBlank() throws {
        let root = try #require(Self.packageRoot)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moe-report-screenshot-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = dir.appendingPathComponent("report.html")
        let png = dir.appendingPathComponent("report.png")
        try HTMLReport.render(
            ReportFixtures.mixtralSized(),
            title: "Synthetic report",
            subtitle: "32 layers, 8 experts"
        )
        .write(to: html, atomically: true, encoding: .utf8)

        let (status, output) = try TestProcess.run(
            "/bin/bash",
            [root.appendingPathComponent("scripts/screenshot-report.sh").path, html.path, png.path, "1200x2400"]
        )
        #expect(status == 0, "screenshot-report.sh failed: \(output)")

        let image = try PNGImage(bytes: Array(try Data(contentsOf: png)))
        #expect(image.width == 1200)
        #expect(image.height == 2400)
        let stats = image.colourStatistics()
        #expect(stats.nonWhiteShare > 0.05, "only \(stats.nonWhiteShare) of pixels are not white")
        #expect(stats.distinctColours > 20, "only \(stats.distinctColours) colours")
        if let keep = ProcessInfo.processInfo.environment["MOE_REPORT_SCREENSHOT_DIR"] {
            for f in [html, png] {
                let target = URL(fileURLWithPath: keep).appendingPathComponent(f.lastPathComponent)
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: f, to: target)
            }
        }
    }
}
