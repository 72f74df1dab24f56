// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import PythonTestSupport
import Synchronization
import Testing

private struct Boom: Error, CustomStringConvertible {
    var code: Int
    var description: String { "boom \(code)" }
}

private struct WrappedFailure: PythonErrorWrapper, CustomStringConvertible {
    var underlying: PythonError
    var wrappedPythonError: PythonError? { underlying }
    var description: String { "wrapped: \(underlying)" }
}

/// Swift functions called from Python: arguments, results, errors both ways, reference counts.
@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonFunctionTests {
    @Test func positionalAndKeywordArgumentsAndResults() throws {
        try Python.withGIL { gil throws in
            let function = try gil.defineFunction(module: "moe_test_args", name: "combine", doc: "Combines.") { args in
                try args.requireCount(1...2)
                let base = try args.value(at: 0, as: Int.self)
                let step = args.count > 1 ? try args.value(at: 1, as: Int.self) : 1
                let label = try args.keyword("label")?.convert(to: String.self) ?? "none"
                return try "\(label):\(base + step):\(args.keywords.joined(separator: ","))".pythonObject()
            }
            #expect(try function.attribute("__name__").convert(to: String.self) == "combine")
            #expect(try function.attribute("__module__").convert(to: String.self) == "moe_test_args")
            #expect(try function.attribute("__doc__").convert(to: String.self) == "Combines.")
            let globals = try gil.run(
                """
                import moe_test_args
                a = moe_test_args.combine(40)
                b = moe_test_args.combine(40, 2, label="x", other=None)
                c = moe_test_args.combine.__self__ is not None
                """
            )
            #expect(try globals.item("a").convert(to: String.self) == "none:41:")
            #expect(try globals.item("b").convert(to: String.self) == "x:42:label,other")
            #expect(try globals.item("c").convert(to: Bool.self))
        }
    }

    @Test func returningNilGivesNone() throws {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_none", name: "nothing") { _ in nil }
            #expect(try gil.evaluate("__import__('moe_test_none').nothing() is None").convert(to: Bool.self))
        }
    }

    @Test func argumentErrorsNameTheFunctionAndArgument() throws {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_argerr", name: "needs_int") { args in
                try args.requireCount(1)
                try args.requireNoKeywords()
                return try (args.value(at: 0, as: Int.self) * 2).pythonObject()
            }
            let globals = try gil.run(
                """
                import moe_test_argerr
                def attempt(*a, **k):
                    try:
                        moe_test_argerr.needs_int(*a, **k)
                    except Exception as e:
                        return f"{type(e).__name__}: {e}"
                wrong_type = attempt("seven")
                wrong_count = attempt(1, 2)
                keyword = attempt(1, x=2)
                ok = moe_test_argerr.needs_int(21)
                """
            )
            #expect(
                try globals.item("wrong_type").convert(to: String.self)
                    == "TypeError: needs_int() argument 1: expected int for Swift Int, got str"
            )
            #expect(
                try globals.item("wrong_count").convert(to: String.self)
                    == "TypeError: needs_int() takes 1 positional arguments but 2 were given"
            )
            #expect(
                try globals.item("keyword").convert(to: String.self)
                    == "TypeError: needs_int() takes no keyword arguments (got x)"
            )
            #expect(try globals.item("ok").convert(to: Int.self) == 42)
        }
    }

    @Test func swiftErrorInCallbackBecomesRuntimeError() throws {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_swifterr", name: "fail") { args in
                throw Boom(code: try args.value(at: 0, as: Int.self))
            }
            try gil.defineFunction(module: "moe_test_swifterr", name: "fail_typed") { _ in
                throw PythonError(typeName: "KeyError", message: "no such expert")
            }
            let globals = try gil.run(
                """
                import moe_test_swifterr
                try:
                    moe_test_swifterr.fail(42)
                except RuntimeError as e:
                    caught = (type(e).__name__, str(e))
                try:
                    moe_test_swifterr.fail_typed()
                except KeyError as e:
                    typed = (type(e).__name__, e.args[0])
                """
            )
            #expect(try globals.item("caught").tuple(as: String.self, String.self) == ("RuntimeError", "boom 42"))
            #expect(try globals.item("typed").tuple(as: String.self, String.self) == ("KeyError", "no such expert"))
        }
    }

    @Test func pythonExceptionInTheMiddleOfACallbackIsReraisedAsTheSameObject() throws {
        try Python.withGIL { gil throws in
            let globals = try gil.run(
                """
                class RouterFailure(Exception):
                    pass
                last = None
                def explode(n):
                    global last
                    last = RouterFailure(f"layer {n}")
                    raise last
                """
            )
            let explode = try globals.item("explode")
            // The Swift function calls back into Python, which raises; Swift propagates the error.
            try gil.defineFunction(module: "moe_test_reraise", name: "relay") { args in
                try explode.call(args.value(at: 0, as: Int.self))
            }
            // A Swift error wrapping the Python one re-raises the original too.
            try gil.defineFunction(module: "moe_test_reraise", name: "wrap") { args in
                do {
                    return try explode.call(args.value(at: 0, as: Int.self))
                } catch let error as PythonError {
                    throw WrappedFailure(underlying: error)
                }
            }
            try gil.run(
                """
                import moe_test_reraise, traceback
                for name in ("relay", "wrap"):
                    try:
                        getattr(moe_test_reraise, name)(3)
                    except RouterFailure as e:
                        assert e is last, "not the original exception object"
                        assert str(e) == "layer 3"
                        assert "in explode" in "".join(traceback.format_exception(e))
                    else:
                        raise AssertionError("no exception")
                """,
                globals: globals
            )
        }
        // Outside Python, Swift sees the error with its type name.
        do {
            try Python.withGIL { gil throws in try gil.run("import moe_test_reraise\nmoe_test_reraise.relay(9)") }
            Issue.record("expected an error")
        } catch let error as PythonError {
            #expect(error.typeName == "__swift__.RouterFailure")
            #expect(error.message == "layer 9")
            #expect(error.traceback.contains("in explode"))
        }
    }

    @Test func referenceCountsStayFlatOverManyCalls() throws {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_refs", name: "touch") { args in
                // Takes an owned reference, converts, builds and returns a new object.
                let object = try args.object(at: 0)
                let items = try object.convert(to: [Int].self)
                return try [items.count, items.reduce(0, +)].pythonObject()
            }
            // Other tests run Python code on other threads meanwhile: the checks only look at
            // what this code owns (the payload's count, lists equal to the result, and memory
            // allocated from this file's frames).
            let globals = try gil.run(
                """
                import sys, gc, tracemalloc, moe_test_refs
                payload = [1, 2, 3]
                def run(n):
                    for _ in range(n):
                        result = moe_test_refs.touch(payload)
                def results_alive():
                    return sum(1 for o in gc.get_objects() if type(o) is list and o == [3, 6])
                def measure(n):
                    run(100)
                    gc.collect()
                    refs_before, alive_before = sys.getrefcount(payload), results_alive()
                    tracemalloc.start()
                    try:
                        first = tracemalloc.take_snapshot()
                        run(n)
                        second = tracemalloc.take_snapshot()
                    finally:
                        tracemalloc.stop()
                    refs_after, alive_after = sys.getrefcount(payload), results_alive()
                    leaked = sum(stat.size_diff for stat in second.compare_to(first, "filename")
                                 if stat.traceback[0].filename == "<refcount-test>")
                    return refs_before, refs_after, alive_before, alive_after, leaked
                """,
                filename: "<refcount-test>"
            )
            let (refsBefore, refsAfter, aliveBefore, aliveAfter, leaked) = try globals.item("measure").call(10_000)
                .tuple(as: Int.self, Int.self, Int.self, Int.self, Int.self)
            #expect(refsBefore == refsAfter)
            #expect(aliveBefore == aliveAfter)
            // Free lists may keep a few objects allocated meanwhile (tens of bytes); a leak of one
            // object per call would be hundreds of kilobytes.
            #expect(leaked < 4096)
            let function = try gil.import("moe_test_refs").attribute("touch")
            #expect(function.referenceCount < 10)
        }
    }

    @Test func pythonThreadsCallSwiftConcurrently() throws {
        let calls = Atomic<Int>(0)
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_threads", name: "slow_square") { args in
                let value = try args.value(at: 0, as: Int.self)
                calls.add(1, ordering: .relaxed)
                // Long Swift work without the GIL lets the other Python threads in.
                Python.withoutGIL { usleep(1000) }
                return try (value * value).pythonObject()
            }
            let globals = try gil.run(
                """
                import threading, moe_test_threads
                results = {}
                def work(k):
                    results[k] = sum(moe_test_threads.slow_square(i) for i in range(k, k + 20))
                threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
                for t in threads: t.start()
                for t in threads: t.join()
                """
            )
            let results = try globals.item("results").convert(to: [Int: Int].self)
            for k in 0..<4 {
                #expect(results[k] == (k..<(k + 20)).reduce(0) { $0 + $1 * $1 })
            }
        }
        #expect(calls.load(ordering: .relaxed) == 80)
    }

    @Test func functionsAreFreedWithTheirLastReference() throws {
        final class Sentinel: Sendable {
            let onDeinit: @Sendable () -> Void
            init(_ onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
            deinit { onDeinit() }
        }
        let freed = Mutex(false)
        try Python.withGIL { gil throws in
            let sentinel = Sentinel { freed.withLock { $0 = true } }
            try gil.defineFunction(module: "moe_test_free", name: "temporary") { _ in
                withExtendedLifetime(sentinel) {}
                return nil
            }
            try gil.run("import moe_test_free\nmoe_test_free.temporary()\ndel moe_test_free.temporary")
        }
        #expect(freed.withLock { $0 })
    }
}
