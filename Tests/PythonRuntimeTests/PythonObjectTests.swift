// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import PythonRuntime
import PythonTestSupport
import Testing

@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonObjectTests {
    @Test func attributesGetAndSet() throws {
        try Python.withGIL { gil throws in
            let globals = try gil.run("class Box:\n    pass\nbox = Box()")
            let box = try globals.item("box")
            try box.setAttribute("size", to: 12)
            try box.setAttribute("label", to: "crate")
            #expect(try box.hasAttribute("size"))
            #expect(try !box.hasAttribute("weight"))
            #expect(try box.attribute("size").convert(to: Int.self) == 12)
            #expect(try gil.evaluate("box.label * 2", globals: globals).convert(to: String.self) == "cratecrate")
            do {
                _ = try box.attribute("weight")
                Issue.record("expected AttributeError")
            } catch let error as PythonError {
                #expect(error.typeName == "AttributeError")
                #expect(error.message.contains("weight"))
            }
        }
    }

    @Test func callsWithPositionalAndKeywordArguments() throws {
        try Python.withGIL { gil throws in
            let globals = try gil.run(
                """
                def describe(a, b=0, *rest, scale=1, **extra):
                    return f"{a}|{b}|{list(rest)}|{scale}|{sorted(extra.items())}"
                """
            )
            let function = try globals.item("describe")
            #expect(try function.call(1).convert(to: String.self) == "1|0|[]|1|[]")
            #expect(try function.call(1, 2, 3, 4).convert(to: String.self) == "1|2|[3, 4]|1|[]")
            #expect(
                try function.call("x", keywords: ["scale": 2.5, "tag": "t", "b": [1]]).convert(to: String.self)
                    == "x|[1]|[]|2.5|[('tag', 't')]"
            )
            #expect(
                try function.call(arguments: [1], keywords: [("scale", 3)]).convert(to: String.self) == "1|0|[]|3|[]"
            )
            do {
                try function.call()
                Issue.record("expected TypeError")
            } catch let error as PythonError {
                #expect(error.typeName == "TypeError")
                #expect(error.message.contains("missing 1 required positional argument"))
            }
        }
    }

    @Test func methodsItemsAndIteration() throws {
        try Python.withGIL { gil throws in
            let list = try [3, 1, 2].pythonObject()
            try list.callMethod("append", 0)
            try list.callMethod("sort", keywords: ["reverse": true])
            #expect(try list.convert(to: [Int].self) == [3, 2, 1, 0])
            #expect(try list.count() == 4)
            #expect(try list.item(-1).convert(to: Int.self) == 0)
            try list.setItem(0, to: 30)
            #expect(try list.elements().map { try $0.convert(to: Int.self) } == [30, 2, 1, 0])
            let dictionary = try ["k": 1].pythonObject()
            try dictionary.setItem("m", to: [true])
            #expect(try dictionary.item("m").convert(to: [Bool].self) == [true])
            #expect(throws: PythonError.self) { try dictionary.item("missing") }
            #expect(try gil.evaluate("range(3)").elements().count == 3)
            #expect(throws: PythonError.self) { try gil.evaluate("5").elements() }
        }
    }

    @Test func equalityIdentityAndTypes() throws {
        try Python.withGIL { gil throws in
            let a = try gil.evaluate("[1, 2]")
            #expect(try a.equals([1, 2]))
            #expect(try !a.equals([2, 1]))
            #expect(try !a.isSameObject(as: gil.evaluate("[1, 2]")))
            #expect(a.typeName == "list")
            #expect(try a.isInstance(of: gil.builtins().attribute("list")))
            #expect(try !a.isInstance(of: gil.builtins().attribute("dict")))
            #expect(try a.str() == "[1, 2]")
            #expect(try gil.evaluate("'q'").repr() == "'q'")
            #expect(a.debugDescription == "[1, 2]")
        }
    }

    @Test func failingStrGivesAPlaceholderDescription() throws {
        let object = try Python.withGIL { gil throws in
            try gil.evaluate(
                "Bad()",
                globals: gil.run("class Bad:\n    def __str__(self):\n        raise ValueError('no')")
            )
        }
        #expect(object.description.contains("unprintable"))
        try Python.withGIL { _ throws in #expect(throws: PythonError.self) { try object.str() } }
    }
}
