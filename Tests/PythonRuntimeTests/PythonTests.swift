// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Dispatch
import Foundation
import PythonRuntime
import PythonTestSupport
import Synchronization
import Testing

/// Start-up, the GIL and threads. Skipped (with a printed message) without the venv.
@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonTests {
    @Test func startsOnTheVenvWithTheIsolatedConfiguration() throws {
        let info = try #require(Python.runtimeInfo)
        #expect(info.environment == TestPython.environment)
        #expect(info.executable == TestPython.environment.pythonExecutable)
        #expect(info.libraryVersion == Python.libraryVersion)
        let facts = try Python.withGIL { gil throws in
            try gil.evaluate(
                "(sys.executable, sys.prefix, sys.orig_argv, sys.flags.utf8_mode, sys.flags.isolated, sys.version.split()[0])",
                globals: gil.run("import sys")
            ).tuple(as: String.self, String.self, [String].self, Int.self, Int.self, String.self)
        }
        #expect(facts.0 == TestPython.environment.pythonExecutable)
        #expect(
            URL(fileURLWithPath: facts.1).resolvingSymlinksInPath()
                == URL(fileURLWithPath: TestPython.environment.path).resolvingSymlinksInPath()
        )
        #expect(facts.2 == ["moe-routing"])
        #expect(facts.3 == 1)
        #expect(facts.4 == 1)
        #expect(facts.5 == Python.libraryVersion)
    }

    @Test func numpyComesFromTheVenvSitePackages() throws {
        let path = try Python.withGIL { gil throws in
            try gil.import("numpy").attribute("__file__").convert(to: String.self)
        }
        #expect(path.hasPrefix(TestPython.environment.path + "/lib/"))
    }

    @Test func initializeIsIdempotentFromManyThreads() throws {
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do { try Python.initialize(environment: TestPython.environment) } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(Python.isInitialized)
    }

    @Test func anotherVenvIsRefusedOnceRunning() throws {
        let other = try TestPython.fakeVenv(version: Python.libraryVersion)
        #expect(
            throws: PythonRuntimeError.alreadyInitialized(running: TestPython.environment.path, requested: other.path)
        ) {
            try Python.initialize(environment: other)
        }
    }

    @Test func versionMismatchAndMissingVenvAreRefusedBeforeAnythingElse() throws {
        let mismatched = try TestPython.fakeVenv(version: "3.9.0")
        #expect(
            throws: PythonRuntimeError.venvVersionMismatch(
                path: mismatched.path,
                venvVersion: "3.9.0",
                libraryVersion: Python.libraryVersion
            )
        ) { try Python.initialize(environment: mismatched) }
        let missing = PythonEnvironment(path: "/nonexistent/venv")
        #expect(throws: PythonRuntimeError.venvMissing(path: "/nonexistent/venv")) {
            try Python.initialize(environment: missing)
        }
    }

    @Test func libraryPathIsTheLoadedLibpython() throws {
        let path = try #require(Python.libraryPath)
        #expect(path.contains("libpython"))
        #expect(path.contains(String(Python.libraryVersion.split(separator: ".").prefix(2).joined(separator: "."))))
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func objectOperationsOutsideTheGILThrowInsteadOfCrashing() throws {
        let object = try Python.withGIL { gil throws in try gil.evaluate("[1, 2, 3]") }
        #expect(!Python.holdsGIL)
        #expect(throws: PythonRuntimeError.gilNotHeld(operation: "PythonObject.attribute")) {
            try object.attribute("append")
        }
        #expect(throws: PythonRuntimeError.self) { try object.convert(to: [Int].self) }
        // description takes the GIL by itself.
        #expect(object.description == "[1, 2, 3]")
    }

    @Test func gilFromManyThreadsConcurrently() throws {
        let wrong = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<200 {
                do {
                    let value = try Python.withGIL { gil throws in
                        try gil.evaluate("sum(range(\(i)))").convert(to: Int.self)
                    }
                    if value != i * (i - 1) / 2 { wrong.withLock { $0 += 1 } }
                } catch {
                    wrong.withLock { $0 += 1 }
                }
            }
            _ = worker
        }
        #expect(wrong.withLock { $0 } == 0)
    }

    @Test func gilFromTaskGroupTasks() async throws {
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<16 {
                group.addTask {
                    // Never await while holding the GIL: the whole scope is synchronous.
                    try Python.withGIL { gil throws in
                        let list = try (0..<100).map { $0 + task }.pythonObject()
                        return try gil.builtins().attribute("sum").call(list).convert(to: Int.self)
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        // sum over tasks t of sum(i + t for i in 0..<100) = 16 * 4950 + 100 * 120
        #expect(total == 16 * 4950 + 100 * 120)
    }

    @Test func nestedGILScopesWork() throws {
        let value = try Python.withGIL { outer in
            let a = try outer.evaluate("20").convert(to: Int.self)
            let b = try Python.withGIL { inner in try inner.evaluate("22").convert(to: Int.self) }
            return a + b
        }
        #expect(value == 42)
    }

    @Test func withoutGILLetsAnotherThreadTakeIt() throws {
        let otherThreadGotIt = try Python.withGIL { gil -> Bool in
            _ = try gil.evaluate("0")
            return Python.withoutGIL {
                #expect(!Python.holdsGIL)
                let done = DispatchSemaphore(value: 0)
                Thread.detachNewThread {
                    _ = try? Python.withGIL { gil throws in try gil.evaluate("1 + 1") }
                    done.signal()
                }
                // Were the GIL still held by this thread, the other thread could never finish.
                return done.wait(timeout: .now() + 30) == .success
            }
        }
        #expect(otherThreadGotIt)
    }

    @Test func releasingObjectsOnOtherThreadsDropsTheirReferences() throws {
        final class Holder: @unchecked Sendable { var object: PythonObject? }
        let globals = try Python.withGIL { gil throws in try gil.run("import sys\nsentinel = object()") }
        func references() throws -> Int {
            try Python.withGIL { gil throws in
                try gil.evaluate("sys.getrefcount(sentinel)", globals: globals).convert(to: Int.self)
            }
        }
        let before = try references()
        let holders = try Python.withGIL { _ throws in
            try (0..<32).map { _ in
                let holder = Holder()
                holder.object = try globals.item("sentinel")
                return holder
            }
        }
        #expect(try references() == before + 32)
        // Each last Swift reference goes away on a pool thread that does not hold the GIL.
        DispatchQueue.concurrentPerform(iterations: holders.count) { index in holders[index].object = nil }
        #expect(try references() == before)
    }
}
