// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

/// A Swift value that converts to and from a Python object.
///
/// Both directions need the GIL. Conversions are strict: a Python object of the wrong type
/// throws a ``PythonError`` whose ``PythonError/typeName`` is `TypeError` (or `OverflowError`
/// for an integer out of range), naming the expected and the actual type; nothing is coerced
/// through `str()` or truth values.
///
/// | Swift | Python |
/// | --- | --- |
/// | `Int`, `Int8`...`Int64`, `UInt`, `UInt8`...`UInt64` | `int` (and objects with `__index__`) |
/// | `Double`, `Float` | `float` (and `int`, objects with `__float__`) |
/// | `Bool` | `bool` |
/// | `String` | `str` |
/// | `[Element]` | `list` (from a `list` or `tuple`) |
/// | `[Key: Value]` | `dict` |
/// | `Optional` | `None` for `nil` |
/// | ``PythonObject`` | itself |
///
/// `bytes` and tuples have explicit accessors: ``PythonObject/bytes()``,
/// ``PythonObject/bytes(_:)``, ``PythonObject/tuple(_:)`` and ``PythonObject/tuple(as:)``.
///
/// ```swift
/// let object = try [1, 2, 3].pythonObject()
/// let back = try object.convert(to: [Int].self)
/// ```
public protocol PythonConvertible {
    /// Converts a Python object; throws on a type mismatch.
    init(pythonObject: PythonObject) throws
    /// A new Python object holding this value.
    func pythonObject() throws -> PythonObject
}

// MARK: - PythonObject

extension PythonObject: PythonConvertible {
    /// Wraps the same Python object (no conversion).
    public convenience init(pythonObject: PythonObject) throws {
        try requireGIL("PythonObject.init(pythonObject:)")
        self.init(borrowing: pythonObject.pointer)
    }

    /// Returns `self`.
    public func pythonObject() throws -> PythonObject { self }
}

// MARK: - Integers

extension PythonConvertible where Self: FixedWidthInteger {
    /// Converts an `int` (or an object with `__index__`, such as a NumPy integer scalar);
    /// throws `TypeError` for other types and `OverflowError` when the value does not fit.
    public init(pythonObject: PythonObject) throws {
        try requireGIL("\(Self.self).init(pythonObject:)")
        let object = pythonObject.pointer
        var integer = object
        var converted: PyPointer? = nil
        defer { _cpy_xdecref(converted) }
        if _cpy_long_check(object) == 0 {
            guard PyIndex_Check(object) != 0 else {
                throw PythonError.typeError("expected int for Swift \(Self.self), got \(pythonObject.typeName)")
            }
            converted = try checked(PyNumber_Index(object))
            integer = converted ?? object
        }
        if Self.isSigned {
            var overflow: Int32 = 0
            let value = PyLong_AsLongLongAndOverflow(integer, &overflow)
            if value == -1, PyErr_Occurred() != nil { throw fetchPythonError() }
            guard overflow == 0, let result = Self(exactly: value) else {
                throw PythonError(
                    typeName: "OverflowError",
                    message: "\(describe(integer)) does not fit in Swift \(Self.self)"
                )
            }
            self = result
        } else {
            // Negative or too large: OverflowError from CPython, replaced by ours.
            let value = PyLong_AsUnsignedLongLong(integer)
            if value == UInt64.max, PyErr_Occurred() != nil {
                PyErr_Clear()
                throw PythonError(
                    typeName: "OverflowError",
                    message: "\(describe(integer)) does not fit in Swift \(Self.self)"
                )
            }
            guard let result = Self(exactly: value) else {
                throw PythonError(
                    typeName: "OverflowError",
                    message: "\(describe(integer)) does not fit in Swift \(Self.self)"
                )
            }
            self = result
        }
    }

    /// A new `int`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("\(Self.self).pythonObject")
        let object = Self.isSigned ? PyLong_FromLongLong(Int64(self)) : PyLong_FromUnsignedLongLong(UInt64(self))
        return PythonObject(owning: try checked(object))
    }
}

extension Int: PythonConvertible {}
extension Int8: PythonConvertible {}
extension Int16: PythonConvertible {}
extension Int32: PythonConvertible {}
extension Int64: PythonConvertible {}
extension UInt: PythonConvertible {}
extension UInt8: PythonConvertible {}
extension UInt16: PythonConvertible {}
extension UInt32: PythonConvertible {}
extension UInt64: PythonConvertible {}

// MARK: - Floating point

extension PythonConvertible where Self: BinaryFloatingPoint {
    /// Converts a `float`, an `int` or an object with `__float__`; throws `TypeError` otherwise.
    public init(pythonObject: PythonObject) throws {
        try requireGIL("\(Self.self).init(pythonObject:)")
        let object = pythonObject.pointer
        if _cpy_float_check(object) == 0, _cpy_long_check(object) == 0 {
            let value = PyFloat_AsDouble(object)
            if value == -1, PyErr_Occurred() != nil {
                PyErr_Clear()
                throw PythonError.typeError("expected float for Swift \(Self.self), got \(pythonObject.typeName)")
            }
            self = Self(value)
            return
        }
        let value = PyFloat_AsDouble(object)
        if value == -1, PyErr_Occurred() != nil { throw fetchPythonError() }  // an int too large
        self = Self(value)
    }

    /// A new `float`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("\(Self.self).pythonObject")
        return PythonObject(owning: try checked(PyFloat_FromDouble(Double(self))))
    }
}

extension Double: PythonConvertible {}
extension Float: PythonConvertible {}

// MARK: - Bool and String

extension Bool: PythonConvertible {
    /// Converts `True` or `False`; throws `TypeError` for anything else (no truth values).
    public init(pythonObject: PythonObject) throws {
        try requireGIL("Bool.init(pythonObject:)")
        guard _cpy_bool_check(pythonObject.pointer) != 0 else {
            throw PythonError.typeError("expected bool for Swift Bool, got \(pythonObject.typeName)")
        }
        self = pythonObject.pointer == _cpy_true()
    }

    /// `True` or `False`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("Bool.pythonObject")
        return PythonObject(borrowing: self ? _cpy_true() : _cpy_false())
    }
}

extension String: PythonConvertible {
    /// Converts a `str`; throws `TypeError` for anything else (`bytes` included).
    public init(pythonObject: PythonObject) throws {
        try requireGIL("String.init(pythonObject:)")
        guard _cpy_unicode_check(pythonObject.pointer) != 0 else {
            throw PythonError.typeError("expected str for Swift String, got \(pythonObject.typeName)")
        }
        var size = 0
        guard let utf8 = PyUnicode_AsUTF8AndSize(pythonObject.pointer, &size) else { throw fetchPythonError() }
        self = utf8.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: size), as: UTF8.self)
        }
    }

    /// A new `str`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("String.pythonObject")
        return PythonObject(owning: try checked(newPythonString(self)))
    }
}

// MARK: - Optional, Array, Dictionary

extension Optional: PythonConvertible where Wrapped: PythonConvertible {
    /// `nil` for `None`, else the converted value.
    public init(pythonObject: PythonObject) throws {
        try requireGIL("Optional.init(pythonObject:)")
        self = pythonObject.isNone ? nil : try Wrapped(pythonObject: pythonObject)
    }

    /// `None` for `nil`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("Optional.pythonObject")
        guard let value = self else { return PythonObject(borrowing: _cpy_none()) }
        return try value.pythonObject()
    }
}

extension Array: PythonConvertible where Element: PythonConvertible {
    /// Converts the items of a `list` or `tuple`; throws `TypeError` for other objects (convert
    /// a NumPy array with `.tolist()` first, or read it zero-copy with a buffer).
    public init(pythonObject: PythonObject) throws {
        try requireGIL("Array.init(pythonObject:)")
        let object = pythonObject.pointer
        let isList = _cpy_list_check(object) != 0
        guard isList || _cpy_tuple_check(object) != 0 else {
            throw PythonError.typeError(
                "expected list or tuple for Swift [\(Element.self)], got \(pythonObject.typeName)"
            )
        }
        let count = isList ? PyList_Size(object) : PyTuple_Size(object)
        var result: [Element] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let item = isList ? PyList_GetItem(object, index) : PyTuple_GetItem(object, index) else {
                throw fetchPythonError()
            }
            result.append(try Element(pythonObject: PythonObject(borrowing: item)))
        }
        self = result
    }

    /// A new `list`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("Array.pythonObject")
        let list = PythonObject(owning: try checked(PyList_New(count)))
        for (index, element) in enumerated() {
            let object = try element.pythonObject()
            _cpy_incref(object.pointer)
            PyList_SetItem(list.pointer, index, object.pointer)  // steals the added reference
        }
        return list
    }
}

extension Dictionary: PythonConvertible where Key: PythonConvertible, Value: PythonConvertible {
    /// Converts a `dict` (keys and values each converted); throws `TypeError` for other objects.
    public init(pythonObject: PythonObject) throws {
        try requireGIL("Dictionary.init(pythonObject:)")
        let object = pythonObject.pointer
        guard _cpy_dict_check(object) != 0 else {
            throw PythonError.typeError(
                "expected dict for Swift [\(Key.self): \(Value.self)], got \(pythonObject.typeName)"
            )
        }
        var result: [Key: Value] = [:]
        result.reserveCapacity(PyDict_Size(object))
        var position = 0
        var key: PyPointer? = nil
        var value: PyPointer? = nil
        while PyDict_Next(object, &position, &key, &value) != 0 {
            guard let key, let value else { continue }
            // Own the borrowed items while converting: a conversion may run Python code.
            let swiftKey = try Key(pythonObject: PythonObject(borrowing: key))
            result[swiftKey] = try Value(pythonObject: PythonObject(borrowing: value))
        }
        self = result
    }

    /// A new `dict`.
    public func pythonObject() throws -> PythonObject {
        try requireGIL("Dictionary.pythonObject")
        let dictionary = PythonObject(owning: try checked(PyDict_New()))
        for (key, value) in self {
            let keyObject = try key.pythonObject()
            let valueObject = try value.pythonObject()
            try checkStatus(PyDict_SetItem(dictionary.pointer, keyObject.pointer, valueObject.pointer))
        }
        return dictionary
    }
}
