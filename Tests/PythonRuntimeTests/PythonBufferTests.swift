// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import PythonRuntime
import PythonTestSupport
import Testing

/// Zero-copy buffers: shared memory both ways, dtype, contiguity and shape checks.
@Suite(.enabled(if: TestPython.available, "needs the project's venv with numpy"))
struct PythonBufferTests {
    @Test func swiftWritesIntoANumpyArrayAndPythonReadsTheSameMemory() throws {
        try Python.withGIL { gil throws in
            let globals = try gil.run("import numpy as np\na = np.zeros((4, 2), dtype=np.int32)")
            let array = try globals.item("a")
            let address = try gil.evaluate("a.ctypes.data", globals: globals).convert(to: UInt.self)
            try array.withMutableBuffer(of: Int32.self) { buffer in
                #expect(UInt(bitPattern: buffer.elements.baseAddress) == address)
                #expect(Array(buffer.shape) == [4, 2])
                #expect(buffer.rank == 2 && buffer.count == 8)
                for index in 0..<buffer.count { buffer[index] = Int32(index * 10) }
            }
            #expect(
                try gil.evaluate("a.tolist()", globals: globals).convert(to: [[Int]].self)
                    == [[0, 10], [20, 30], [40, 50], [60, 70]]
            )
        }
    }

    @Test func pythonMutatesAndSwiftSeesIt() throws {
        try Python.withGIL { gil throws in
            let globals = try gil.run("import numpy as np\nw = np.arange(6, dtype=np.float32).reshape(3, 2)")
            let array = try globals.item("w")
            try array.withBuffer(of: Float.self) { buffer in
                #expect(Array(buffer.elements) == [0, 1, 2, 3, 4, 5])
                // Python writes while Swift holds the view: the same memory.
                _ = try gil.run("w[1, 1] = 99.5\nw[2] *= -1", globals: globals)
                #expect(Array(buffer.elements) == [0, 1, 2, 99.5, -4, -5])
            }
        }
    }

    @Test func callbackReadsTwoArraysZeroCopyAndWritesAThird() throws {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_buffers", name: "weigh") { args in
                try args.requireCount(3)
                return try args.withBuffer(at: 0, of: Int32.self) { ids in
                    try args.withBuffer(at: 1, of: Float.self) { weights in
                        try args.withMutableBuffer(at: 2, of: Float.self) { out in
                            try ids.requireShape([nil, 2])
                            try weights.requireShape([ids.shape[0], 2])
                            try out.requireShape([8])
                            for index in 0..<ids.count { out[Int(ids[index])] += weights[index] }
                            return try ids.count.pythonObject()
                        }
                    }
                }
            }
            let globals = try gil.run(
                """
                import numpy as np, moe_test_buffers
                ids = np.array([[0, 3], [3, 7], [1, 0], [7, 7]], dtype=np.int32)
                weights = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
                out = np.zeros(8, dtype=np.float32)
                n = moe_test_buffers.weigh(ids, weights, out)
                expected = np.zeros(8, dtype=np.float32)
                np.add.at(expected, ids.ravel(), weights.ravel())
                same = bool((out == expected).all())
                """
            )
            #expect(try globals.item("n").convert(to: Int.self) == 8)
            #expect(try globals.item("same").convert(to: Bool.self))
            #expect(
                try gil.evaluate("out.tolist()", globals: globals).convert(to: [Double].self)
                    == [0.5, 1.0, 0, 0.75, 0, 0, 0, 1.75]
            )
        }
    }

    /// Calls `moe_test_reject.take_int32(value)` and returns "Type: message".
    private func rejection(_ expression: String) throws -> String {
        try Python.withGIL { gil throws in
            try gil.defineFunction(module: "moe_test_reject", name: "take_int32") { args in
                try args.withBuffer(at: 0, of: Int32.self) { _ in nil }
            }
            try gil.defineFunction(module: "moe_test_reject", name: "fill_int32") { args in
                try args.withMutableBuffer(at: 0, of: Int32.self) { _ in nil }
            }
            let globals = try gil.run(
                """
                import numpy as np, array, moe_test_reject
                def attempt(function, value):
                    try:
                        function(value)
                        return "accepted"
                    except Exception as e:
                        return f"{type(e).__name__}: {e}"
                """
            )
            return try gil.evaluate(expression, globals: globals).convert(to: String.self)
        }
    }

    @Test func wrongDtypeIsATypeErrorNamingBoth() throws {
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros((4, 2), dtype=np.float32))")
                == "TypeError: take_int32() argument 1: expected int32 elements, got dtype float32"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros(3, dtype=np.int64))")
                == "TypeError: take_int32() argument 1: expected int32 elements, got dtype int64"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, array.array('d', [1.0]))")
                == "TypeError: take_int32() argument 1: expected int32 elements, got format 'd'"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, [1, 2])")
                == "TypeError: take_int32() argument 1: expected a NumPy array (or another buffer) of int32, got list"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros(2, dtype='>i4'))")
                == "TypeError: take_int32() argument 1: expected int32 elements, got dtype >i4"
        )
    }

    @Test func nonContiguousArraysAreAValueError() throws {
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros((4, 4), dtype=np.int32)[:, ::2])")
                == "ValueError: take_int32() argument 1: expected a C-contiguous array, got strides (16, 8) "
                + "for shape (4, 2) (pass numpy.ascontiguousarray(x))"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros((2, 3), dtype=np.int32).T)")
                .hasPrefix("ValueError: take_int32() argument 1: expected a C-contiguous array")
        )
    }

    @Test func otherBufferKindsAndReadOnlyArrays() throws {
        #expect(try rejection("attempt(moe_test_reject.take_int32, array.array('i', [1, 2]))") == "accepted")
        // An equal but not canonical dtype object, and an ndarray subclass, take the format path.
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros(2, np.dtype('int32', metadata={'k': 1})))")
                == "accepted"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, np.zeros((2, 2), np.int32).view(np.matrix))")
                == "accepted"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, memoryview(np.arange(4, dtype=np.int32)))") == "accepted"
        )
        #expect(
            try rejection(
                "attempt(moe_test_reject.fill_int32, (lambda a: (a.setflags(write=False), a)[1])(np.zeros(2, np.int32)))"
            )

                == "ValueError: fill_int32() argument 1: buffer source array is read-only"
        )
        #expect(
            try rejection("attempt(moe_test_reject.take_int32, 5)").hasPrefix("TypeError: take_int32() argument 1:")
        )
    }

    @Test func shapeMismatchNamesExpectedAndActual() throws {
        try Python.withGIL { gil throws in
            let array = try gil.evaluate("__import__('numpy').zeros((4, 3), dtype='int32')")
            try array.withBuffer(of: Int32.self) { buffer in
                do {
                    try buffer.requireShape([nil, 2])
                    Issue.record("expected a shape error")
                } catch let error as PythonError {
                    #expect(error.typeName == "ValueError")
                    #expect(error.message == "buffer: expected shape (?, 2), got (4, 3)")
                }
                try buffer.requireShape([4, nil])
            }
            let bytes = try PythonObject.bytes([1, 2, 3])
            #expect(try bytes.withBuffer(of: UInt8.self) { Array($0.elements) } == [1, 2, 3])
            #expect(throws: PythonError.self) { try bytes.withMutableBuffer(of: UInt8.self) { _ in } }
        }
    }
}
