// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

/// A strong or borrowed `PyObject *`; which one is said where it is used.
typealias PyPointer = UnsafeMutablePointer<PyObject>

// MARK: - GIL checks

/// Throws unless the interpreter runs and the calling thread holds the GIL.
@inline(__always)
func requireGIL(_ operation: @autoclosure () -> String) throws(PythonRuntimeError) {
    guard Python.isInitialized else { throw .notInitialized }
    guard PyGILState_Check() != 0 else { throw .gilNotHeld(operation: operation()) }
}

// MARK: - Strings

/// The UTF-8 text of a `str`, or `nil` (with no Python error left set) for other objects.
func swiftString(_ object: PyPointer) -> String? {
    guard _cpy_unicode_check(object) != 0 else { return nil }
    var size = 0
    guard let utf8 = PyUnicode_AsUTF8AndSize(object, &size) else {
        PyErr_Clear()  // lone surrogates cannot be encoded
        return nil
    }
    return utf8.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
        String(decoding: UnsafeBufferPointer(start: bytes, count: size), as: UTF8.self)
    }
}

/// A new `str`, or `nil` with a Python error set.
func newPythonString(_ string: String) -> PyPointer? {
    var string = string
    return string.withUTF8 { utf8 in
        utf8.withMemoryRebound(to: CChar.self) { chars in
            PyUnicode_FromStringAndSize(chars.baseAddress, chars.count)
        }
    }
}

/// `str(object)`, never failing: a failing `__str__` gives a placeholder and clears its error.
func describe(_ object: PyPointer) -> String {
    if let text = swiftString(object) { return text }
    guard let str = PyObject_Str(object) else {
        PyErr_Clear()
        return "<unprintable \(String(cString: _cpy_type_name(object))) object>"
    }
    defer { _cpy_decref(str) }
    return swiftString(str) ?? "<unprintable \(String(cString: _cpy_type_name(object))) object>"
}

/// The Python-level name of an object's type, `tp_name` (for example `int`, `numpy.ndarray`).
func typeName(of object: PyPointer) -> String {
    String(cString: _cpy_type_name(object))
}

// MARK: - Results and errors

/// Returns a new reference, or throws the pending Python exception when it is `NULL`.
@inline(__always)
func checked(_ result: PyPointer?) throws(PythonError) -> PyPointer {
    guard let result else { throw fetchPythonError() }
    return result
}

/// Throws the pending Python exception when a C call returned its failure status.
@inline(__always)
func checkStatus(_ status: Int32) throws(PythonError) {
    if status < 0 { throw fetchPythonError() }
}

/// Takes the pending Python exception (clearing it) as a ``PythonError`` with type name,
/// message and formatted traceback.
func fetchPythonError() -> PythonError {
    var type: PyPointer? = nil
    var value: PyPointer? = nil
    var traceback: PyPointer? = nil
    PyErr_Fetch(&type, &value, &traceback)
    guard type != nil else {
        return PythonError(typeName: "SystemError", message: "a Python call failed without setting an exception")
    }
    PyErr_NormalizeException(&type, &value, &traceback)
    defer {
        _cpy_xdecref(type)
        _cpy_xdecref(traceback)
    }
    guard let exception = value else {
        let name = type.map { swiftStringAttribute($0, "__name__") ?? "Exception" } ?? "Exception"
        return PythonError(typeName: name, message: "")
    }
    if let traceback { PyException_SetTraceback(exception, traceback) }
    let name = exceptionTypeName(exception)
    let message = describe(exception)
    let text = formatTraceback(exception)
    PyErr_Clear()
    return PythonError(
        typeName: name,
        message: message,
        traceback: text,
        exception: PythonObject(owning: exception)
    )
}

private func swiftStringAttribute(_ object: PyPointer, _ name: String) -> String? {
    guard let value = PyObject_GetAttrString(object, name) else {
        PyErr_Clear()
        return nil
    }
    defer { _cpy_decref(value) }
    return swiftString(value)
}

/// `module.qualname` of an exception's class; just `qualname` for built-ins.
func exceptionTypeName(_ exception: PyPointer) -> String {
    let type = UnsafeMutableRawPointer(_cpy_type(exception)).assumingMemoryBound(to: PyObject.self)
    let qualified = swiftStringAttribute(type, "__qualname__") ?? typeName(of: exception)
    guard let module = swiftStringAttribute(type, "__module__"), module != "builtins" else { return qualified }
    return module + "." + qualified
}

/// The joined lines of `traceback.format_exception(exception)`, or `""` when that fails.
private func formatTraceback(_ exception: PyPointer) -> String {
    guard let module = PyImport_ImportModule("traceback") else {
        PyErr_Clear()
        return ""
    }
    defer { _cpy_decref(module) }
    guard let format = PyObject_GetAttrString(module, "format_exception") else {
        PyErr_Clear()
        return ""
    }
    defer { _cpy_decref(format) }
    guard let lines = PyObject_CallOneArg(format, exception) else {
        PyErr_Clear()
        return ""
    }
    defer { _cpy_decref(lines) }
    guard let empty = newPythonString(""), let joined = PyUnicode_Join(empty, lines) else {
        PyErr_Clear()
        return ""
    }
    defer {
        _cpy_decref(empty)
        _cpy_decref(joined)
    }
    return swiftString(joined) ?? ""
}

/// A Swift error that carries a Python exception: when a Swift function called from Python
/// throws it, Python sees that exception again rather than a `RuntimeError`.
///
/// ``PythonError`` itself is handled; conform errors of your own that wrap one.
public protocol PythonErrorWrapper: Error {
    /// The Python error inside, if any.
    var wrappedPythonError: PythonError? { get }
}

/// Sets the Python exception that a Swift error thrown inside a Swift function called from
/// Python becomes. Needs the GIL.
func raisePythonException(for error: any Error) {
    var pythonError = error as? PythonError
    if pythonError == nil, let wrapper = error as? any PythonErrorWrapper {
        pythonError = wrapper.wrappedPythonError
    }
    if let pythonError {
        if let exception = pythonError.exception?.pointer {
            // Re-raise the very object: same type, same traceback.
            let type = _cpy_exception_instance_class(exception)
            _cpy_incref(type)
            _cpy_incref(exception)
            PyErr_Restore(type, exception, PyException_GetTraceback(exception))
            return
        }
        if error is PythonError {
            setException(named: pythonError.typeName, message: pythonError.message)
            return
        }
    }
    setException(named: "RuntimeError", message: String(describing: error))
}

/// Raises the built-in exception class `name` (or `RuntimeError` when there is none).
func setException(named name: String, message: String) {
    var type = _cpy_exc_runtime_error()
    if let builtins = PyEval_GetBuiltins(), let candidate = PyDict_GetItemString(builtins, name),
        _cpy_exception_class_check(candidate) != 0
    {
        type = candidate
    }
    PyErr_SetString(type, message)
}
