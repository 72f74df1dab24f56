// speculative-moe
// SPDX-License-Identifier: Apache-2.0

public import Foundation
import PythonRuntime

/// The checks behind `moe-routing doctor`: can this machine capture routing in-process?
///
/// They report the embedded libpython (path and version), the venv (path and Python version;
/// found as ``MoERoutingVenv`` says), the interpreter start-up, torch (version and device), vLLM
/// (version), and whether vLLM can run its engine in this process. The Python checks run Python
/// code in the embedded interpreter, starting it on the venv if needed; importing vLLM takes
/// several seconds. These checks are this project's: the generic runtime knows nothing of vLLM.
///
/// ```swift
/// let checks = PythonDoctor.run(venvPath: options.venv)
/// checks.flatMap(\.lines).forEach { print($0) }
/// if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
/// ```
public enum PythonDoctor {
    /// How to create the venv: from a checkout the script or `moe-routing setup`, elsewhere
    /// `moe-routing setup`.
    static func setupFix(inCheckout: Bool) -> String {
        inCheckout ? "run scripts/setup-python.sh (or `moe-routing setup`)" : "run `moe-routing setup`"
    }

    /// Runs every check, in order, and never throws: failures are ``DoctorCheck`` values.
    ///
    /// - Parameters:
    ///   - venvPath: an explicit venv (the `--venv` option); else `MOE_ROUTING_VENV`, else the
    ///     checkout's `.venv`, else the per-user default (``MoERoutingVenv``).
    ///   - environment: the process environment.
    ///   - currentDirectory: where to look for the checkout.
    ///   - executablePath: the running program (its directories are searched for a checkout too).
    ///   - includeVLLM: whether to import vLLM (the slow part); `false` stops after torch.
    public static func run(
        venvPath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first,
        includeVLLM: Bool = true
    ) -> [DoctorCheck] {
        let inCheckout = ProjectCheckout.find(currentDirectory: currentDirectory, executablePath: executablePath) != nil
        let setupFix = Self.setupFix(inCheckout: inCheckout)
        func fix(for error: any Error) -> String { Self.fix(for: error, setupFix: setupFix) }
        func describe(_ error: any Error) -> String {
            "\(MoERoutingVenv.explained(error, currentDirectory: currentDirectory, executablePath: executablePath))"
        }
        var checks: [DoctorCheck] = []
        let version = Python.libraryVersion
        let libraryPath = Python.libraryPath ?? "(path unknown)"
        checks.append(DoctorCheck(name: "libpython", status: .ok, detail: "\(version) at \(libraryPath)"))

        // The venv.
        let venv: PythonEnvironment
        do {
            venv = try MoERoutingVenv.locate(
                explicitPath: venvPath,
                environment: environment,
                currentDirectory: currentDirectory,
                executablePath: executablePath
            ).environment
            let info = try venv.validate(libraryVersion: version)
            checks.append(DoctorCheck(name: "venv", status: .ok, detail: "\(venv.path) (Python \(info.version))"))
        } catch {
            checks.append(DoctorCheck(name: "venv", status: .fail, detail: describe(error), fix: fix(for: error)))
            return checks + notRun(["interpreter", "torch"] + (includeVLLM ? ["vllm", "in-process vllm"] : []))
        }

        // The interpreter.
        do {
            let info = try Python.initialize(environment: venv)
            checks.append(
                DoctorCheck(
                    name: "interpreter",
                    status: .ok,
                    detail: "started; sys.executable \(info.executable), sys.prefix \(info.prefix)"
                )
            )
        } catch {
            checks.append(
                DoctorCheck(name: "interpreter", status: .fail, detail: describe(error), fix: fix(for: error))
            )
            return checks + notRun(["torch"] + (includeVLLM ? ["vllm", "in-process vllm"] : []))
        }

        checks.append(
            pythonCheck(
                name: "torch",
                fix: setupFix,
                source: """
                    import torch
                    if torch.cuda.is_available():
                        name = torch.cuda.get_device_name(0)
                        device = f"cuda ({torch.cuda.device_count()} x {name}, CUDA {torch.version.cuda})"
                    else:
                        device = "cpu"
                    result = f"{torch.__version__}, device {device}"
                    """
            )
        )
        guard includeVLLM else { return checks }
        let vllm = pythonCheck(
            name: "vllm",
            fix: setupFix,
            source: """
                import sys, vllm
                where = vllm.__file__ or ""
                if not where.startswith(sys.prefix):
                    raise RuntimeError(f"vllm imported from {where}, outside the venv {sys.prefix}")
                result = f"{vllm.__version__} at {where.rsplit('/', 2)[0]}"
                """
        )
        checks.append(vllm)
        guard vllm.passed else { return checks + notRun(["in-process vllm"]) }
        checks.append(
            pythonCheck(
                name: "in-process vllm",
                fix: "check that nothing in this process overrides VLLM_ENABLE_V1_MULTIPROCESSING; \(setupFix)",
                source: """
                    import os, sys
                    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
                    import vllm.envs as envs
                    if envs.VLLM_ENABLE_V1_MULTIPROCESSING:
                        raise RuntimeError("VLLM_ENABLE_V1_MULTIPROCESSING=0 is not honoured: "
                                           "the engine would run in a child process")
                    if "vllm" not in sys.modules:
                        raise RuntimeError("vllm is not loaded in this process")
                    result = "vllm loaded in this process; VLLM_ENABLE_V1_MULTIPROCESSING=0 keeps the engine here"
                    """
            )
        )
        return checks
    }

    /// The printed report: every check's lines.
    public static func render(_ checks: [DoctorCheck]) -> String {
        checks.flatMap(\.lines).joined(separator: "\n")
    }

    private static func notRun(_ names: [String]) -> [DoctorCheck] {
        names.map {
            DoctorCheck(
                name: $0,
                status: .fail,
                detail: "not checked (an earlier check failed)",
                fix: "fix the failures above first"
            )
        }
    }

    /// Runs `source` in a fresh globals dict; its `result` variable (a `str`) is the detail.
    private static func pythonCheck(name: String, fix: String, source: String) -> DoctorCheck {
        do {
            let detail = try Python.withGIL { gil in
                try gil.run(source, filename: "<doctor:\(name)>").item("result").convert(to: String.self)
            }
            return DoctorCheck(name: name, status: .ok, detail: detail)
        } catch {
            return DoctorCheck(name: name, status: .fail, detail: oneLine("\(error)"), fix: fix)
        }
    }

    private static func fix(for error: any Error, setupFix: String) -> String {
        if case .noUserDataDirectory? = error as? MoERoutingEnvironmentError {
            return "pass --venv PATH or set MOE_ROUTING_VENV"
        }
        switch error as? PythonRuntimeError {
        case .venvVersionMismatch(let path, _, _)?, .venvInvalid(let path, _)?:
            return "rm -rf '\(path)', then \(setupFix)"
        case .venvMissing?: return setupFix
        case .alreadyInitialized?: return "run the doctor in a process of its own"
        default: return "check the message above; \(setupFix)"
        }
    }

    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}
