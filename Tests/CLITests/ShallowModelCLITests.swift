// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import MoERouting
import Testing

/// `moe-routing analyze` with every built-in analyzer finishes on models with one or two MoE
/// layers (multihop used to trap on them) and says what the depth does not allow.
struct ShallowModelCLITests {
    @Test(arguments: [1, 2, 3])
    func analyzeFinishesOnAShallowModel(layers: Int) throws {
        let dir = try temporaryDirectory()
        let demo = try tool([
            "demo", "--output", dir.path, "--problems", "3", "--tokens", "20", "--layers", "\(layers)", "--experts",
            "8", "--top-k", "2",
        ])
        #expect(demo.status == 0, "\(demo.stderr)")
        let trace = dir.appendingPathComponent("demo.moetrace").path
        let out = dir.appendingPathComponent("report")
        let r = try tool([
            "analyze", trace, "--analyzer", "transition", "multihop", "domain", "summary", "--format", "json",
            "--output", out.path,
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try ReportValue.parse(json: r.stdout)
        let multihop = json["multihop"]
        #expect(multihop?["distances"]?.arrayValue?.count == layers - 1)
        if layers <= 2 {
            #expect(multihop?["insufficient"]?["distances_2_and_more"]?.stringValue == "needs at least 3 MoE layers")
        }
        if layers == 1 {
            #expect(json["transition"]?["pooled"]?["insufficient"]?.stringValue == "needs at least 2 MoE layers")
        }
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.html").path))
    }
}
