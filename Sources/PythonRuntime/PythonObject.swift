// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

/// A strong reference to a Python object.
///
/// Every operation needs the GIL and throws ``PythonRuntimeError/gilNotHeld(operation:)``
/// otherwise: use it inside ``Python/withGIL(_:)`` or inside a Swift function called from
/// Python. Releasing the last Swift reference drops the Python reference from any thread: the
/// deinitialiser takes the GIL when the thread does not hold it (so never release the last
/// reference while another thread waits for something this thread holds).
///
/// ```swift
/// try Python.withGIL { gil in
///     let json = try gil.import("json")
///     let text = try json.callMethod("dumps", [1, 2, 3], keywords: ["indent": 1])
///     print(try text.convert(to: String.self))
/// }
/// ```
///
/// A class rather than a `~Copyable` struct so that it can be stored, shared and captured;
/// temporaries inside the module use raw references, so a Swift function called from Python
/// pays for no allocation unless it asks for objects.
public final class PythonObject: @unchecked Sendable {
    /// The owned reference.
    let pointer: PyPointer

    /// Takes over a new reference (steals it).
    init(owning pointer: PyPointer) {
        self.pointer = pointer
    }

    /// Adds a reference to a borrowed one. Needs the GIL.
    init(borrowing pointer: PyPointer) {
        _cpy_incref(pointer)
        self.pointer = pointer
    }

    deinit {
        // After finalisation (never done by this module) there is nothing left to release.
        guard Py_IsInitialized() != 0 else { return }
        if PyGILState_Check() != 0 {
            _cpy_decref(pointer)
        } else {
            let state = PyGILState_Ensure()
            _cpy_decref(pointer)
            PyGILState_Release(state)
        }
    }

    // MARK: - Identity and type

    /// The name of the object's type (`int`, `numpy.ndarray`).
    public var typeName: String { PythonRuntime.typeName(of: pointer) }

    /// Whether this is `None`.
    public var isNone: Bool { pointer == _cpy_none() }

    /// Whether both reference the same Python object (`a is b`).
    public func isSameObject(as other: PythonObject) -> Bool { pointer == other.pointer }

    /// The object's reference count (`sys.getrefcount` minus its own argument); a debugging aid.
    public var referenceCount: Int { _cpy_refcnt(pointer) }

    /// `isinstance(self, type)`.
    public func isInstance(of type: PythonObject) throws -> Bool {
        try requireGIL("PythonObject.isInstance")
        let result = PyObject_IsInstance(pointer, type.pointer)
        try checkStatus(result)
        return result == 1
    }

    // MARK: - Text

    /// `str(self)`.
    public func str() throws -> String {
        try requireGIL("PythonObject.str")
        let text = try checked(PyObject_Str(pointer))
        defer { _cpy_decref(text) }
        return swiftString(text) ?? ""
    }

    /// `repr(self)`.
    public func repr() throws -> String {
        try requireGIL("PythonObject.repr")
        let text = try checked(PyObject_Repr(pointer))
        defer { _cpy_decref(text) }
        return swiftString(text) ?? ""
    }

    // MARK: - Attributes and items

    /// `getattr(self, name)`.
    public func attribute(_ name: String) throws -> PythonObject {
        try requireGIL("PythonObject.attribute")
        return PythonObject(owning: try checked(PyObject_GetAttrString(pointer, name)))
    }

    /// `hasattr(self, name)`.
    public func hasAttribute(_ name: String) throws -> Bool {
        try requireGIL("PythonObject.hasAttribute")
        return PyObject_HasAttrString(pointer, name) == 1
    }

    /// `setattr(self, name, value)`.
    public func setAttribute(_ name: String, to value: any PythonConvertible) throws {
        try requireGIL("PythonObject.setAttribute")
        let object = try value.pythonObject()
        try checkStatus(PyObject_SetAttrString(pointer, name, object.pointer))
    }

    /// `self[key]`.
    public func item(_ key: any PythonConvertible) throws -> PythonObject {
        try requireGIL("PythonObject.item")
        let keyObject = try key.pythonObject()
        return PythonObject(owning: try checked(PyObject_GetItem(pointer, keyObject.pointer)))
    }

    /// `self[key] = value`.
    public func setItem(_ key: any PythonConvertible, to value: any PythonConvertible) throws {
        try requireGIL("PythonObject.setItem")
        let keyObject = try key.pythonObject()
        let valueObject = try value.pythonObject()
        try checkStatus(PyObject_SetItem(pointer, keyObject.pointer, valueObject.pointer))
    }

    /// `len(self)`.
    public func count() throws -> Int {
        try requireGIL("PythonObject.count")
        let length = PyObject_Length(pointer)
        if length < 0 { throw fetchPythonError() }
        return length
    }

    /// `self == other` (Python's `__eq__`, then its truth value).
    public func equals(_ other: any PythonConvertible) throws -> Bool {
        try requireGIL("PythonObject.equals")
        let otherObject = try other.pythonObject()
        let result = PyObject_RichCompareBool(pointer, otherObject.pointer, Py_EQ)
        try checkStatus(result)
        return result == 1
    }

    /// The items of any iterable (`list(self)`).
    public func elements() throws -> [PythonObject] {
        try requireGIL("PythonObject.elements")
        let iterator = try checked(PyObject_GetIter(pointer))
        defer { _cpy_decref(iterator) }
        var result: [PythonObject] = []
        while let next = PyIter_Next(iterator) {
            result.append(PythonObject(owning: next))
        }
        if PyErr_Occurred() != nil { throw fetchPythonError() }
        return result
    }

    // MARK: - Calls

    /// `self(*arguments, **keywords)`.
    ///
    /// ```swift
    /// let rounded = try builtins.attribute("round").call(3.14159, 2)
    /// ```
    @discardableResult
    public func call(
        _ arguments: any PythonConvertible...,
        keywords: KeyValuePairs<String, any PythonConvertible> = [:]
    ) throws -> PythonObject {
        try call(arguments: arguments, keywords: keywords.map { ($0.key, $0.value) })
    }

    /// `self(*arguments, **keywords)`, with the arguments in arrays.
    @discardableResult
    public func call(
        arguments: [any PythonConvertible],
        keywords: [(String, any PythonConvertible)] = []
    )
        throws -> PythonObject
    {
        try requireGIL("PythonObject.call")
        // Keep the converted objects alive for the call.
        var objects: [PythonObject] = []
        objects.reserveCapacity(arguments.count + keywords.count)
        for argument in arguments { objects.append(try argument.pythonObject()) }
        var names: PyPointer? = nil
        defer { _cpy_xdecref(names) }
        if !keywords.isEmpty {
            let tuple = try checked(PyTuple_New(keywords.count))
            names = tuple
            for (index, (name, value)) in keywords.enumerated() {
                let key = try checked(newPythonString(name))
                PyTuple_SetItem(tuple, index, key)  // steals key
                objects.append(try value.pythonObject())
            }
        }
        var raw: [PyPointer?] = objects.map { $0.pointer }
        let result = raw.withUnsafeMutableBufferPointer { buffer in
            PyObject_Vectorcall(pointer, buffer.baseAddress, arguments.count, names)
        }
        withExtendedLifetime(objects) {}
        return PythonObject(owning: try checked(result))
    }

    /// `self.name(*arguments, **keywords)`.
    @discardableResult
    public func callMethod(
        _ name: String,
        _ arguments: any PythonConvertible...,
        keywords: KeyValuePairs<String, any PythonConvertible> = [:]
    ) throws -> PythonObject {
        try attribute(name).call(arguments: arguments, keywords: keywords.map { ($0.key, $0.value) })
    }

    // MARK: - Conversions

    /// Converts to a Swift value; throws a `TypeError`-kind ``PythonError`` on a type mismatch.
    ///
    /// ```swift
    /// let n = try object.convert(to: Int.self)
    /// let pairs = try object.convert(to: [String: [Double]].self)
    /// ```
    public func convert<T: PythonConvertible>(to type: T.Type = T.self) throws -> T {
        try T(pythonObject: self)
    }

    /// The bytes of a `bytes` or `bytearray` object.
    public func bytes() throws -> [UInt8] {
        try requireGIL("PythonObject.bytes")
        var data: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        if _cpy_bytes_check(pointer) != 0 {
            try checkStatus(PyBytes_AsStringAndSize(pointer, &data, &size))
        } else if _cpy_bytearray_check(pointer) != 0 {
            data = PyByteArray_AsString(pointer)
            size = PyByteArray_Size(pointer)
        } else {
            throw PythonError.typeError("expected bytes or bytearray, got \(typeName)")
        }
        guard let data, size > 0 else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: size) {
            Array(UnsafeBufferPointer(start: $0, count: size))
        }
    }

    /// A new `bytes` object.
    public static func bytes(_ bytes: [UInt8]) throws -> PythonObject {
        try requireGIL("PythonObject.bytes")
        let object = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PyBytes_FromStringAndSize($0.baseAddress, $0.count) }
        }
        return PythonObject(owning: try checked(object))
    }

    /// A new `tuple` of already converted objects.
    public static func tuple(elements: [any PythonConvertible]) throws -> PythonObject {
        try requireGIL("PythonObject.tuple")
        let tuple = PythonObject(owning: try checked(PyTuple_New(elements.count)))
        for (index, element) in elements.enumerated() {
            let object = try element.pythonObject()
            _cpy_incref(object.pointer)
            PyTuple_SetItem(tuple.pointer, index, object.pointer)  // steals the added reference
        }
        return tuple
    }

    /// A new `tuple` from Swift values of any convertible types.
    ///
    /// ```swift
    /// let pair = try PythonObject.tuple(1, "one")   // (1, 'one')
    /// ```
    public static func tuple<each T: PythonConvertible>(_ values: repeat each T) throws -> PythonObject {
        var elements: [any PythonConvertible] = []
        for value in repeat each values { elements.append(value) }
        return try tuple(elements: elements)
    }

    /// The items of a `tuple` converted to Swift types, checking the length.
    ///
    /// ```swift
    /// let (count, name) = try object.tuple(as: Int.self, String.self)
    /// ```
    public func tuple<each T: PythonConvertible>(as types: repeat (each T).Type) throws -> (repeat each T) {
        try requireGIL("PythonObject.tuple(as:)")
        guard _cpy_tuple_check(pointer) != 0 else {
            throw PythonError.typeError("expected tuple, got \(typeName)")
        }
        var expected = 0
        for _ in repeat each types { expected += 1 }
        let size = PyTuple_Size(pointer)
        guard size == expected else {
            throw PythonError.valueError("expected a tuple of \(expected) items, got \(size)")
        }
        var index = 0
        func next<U: PythonConvertible>(_ type: U.Type) throws -> U {
            defer { index += 1 }
            guard let item = PyTuple_GetItem(pointer, index) else { throw fetchPythonError() }
            return try U(pythonObject: PythonObject(borrowing: item))
        }
        return (repeat try next(each types))
    }
}

extension PythonObject: CustomStringConvertible, CustomDebugStringConvertible {
    /// `str(self)`; takes the GIL when needed, and never fails (a failing `__str__` gives a
    /// placeholder).
    public var description: String {
        guard Python.isInitialized else { return "<PythonObject>" }
        let state = PyGILState_Ensure()
        defer { PyGILState_Release(state) }
        return describe(pointer)
    }

    /// `repr(self)`, taking the GIL when needed.
    public var debugDescription: String {
        guard Python.isInitialized else { return "<PythonObject>" }
        let state = PyGILState_Ensure()
        defer { PyGILState_Release(state) }
        guard let text = PyObject_Repr(pointer) else {
            PyErr_Clear()
            return "<\(typeName) object>"
        }
        defer { _cpy_decref(text) }
        return swiftString(text) ?? "<\(typeName) object>"
    }
}
