// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import PythonRuntime
import PythonTestSupport
import Testing

/// Python exceptions seen from Swift: type name, message, traceback and the object itself.
@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonErrorTests {
    private func failure(_ body: (borrowing PythonGIL) throws -> Void) throws -> PythonError {
        do {
            try Python.withGIL { gil throws in try body(gil) }
        } catch let error as PythonError {
            return error
        }
        throw PythonError.valueError("no error was thrown")
    }

    @Test func exceptionFromPythonCodeHasTypeMessageAndTraceback() throws {
        let error = try failure { gil in
            try gil.run(
                """
                def inner(x):
                    raise ValueError(f"bad value {x}")
                def outer():
                    inner(7)
                outer()
                """,
                filename: "probe.py"
            )
        }
        #expect(error.typeName == "ValueError")
        #expect(error.message == "bad value 7")
        #expect(error.description == "ValueError: bad value 7")
        #expect(error.traceback.hasPrefix("Traceback (most recent call last):"))
        #expect(error.traceback.contains("File \"probe.py\", line 5, in <module>"))
        #expect(error.traceback.contains("File \"probe.py\", line 4, in outer"))
        #expect(error.traceback.contains("File \"probe.py\", line 2, in inner"))
        #expect(error.traceback.hasSuffix("ValueError: bad value 7\n"))
        try Python.withGIL { gil throws in
            let exception = try #require(error.exception)
            #expect(try exception.isInstance(of: gil.builtins().attribute("ValueError")))
            #expect(try exception.attribute("args").convert(to: [String].self) == ["bad value 7"])
        }
    }

    @Test func typeNamesAreQualifiedOutsideBuiltins() throws {
        let decode = try failure { gil in _ = try gil.import("json").callMethod("loads", "{") }
        #expect(decode.typeName == "json.decoder.JSONDecodeError")
        #expect(decode.message.hasPrefix("Expecting property name enclosed in double quotes"))

        let custom = try failure { gil in
            try gil.run("class Outer:\n    class Failure(Exception):\n        pass\nraise Outer.Failure('deep')")
        }
        #expect(custom.typeName == "__swift__.Outer.Failure")
        #expect(custom.message == "deep")
        let bare = try failure { gil in try gil.run("raise KeyError") }
        #expect(bare.typeName == "KeyError")
        #expect(bare.message == "")
        #expect(bare.description == "KeyError")
    }

    @Test func syntaxErrorsAreErrorsToo() throws {
        let error = try failure { gil in try gil.run("def broken(:\n    pass", filename: "broken.py") }
        #expect(error.typeName == "SyntaxError")
        #expect(error.traceback.contains("broken.py"))
    }

    @Test func errorsLeaveNoPendingException() throws {
        _ = try failure { gil in _ = try gil.evaluate("1 / 0") }
        // A later, unrelated call works normally.
        #expect(try Python.withGIL { gil throws in try gil.evaluate("2 + 2").convert(to: Int.self) } == 4)
    }

    @Test func swiftMadeErrorsHaveNoTraceback() {
        let error = PythonError.typeError("expected int, got str")
        #expect(error.typeName == "TypeError")
        #expect(error.traceback == "")
        #expect(error.exception == nil)
        #expect(error.description == "TypeError: expected int, got str")
        #expect(PythonError.valueError("x").typeName == "ValueError")
    }
}
