// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Foundation
import PythonRuntime
import PythonTestSupport
import Testing

@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonGILTests {
    @Test func importsModules() throws {
        try Python.withGIL { gil throws in
            #expect(try gil.import("math").attribute("pi").convert(to: Double.self) == Double.pi)
            #expect(try gil.import("os.path").attribute("__name__").convert(to: String.self) == "posixpath")
            do {
                _ = try gil.import("no_such_module_xyz")
                Issue.record("expected ModuleNotFoundError")
            } catch let error as PythonError {
                #expect(error.typeName == "ModuleNotFoundError")
                #expect(error.message == "No module named 'no_such_module_xyz'")
            }
        }
    }

    @Test func runUsesAFreshGlobalsDictEachTime() throws {
        try Python.withGIL { gil throws in
            let first = try gil.run("x = 41\ny = x + 1")
            #expect(try first.item("y").convert(to: Int.self) == 42)
            let second = try gil.run("present = 'x' in globals()")
            #expect(try second.item("present").convert(to: Bool.self) == false)
            // Reusing globals keeps state.
            try gil.run("x += 1", globals: first)
            #expect(try first.item("x").convert(to: Int.self) == 42)
            #expect(try gil.evaluate("__name__", globals: gil.newGlobals()).convert(to: String.self) == "__swift__")
        }
    }

    @Test func evaluatesExpressions() throws {
        try Python.withGIL { gil throws in
            #expect(try gil.evaluate("sum(i * i for i in range(10))").convert(to: Int.self) == 285)
            let globals = try gil.newGlobals()
            try globals.setItem("n", to: 7)
            #expect(try gil.evaluate("n * 6", globals: globals).convert(to: Int.self) == 42)
            do {
                _ = try gil.evaluate("x = 1")
                Issue.record("a statement is no expression")
            } catch let error as PythonError {
                #expect(error.typeName == "SyntaxError")
            }
        }
    }

    @Test func runsAModuleWithArguments() throws {
        let directory = try TestPython.temporaryDirectory("runmodule")
        let source = "import sys\nresult = sys.argv[1:]\nname = __name__\n"
        try source.write(toFile: directory + "/moe_runmodule_probe.py", atomically: true, encoding: .utf8)
        let failing = "import sys\nsys.exit(3)\n"
        try failing.write(toFile: directory + "/moe_runmodule_exit.py", atomically: true, encoding: .utf8)
        try Python.withGIL { gil throws in
            let sys = try gil.import("sys")
            let argv = try sys.attribute("argv").convert(to: [String].self)
            #expect(argv == ["moe-routing"])  // set at start-up; only this test changes it
            try sys.attribute("path").callMethod("insert", 0, directory)
            defer { _ = try? sys.attribute("path").callMethod("remove", directory) }
            let globals = try gil.runModule("moe_runmodule_probe", arguments: ["--flag", "value"])
            #expect(try globals.item("result").convert(to: [String].self) == ["--flag", "value"])
            #expect(try globals.item("name").convert(to: String.self) == "__main__")
            #expect(try sys.attribute("argv").convert(to: [String].self) == argv)
            do {
                try gil.runModule("moe_runmodule_exit")
                Issue.record("expected SystemExit")
            } catch let error as PythonError {
                #expect(error.typeName == "SystemExit")
                #expect(error.message == "3")
            }
            #expect(try sys.attribute("argv").convert(to: [String].self) == argv)
        }
    }
}
