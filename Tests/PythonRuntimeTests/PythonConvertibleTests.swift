// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import PythonRuntime
import PythonTestSupport
import Testing

/// Round trips for every conversion, checked on the Python side too (repr and type).
@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonConvertibleTests {
    /// Converts to Python, checks `repr` and the type name there, and converts back.
    private func roundTrip<T: PythonConvertible & Equatable>(_ value: T, repr: String, type: String) throws {
        try Python.withGIL { _ throws in
            let object = try value.pythonObject()
            #expect(try object.repr() == repr)
            #expect(object.typeName == type)
            #expect(try object.convert(to: T.self) == value)
        }
    }

    @Test func integers() throws {
        try roundTrip(0, repr: "0", type: "int")
        try roundTrip(-42, repr: "-42", type: "int")
        try roundTrip(Int.max, repr: "9223372036854775807", type: "int")
        try roundTrip(Int.min, repr: "-9223372036854775808", type: "int")
        try roundTrip(Int32(-7), repr: "-7", type: "int")
        try roundTrip(UInt8(255), repr: "255", type: "int")
        try roundTrip(UInt64.max, repr: "18446744073709551615", type: "int")
        try roundTrip(Int16.min, repr: "-32768", type: "int")
    }

    @Test func integersFromPython() throws {
        try Python.withGIL { gil throws in
            #expect(try gil.evaluate("2**40 + 3").convert(to: Int.self) == 1_099_511_627_779)
            #expect(try gil.evaluate("True").convert(to: Int.self) == 1)  // bool is an int in Python
            // __index__ objects (NumPy integer scalars) are integers.
            #expect(try gil.evaluate("__import__('numpy').int32(-5)").convert(to: Int32.self) == -5)
        }
    }

    /// The error of converting the value of a Python expression, or nil when it converted.
    private func failure<T: PythonConvertible>(_ source: String, _ type: T.Type) -> PythonError? {
        do {
            _ = try Python.withGIL { gil throws in try gil.evaluate(source).convert(to: type) }
            return nil
        } catch {
            return error as? PythonError
        }
    }

    @Test func integerMismatchAndOverflowAreTypedErrors() throws {
        let text = try #require(failure("'12'", Int.self))
        #expect(text.typeName == "TypeError")
        #expect(text.message == "expected int for Swift Int, got str")
        #expect(failure("1.5", Int.self)?.typeName == "TypeError")
        let big = try #require(failure("2**64", Int.self))
        #expect(big.typeName == "OverflowError")
        #expect(big.message.contains("18446744073709551616"))
        #expect(failure("300", UInt8.self)?.typeName == "OverflowError")
        #expect(failure("-1", UInt64.self)?.typeName == "OverflowError")
        #expect(failure("-129", Int8.self)?.typeName == "OverflowError")
        #expect(failure("2**64", UInt64.self)?.typeName == "OverflowError")
        #expect(failure("255", UInt8.self) == nil)
    }

    @Test func floatingPoint() throws {
        try roundTrip(1.5, repr: "1.5", type: "float")
        try roundTrip(-0.0, repr: "-0.0", type: "float")
        try roundTrip(Double.infinity, repr: "inf", type: "float")
        try roundTrip(Float(0.25), repr: "0.25", type: "float")
        try Python.withGIL { gil throws in
            #expect(try gil.evaluate("7").convert(to: Double.self) == 7.0)
            #expect(try gil.evaluate("__import__('numpy').float32(0.5)").convert(to: Double.self) == 0.5)
            #expect(try gil.evaluate("float('nan')").convert(to: Double.self).isNaN)
            #expect(throws: PythonError.self) { try gil.evaluate("'1.0'").convert(to: Double.self) }
            #expect(throws: PythonError.self) { try gil.evaluate("10**400").convert(to: Double.self) }
        }
    }

    @Test func boolIsStrict() throws {
        try roundTrip(true, repr: "True", type: "bool")
        try roundTrip(false, repr: "False", type: "bool")
        try Python.withGIL { gil throws in
            do {
                _ = try gil.evaluate("1").convert(to: Bool.self)
                Issue.record("1 must not convert to Bool")
            } catch let error as PythonError {
                #expect(error.typeName == "TypeError")
                #expect(error.message == "expected bool for Swift Bool, got int")
            }
        }
    }

    @Test func strings() throws {
        try roundTrip("", repr: "''", type: "str")
        try roundTrip("héllo ✓ 🚀", repr: "'héllo ✓ 🚀'", type: "str")
        try roundTrip("a\u{0}b", repr: "'a\\x00b'", type: "str")
        try Python.withGIL { gil throws in
            #expect(try gil.evaluate("len('héllo ✓ 🚀')").convert(to: Int.self) == 9)
            #expect(throws: PythonError.self) { try gil.evaluate("b'x'").convert(to: String.self) }
        }
    }

    @Test func bytesBothWays() throws {
        try Python.withGIL { gil throws in
            let bytes: [UInt8] = [0, 1, 127, 128, 255]
            let object = try PythonObject.bytes(bytes)
            #expect(try object.repr() == "b'\\x00\\x01\\x7f\\x80\\xff'")
            #expect(try object.bytes() == bytes)
            #expect(try gil.evaluate("bytearray(b'ab')").bytes() == [97, 98])
            #expect(try PythonObject.bytes([]).bytes() == [])
            #expect(throws: PythonError.self) { try gil.evaluate("'ab'").bytes() }
        }
    }

    @Test func arrays() throws {
        try roundTrip([1, 2, 3], repr: "[1, 2, 3]", type: "list")
        try roundTrip([String](), repr: "[]", type: "list")
        try roundTrip([[1.5], [2.5, 3.5]], repr: "[[1.5], [2.5, 3.5]]", type: "list")
        try Python.withGIL { gil throws in
            #expect(try gil.evaluate("(4, 5)").convert(to: [Int].self) == [4, 5])
            #expect(throws: PythonError.self) { try gil.evaluate("[1, 'x']").convert(to: [Int].self) }
            #expect(throws: PythonError.self) { try gil.evaluate("{1, 2}").convert(to: [Int].self) }
        }
    }

    @Test func dictionaries() throws {
        try roundTrip(["a": 1], repr: "{'a': 1}", type: "dict")
        try Python.withGIL { gil throws in
            let value: [String: [Int]] = ["x": [1, 2], "y": []]
            let object = try value.pythonObject()
            let globals = try gil.newGlobals()
            try globals.setItem("d", to: object)
            #expect(try gil.evaluate("sorted(d.items())", globals: globals).repr() == "[('x', [1, 2]), ('y', [])]")
            #expect(try object.convert(to: [String: [Int]].self) == value)
            #expect(try gil.evaluate("{1: 'one', 2: 'two'}").convert(to: [Int: String].self) == [1: "one", 2: "two"])
            #expect(throws: PythonError.self) { try gil.evaluate("[('a', 1)]").convert(to: [String: Int].self) }
        }
    }

    @Test func noneAndOptionals() throws {
        try Python.withGIL { gil throws in
            let none: Int? = nil
            let object = try none.pythonObject()
            #expect(object.isNone)
            #expect(object.isSameObject(as: gil.none))
            #expect(try object.convert(to: Int?.self) == nil)
            #expect(try gil.evaluate("5").convert(to: Int?.self) == 5)
            #expect(try [1, nil, 3].pythonObject().repr() == "[1, None, 3]")
            #expect(throws: PythonError.self) { try gil.evaluate("None").convert(to: Int.self) }
        }
    }

    @Test func tuplesBothWays() throws {
        try Python.withGIL { gil throws in
            let tuple = try PythonObject.tuple(1, "two", 3.0, [4])
            #expect(try tuple.repr() == "(1, 'two', 3.0, [4])")
            let (a, b, c, d) = try tuple.tuple(as: Int.self, String.self, Double.self, [Int].self)
            #expect(a == 1 && b == "two" && c == 3.0 && d == [4])
            #expect(try PythonObject.tuple(elements: []).repr() == "()")
            #expect(throws: PythonError.self) { try tuple.tuple(as: Int.self, String.self) }
            #expect(throws: PythonError.self) { try gil.evaluate("[1, 2]").tuple(as: Int.self, Int.self) }
            #expect(throws: PythonError.self) { try gil.evaluate("(1, 2)").tuple(as: Int.self, String.self) }
        }
    }

    @Test func pythonObjectConvertsToItself() throws {
        try Python.withGIL { gil throws in
            let list = try gil.evaluate("[]")
            #expect(try list.convert(to: PythonObject.self).isSameObject(as: list))
            #expect(try list.pythonObject() === list)
        }
    }
}
