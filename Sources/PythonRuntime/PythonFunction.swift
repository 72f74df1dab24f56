// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

/// Swift functions callable from Python.
///
/// Each function is a CPython built-in function (`METH_FASTCALL | METH_KEYWORDS`) whose C entry
/// point is one shared trampoline; its `self` is a capsule that owns the Swift closure, so
/// functions can be defined at any time after start-up, and are freed with the function object.
/// Define them with ``PythonGIL/defineFunction(module:name:doc:_:)``.
///
/// The body runs holding the GIL, on the calling Python thread. What it throws becomes a Python
/// exception:
/// - a ``PythonError`` that came from Python (or a ``PythonErrorWrapper`` carrying one): the
///   original exception object is raised again;
/// - a ``PythonError`` made in Swift: the built-in exception it names (`TypeError`...);
/// - any other Swift error: `RuntimeError` with the error's description.
///
/// Returning `nil` returns `None`. A body that traps (force unwrap, overflow) still kills the
/// process: validate inputs and throw.
public enum PythonFunction {
    /// The Swift side of a function called from Python: gets the arguments, returns the result
    /// (`nil` for `None`).
    public typealias Body = @Sendable (PythonArguments) throws -> PythonObject?

    /// Owns a function's closure and the C strings and method definition CPython points at; the
    /// capsule that is the function's `self` holds the only strong reference.
    final class Box: @unchecked Sendable {
        let body: Body
        let name: UnsafeMutablePointer<CChar>
        let doc: UnsafeMutablePointer<CChar>?
        let definition: UnsafeMutablePointer<PyMethodDef>

        init(name: String, doc: String?, body: @escaping Body) {
            self.body = body
            self.name = strdup(name)
            self.doc = doc.map { strdup($0) }
            self.definition = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)
            _cpy_fill_fastcall_def(definition, self.name, fastcallTrampoline, self.doc)
        }

        deinit {
            // The function object drops its `self` (this capsule) before it is freed and does
            // not read the definition afterwards.
            definition.deallocate()
            free(name)
            free(doc)
        }
    }

    static func define(
        module moduleName: String,
        name: String,
        doc: String?,
        body: @escaping Body
    ) throws
        -> PythonObject
    {
        try requireGIL("defineFunction")
        guard !name.isEmpty, !name.utf8.contains(0), !moduleName.isEmpty else {
            throw PythonError.valueError("a Swift function needs a non-empty module and function name")
        }
        let box = Box(name: name, doc: doc, body: body)
        let retained = Unmanaged.passRetained(box).toOpaque()
        guard let capsule = PyCapsule_New(retained, nil, capsuleDestructor) else {
            Unmanaged<Box>.fromOpaque(retained).release()
            throw fetchPythonError()
        }
        defer { _cpy_decref(capsule) }
        guard let module = PyImport_AddModule(moduleName) else { throw fetchPythonError() }  // borrowed
        let moduleNameObject = try checked(newPythonString(moduleName))
        defer { _cpy_decref(moduleNameObject) }
        // `module` argument = the name, as PyModule_AddFunctions does: it becomes `__module__`.
        let function = PythonObject(owning: try checked(PyCMethod_New(box.definition, capsule, moduleNameObject, nil)))
        try checkStatus(PyModule_AddObjectRef(module, name, function.pointer))
        return function
    }
}

/// Releases the Swift closure when CPython frees the capsule.
private let capsuleDestructor: PyCapsule_Destructor = { capsule in
    guard let capsule, let pointer = PyCapsule_GetPointer(capsule, nil) else {
        PyErr_Clear()
        return
    }
    Unmanaged<PythonFunction.Box>.fromOpaque(pointer).release()
}

/// The C entry point of every Swift function.
private let fastcallTrampoline: _cpy_fastcall_keywords = { capsule, arguments, count, keywordNames in
    guard let capsule, let pointer = PyCapsule_GetPointer(capsule, nil) else { return nil }
    let box = Unmanaged<PythonFunction.Box>.fromOpaque(pointer).takeUnretainedValue()
    let positional = _cpy_vectorcall_nargs(count)
    let view = PythonArguments(
        base: arguments,
        count: positional,
        keywordNames: keywordNames,
        functionName: box.name
    )
    do {
        guard let result = try box.body(view) else {
            let none = _cpy_none()
            _cpy_incref(none)
            return none
        }
        _cpy_incref(result.pointer)
        return result.pointer
    } catch {
        raisePythonException(for: error)
        return nil
    }
}

/// The arguments of one call of a Swift function from Python, borrowed from the caller.
///
/// Valid only during the call: do not keep it, or the buffers it gives, past the body's return.
/// Reading arguments needs no allocation unless it makes a ``PythonObject``.
///
/// ```swift
/// try gil.defineFunction(module: "hooks", name: "record") { args in
///     try args.requireCount(2)
///     try args.withBuffer(at: 0, of: Int32.self) { ids in
///         try args.withBuffer(at: 1, of: Float.self) { weights in
///             try ids.requireShape([nil, 2])
///             // ids.elements, weights.elements: the arrays' memory, not copied.
///         }
///     }
///     return nil
/// }
/// ```
public struct PythonArguments {
    let base: UnsafePointer<PyPointer?>?
    /// The number of positional arguments.
    public let count: Int
    let keywordNames: PyPointer?
    let functionName: UnsafePointer<CChar>

    init(base: UnsafePointer<PyPointer?>?, count: Int, keywordNames: PyPointer?, functionName: UnsafePointer<CChar>) {
        self.base = base
        self.count = count
        self.keywordNames = keywordNames
        self.functionName = functionName
    }

    /// The function's name, as Python calls it.
    public var name: String { String(cString: functionName) }

    /// `name() argument N` for messages.
    func label(_ index: Int) -> String { "\(name)() argument \(index + 1)" }

    @inline(__always)
    func raw(_ index: Int) throws(PythonError) -> PyPointer {
        guard index >= 0, index < count, let base, let object = base[index] else {
            throw PythonError.typeError("\(name)() missing argument \(index + 1) (got \(count) positional)")
        }
        return object
    }

    // MARK: - Counts and keywords

    /// Throws `TypeError` unless exactly `expected` positional arguments were passed.
    public func requireCount(_ expected: Int) throws(PythonError) {
        guard count == expected else {
            throw PythonError.typeError("\(name)() takes \(expected) positional arguments but \(count) were given")
        }
    }

    /// Throws `TypeError` unless the number of positional arguments is in `range`.
    public func requireCount(_ range: ClosedRange<Int>) throws(PythonError) {
        guard range.contains(count) else {
            throw PythonError.typeError(
                "\(name)() takes \(range.lowerBound) to \(range.upperBound) positional arguments "
                    + "but \(count) were given"
            )
        }
    }

    /// The keyword arguments' names, in call order.
    public var keywords: [String] {
        guard let keywordNames else { return [] }
        return (0..<PyTuple_Size(keywordNames)).compactMap { index in
            PyTuple_GetItem(keywordNames, index).flatMap(swiftString)
        }
    }

    /// Throws `TypeError` when any keyword argument was passed.
    public func requireNoKeywords() throws(PythonError) {
        if let keywordNames, PyTuple_Size(keywordNames) > 0 {
            throw PythonError.typeError(
                "\(name)() takes no keyword arguments (got \(keywords.joined(separator: ", ")))"
            )
        }
    }

    /// The keyword argument `name`, or `nil` when it was not passed.
    public func keyword(_ keyword: String) -> PythonObject? {
        guard let keywordNames, let base else { return nil }
        let total = PyTuple_Size(keywordNames)
        for index in 0..<total {
            guard let nameObject = PyTuple_GetItem(keywordNames, index), swiftString(nameObject) == keyword,
                let value = base[count + index]
            else { continue }
            return PythonObject(borrowing: value)
        }
        return nil
    }

    // MARK: - Values

    /// The positional argument at `index` (from 0), as a new reference.
    public func object(at index: Int) throws -> PythonObject {
        PythonObject(borrowing: try raw(index))
    }

    /// The positional argument at `index` converted to a Swift type.
    ///
    /// - Throws: `TypeError` naming the function, the argument and both types.
    public func value<T: PythonConvertible>(at index: Int, as type: T.Type = T.self) throws -> T {
        let object = try object(at: index)
        do {
            return try T(pythonObject: object)
        } catch let error as PythonError where error.exception == nil {
            throw PythonError(typeName: error.typeName, message: "\(label(index)): \(error.message)")
        }
    }

    // MARK: - Buffers

    /// Reads the positional argument at `index` as a C-contiguous array of `Element`, zero-copy.
    ///
    /// Accepts NumPy arrays (dtype checked by identity: fast) and any other object with the
    /// buffer protocol (format string checked).
    ///
    /// - Throws: `TypeError` for a wrong element type or an object without the buffer protocol,
    ///   `ValueError` for a non-contiguous array, each naming the expected and actual values.
    /// - Complexity: O(1); about 60 ns per NumPy array (release build).
    @inlinable
    public func withBuffer<Element: PythonBufferElement, R>(
        at index: Int,
        of type: Element.Type,
        _ body: (PythonBuffer<Element>) throws -> R
    ) throws -> R {
        var result: R? = nil
        try _withRawBuffer(at: index, BufferElementSpec(Element.self), writable: false) { raw in
            result = try body(PythonBuffer(raw))
        }
        return try bufferBodyResult(result)
    }

    /// Like ``withBuffer(at:of:_:)`` but writable: the array must not be read-only.
    @inlinable
    public func withMutableBuffer<Element: PythonBufferElement, R>(
        at index: Int,
        of type: Element.Type,
        _ body: (PythonMutableBuffer<Element>) throws -> R
    ) throws -> R {
        var result: R? = nil
        try _withRawBuffer(at: index, BufferElementSpec(Element.self), writable: true) { raw in
            result = try body(PythonMutableBuffer(raw))
        }
        return try bufferBodyResult(result)
    }

    @usableFromInline
    func _withRawBuffer(
        at index: Int,
        _ spec: BufferElementSpec,
        writable: Bool,
        _ body: (RawBufferView) throws -> Void
    ) throws {
        let object = try raw(index)
        try BufferAccess.withView(
            of: object,
            spec,
            writable: writable,
            context: .argument(functionName, index),
            body
        )
    }
}
