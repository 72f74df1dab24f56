// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import MoERoutingPipeline
import VLLMCapture

/// The exit codes of `collect` and `run` after a capture: 130 after SIGINT, 143 after SIGTERM,
/// 1 when the capture failed.
enum CaptureExit {
    /// Prints the stopping error (with the Python traceback) and exits non-zero: 130 after
    /// Ctrl-C, 1 otherwise; an error that is not a capture error is rethrown as it is.
    static func fail(_ error: any Error) throws -> Never {
        guard let capture = error as? CaptureError else { throw error }
        if !capture.traceback.isEmpty {
            FileHandle.standardError.write(Data(capture.traceback.utf8))
            if !capture.traceback.hasSuffix("\n") { FileHandle.standardError.write(Data("\n".utf8)) }
        }
        Console.warn("error: \(capture.description)")
        if case .interrupted = capture { throw ExitCode(130) }
        throw ExitCode(1)
    }

    /// Exits after the outputs of an interrupted run were written: 130 after SIGINT, 143 after
    /// SIGTERM (also when the signal came after generation had finished). Does nothing otherwise.
    static func exitIfInterrupted(_ outcome: CaptureOutcome) throws {
        if let code = CaptureInterruption.exitCode { throw ExitCode(code) }
        if outcome.interruption != nil { throw ExitCode(130) }
    }
}
