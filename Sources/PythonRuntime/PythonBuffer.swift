// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

// MARK: - Element types

/// A fixed-size element type that Python buffers (NumPy arrays, `array.array`, `memoryview`)
/// can hold, with its NumPy dtype name and its `struct` format codes.
public protocol PythonBufferElement: BitwiseCopyable {
    /// The NumPy dtype name (`int32`, `float32`).
    static var numpyTypeName: String { get }
    /// The `struct` module format characters of this type in native byte order (`"i"` for
    /// `Int32`; `"lqn"` for `Int64` on LP64).
    static var bufferFormatCodes: String { get }
    /// The type's index in the module's NumPy dtype cache (0..<16), for the conformances the
    /// module ships. Conformances elsewhere must return -1 (no cached fast path: their arrays
    /// take the `struct` format check instead).
    static var _dtypeSlot: Int { get }
}

extension Int8: PythonBufferElement {
    public static var numpyTypeName: String { "int8" }
    public static var bufferFormatCodes: String { "b" }
    public static var _dtypeSlot: Int { 0 }
}
extension UInt8: PythonBufferElement {
    public static var numpyTypeName: String { "uint8" }
    public static var bufferFormatCodes: String { "B" }
    public static var _dtypeSlot: Int { 1 }
}
extension Int16: PythonBufferElement {
    public static var numpyTypeName: String { "int16" }
    public static var bufferFormatCodes: String { "h" }
    public static var _dtypeSlot: Int { 2 }
}
extension UInt16: PythonBufferElement {
    public static var numpyTypeName: String { "uint16" }
    public static var bufferFormatCodes: String { "H" }
    public static var _dtypeSlot: Int { 3 }
}
extension Int32: PythonBufferElement {
    public static var numpyTypeName: String { "int32" }
    public static var bufferFormatCodes: String { MemoryLayout<CLong>.size == 4 ? "il" : "i" }
    public static var _dtypeSlot: Int { 4 }
}
extension UInt32: PythonBufferElement {
    public static var numpyTypeName: String { "uint32" }
    public static var bufferFormatCodes: String { MemoryLayout<CLong>.size == 4 ? "IL" : "I" }
    public static var _dtypeSlot: Int { 5 }
}
extension Int64: PythonBufferElement {
    public static var numpyTypeName: String { "int64" }
    public static var bufferFormatCodes: String { MemoryLayout<CLong>.size == 8 ? "qln" : "qn" }
    public static var _dtypeSlot: Int { 6 }
}
extension UInt64: PythonBufferElement {
    public static var numpyTypeName: String { "uint64" }
    public static var bufferFormatCodes: String { MemoryLayout<CLong>.size == 8 ? "QLN" : "QN" }
    public static var _dtypeSlot: Int { 7 }
}
extension Int: PythonBufferElement {
    public static var numpyTypeName: String { MemoryLayout<Int>.size == 8 ? "int64" : "int32" }
    public static var bufferFormatCodes: String { MemoryLayout<Int>.size == MemoryLayout<CLong>.size ? "qln" : "in" }
    public static var _dtypeSlot: Int { 8 }
}
extension Float: PythonBufferElement {
    public static var numpyTypeName: String { "float32" }
    public static var bufferFormatCodes: String { "f" }
    public static var _dtypeSlot: Int { 9 }
}
extension Double: PythonBufferElement {
    public static var numpyTypeName: String { "float64" }
    public static var bufferFormatCodes: String { "d" }
    public static var _dtypeSlot: Int { 10 }
}
extension Bool: PythonBufferElement {
    public static var numpyTypeName: String { "bool" }
    public static var bufferFormatCodes: String { "?" }
    public static var _dtypeSlot: Int { 11 }
}

// MARK: - Views

/// Where a buffer came from, for error messages (built only when an error is thrown).
@usableFromInline
enum BufferContext {
    case argument(UnsafePointer<CChar>, Int)
    case object

    var label: String {
        switch self {
        case .argument(let function, let index): return "\(String(cString: function))() argument \(index + 1)"
        case .object: return "buffer"
        }
    }
}

/// An acquired buffer without its element type: what the non-generic acquisition hands to the
/// inlinable, generic views (so that clients specialise them and pay no generic overhead).
@usableFromInline
struct RawBufferView {
    @usableFromInline let start: UnsafeMutableRawPointer?
    @usableFromInline let byteCount: Int
    @usableFromInline let shape: UnsafeBufferPointer<Int>
    @usableFromInline let context: BufferContext

    init(start: UnsafeMutableRawPointer?, byteCount: Int, shape: UnsafeBufferPointer<Int>, context: BufferContext) {
        self.start = start
        self.byteCount = byteCount
        self.shape = shape
        self.context = context
    }
}

/// A read-only, zero-copy view of a C-contiguous Python buffer of `Element`s.
///
/// Valid only inside the closure that received it (the exporter may free or move the memory
/// afterwards).
public struct PythonBuffer<Element: PythonBufferElement> {
    /// The elements, in C (row-major) order.
    public let elements: UnsafeBufferPointer<Element>
    /// The shape (empty for a 0-d buffer).
    public let shape: UnsafeBufferPointer<Int>
    @usableFromInline let context: BufferContext

    @inlinable
    init(_ raw: RawBufferView) {
        self.elements = UnsafeBufferPointer(
            start: raw.start?.assumingMemoryBound(to: Element.self),
            count: raw.byteCount / MemoryLayout<Element>.stride
        )
        self.shape = raw.shape
        self.context = raw.context
    }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements.
    @inlinable public var count: Int { elements.count }
    /// The element at a flat index. - Complexity: O(1).
    @inlinable public subscript(index: Int) -> Element { elements[index] }

    /// Throws `ValueError` unless the shape matches; `nil` matches any size.
    ///
    /// ```swift
    /// try ids.requireShape([nil, 2])  // [T, 2]
    /// ```
    @inlinable
    public func requireShape(_ expected: [Int?]) throws(PythonError) {
        try checkShape(shape, expected, context)
    }
}

/// A writable, zero-copy view of a C-contiguous Python buffer of `Element`s.
///
/// Valid only inside the closure that received it.
public struct PythonMutableBuffer<Element: PythonBufferElement> {
    /// The elements, in C (row-major) order; writes go to the Python object's memory.
    public let elements: UnsafeMutableBufferPointer<Element>
    /// The shape (empty for a 0-d buffer).
    public let shape: UnsafeBufferPointer<Int>
    @usableFromInline let context: BufferContext

    @inlinable
    init(_ raw: RawBufferView) {
        self.elements = UnsafeMutableBufferPointer(
            start: raw.start?.assumingMemoryBound(to: Element.self),
            count: raw.byteCount / MemoryLayout<Element>.stride
        )
        self.shape = raw.shape
        self.context = raw.context
    }

    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements.
    @inlinable public var count: Int { elements.count }
    /// The element at a flat index. - Complexity: O(1).
    @inlinable public subscript(index: Int) -> Element {
        get { elements[index] }
        nonmutating set { elements[index] = newValue }
    }

    /// Throws `ValueError` unless the shape matches; `nil` matches any size.
    @inlinable
    public func requireShape(_ expected: [Int?]) throws(PythonError) {
        try checkShape(shape, expected, context)
    }
}

/// The shape check behind `requireShape`: non-generic, the message built only on failure.
@usableFromInline
func checkShape(
    _ shape: UnsafeBufferPointer<Int>,
    _ expected: [Int?],
    _ context: BufferContext
)
    throws(PythonError)
{
    var matches = shape.count == expected.count
    if matches {
        for axis in 0..<shape.count where expected[axis] != nil && expected[axis] != shape[axis] {
            matches = false
            break
        }
    }
    guard !matches else { return }
    let want = expected.map { $0.map(String.init) ?? "?" }
    throw PythonError.valueError(
        "\(context.label): expected shape \(tupleText(want)), got \(tupleText(shape.map(String.init)))"
    )
}

private func tupleText(_ items: [String]) -> String {
    items.count == 1 ? "(\(items[0]),)" : "(\(items.joined(separator: ", ")))"
}

/// The element type's facts the non-generic acquisition needs.
@usableFromInline
struct BufferElementSpec {
    @usableFromInline let type: any PythonBufferElement.Type
    @usableFromInline let size: Int
    @usableFromInline let dtypeSlot: Int

    @inlinable
    init<Element: PythonBufferElement>(_ type: Element.Type) {
        self.type = type
        self.size = MemoryLayout<Element>.size
        self.dtypeSlot = Element._dtypeSlot
    }
}

/// The result a buffer body left, which is always set when no error was thrown.
@inlinable
func bufferBodyResult<R>(_ result: R?) throws -> R {
    guard let result else { throw PythonError(typeName: "SystemError", message: "a buffer body returned nothing") }
    return result
}

// MARK: - PythonObject access

extension PythonObject {
    /// Reads this object as a C-contiguous array of `Element`, zero-copy, holding the GIL.
    ///
    /// - Throws: ``PythonRuntimeError/gilNotHeld(operation:)``; `TypeError` for a wrong element
    ///   type or no buffer protocol; `ValueError` for a non-contiguous array.
    @inlinable
    public func withBuffer<Element: PythonBufferElement, R>(
        of type: Element.Type,
        _ body: (PythonBuffer<Element>) throws -> R
    ) throws -> R {
        var result: R? = nil
        try _withRawBuffer(BufferElementSpec(Element.self), writable: false) { raw in
            result = try body(PythonBuffer(raw))
        }
        return try bufferBodyResult(result)
    }

    /// Like ``withBuffer(of:_:)`` but writable: Swift writes land in the object's memory.
    @inlinable
    public func withMutableBuffer<Element: PythonBufferElement, R>(
        of type: Element.Type,
        _ body: (PythonMutableBuffer<Element>) throws -> R
    ) throws -> R {
        var result: R? = nil
        try _withRawBuffer(BufferElementSpec(Element.self), writable: true) { raw in
            result = try body(PythonMutableBuffer(raw))
        }
        return try bufferBodyResult(result)
    }

    @usableFromInline
    func _withRawBuffer(_ spec: BufferElementSpec, writable: Bool, _ body: (RawBufferView) throws -> Void) throws {
        try requireGIL(writable ? "PythonObject.withMutableBuffer" : "PythonObject.withBuffer")
        try BufferAccess.withView(of: pointer, spec, writable: writable, context: .object, body)
    }
}

// MARK: - Acquiring views

/// Buffer-protocol access with cheap NumPy dtype checks. Every member runs under the GIL,
/// which also guards the caches (Python 3.11 has one GIL; the caches are never freed).
enum BufferAccess {
    /// The caches live in raw memory reached through `let`s: static `var`s would pay for a
    /// dynamic exclusivity check on every access, several per call.
    /// Slots: 0 the `numpy.ndarray` type, 1 the interned string "dtype", 2... the dtypes.
    nonisolated(unsafe) private static let cache: UnsafeMutablePointer<UnsafeMutableRawPointer?> = {
        let table = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 2 + slotCount)
        table.initialize(repeating: nil, count: 2 + slotCount)
        return table
    }()
    /// Whether a dtype slot was looked up (it may have found nothing).
    nonisolated(unsafe) private static let loaded: UnsafeMutablePointer<Bool> = {
        let flags = UnsafeMutablePointer<Bool>.allocate(capacity: slotCount)
        flags.initialize(repeating: false, count: slotCount)
        return flags
    }()
    private static let slotCount = 16
    /// Whether `descr` can be read at ``descriptorOffset`` of an ndarray: 0 not yet known,
    /// 1 yes (checked against `array.dtype` on the first array), -1 no.
    nonisolated(unsafe) private static let descriptorLayout: UnsafeMutablePointer<Int> = {
        let state = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        state.initialize(to: 0)
        return state
    }()
    /// NumPy's `PyArrayObject_fields.descr`: after PyObject_HEAD, `data`, `nd` (padded),
    /// `dimensions`, `strides` and `base`. Part of NumPy's C ABI (the `PyArray_DESCR` macro
    /// reads it), unchanged in NumPy 2; verified at run time before use.
    private static let descriptorOffset = MemoryLayout<PyObject>.size + 5 * MemoryLayout<UnsafeRawPointer>.size

    private static var ndarrayType: UnsafeMutablePointer<PyTypeObject>? {
        get { cache[0]?.assumingMemoryBound(to: PyTypeObject.self) }
        set { cache[0] = newValue.map { UnsafeMutableRawPointer($0) } }
    }

    private static var dtypeName: PyPointer? {
        get { cache[1]?.assumingMemoryBound(to: PyObject.self) }
        set { cache[1] = newValue.map { UnsafeMutableRawPointer($0) } }
    }

    /// Acquires a view (`PyObject_GetBuffer`), checks element type and contiguity, runs `body`,
    /// releases the view. The `Py_buffer` lives in a fixed temporary allocation while exported.
    static func withView(
        of object: PyPointer,
        _ spec: BufferElementSpec,
        writable: Bool,
        context: BufferContext,
        _ body: (RawBufferView) throws -> Void
    ) throws {
        try withUnsafeTemporaryAllocation(of: Py_buffer.self, capacity: 1) { views in
            guard let view = views.baseAddress else {
                throw PythonError(typeName: "MemoryError", message: "no room for a buffer view")
            }
            try acquire(view, object, spec, writable: writable, context: context)
            defer { PyBuffer_Release(view) }
            let rank = view.pointee.shape == nil ? 0 : Int(view.pointee.ndim)
            try body(
                RawBufferView(
                    start: view.pointee.buf,
                    byteCount: view.pointee.len,
                    shape: UnsafeBufferPointer(start: view.pointee.shape, count: rank),
                    context: context
                )
            )
        }
    }

    private static func acquire(
        _ view: UnsafeMutablePointer<Py_buffer>,
        _ object: PyPointer,
        _ spec: BufferElementSpec,
        writable: Bool,
        context: BufferContext
    ) throws(PythonError) {
        var flags = _cpy_buf_strides()
        var formatChecked = false
        if isNDArray(object), let expected = dtype(spec) {
            // The common case: the array's dtype object is NumPy's canonical one for Element.
            formatChecked = arrayDescriptor(object) == UnsafeRawPointer(expected)
        }
        if !formatChecked {
            guard _cpy_check_buffer(object) != 0 else {
                throw PythonError.typeError(
                    "\(context.label): expected a NumPy array (or another buffer) of \(spec.type.numpyTypeName), "
                        + "got \(typeName(of: object))"
                )
            }
            flags = _cpy_buf_strides_format()
        }
        if writable { flags |= _cpy_buf_writable() }
        if PyObject_GetBuffer(object, view, flags) != 0 {
            // Same exception type, with the argument named (a built-in type such as ValueError
            // or BufferError is raised again as such).
            let error = fetchPythonError()
            throw PythonError(typeName: error.typeName, message: "\(context.label): \(error.message)")
        }
        var accepted = false
        defer { if !accepted { PyBuffer_Release(view) } }
        if !formatChecked, !formatMatches(view.pointee.format, spec.type) {
            let got = isNDArray(object) ? ndarrayDTypeText(object) : "format '\(formatText(view.pointee.format))'"
            throw PythonError.typeError(
                "\(context.label): expected \(spec.type.numpyTypeName) elements, got \(got)"
            )
        }
        guard view.pointee.itemsize == spec.size else {
            throw PythonError.typeError(
                "\(context.label): expected \(spec.size)-byte \(spec.type.numpyTypeName) elements, "
                    + "got \(view.pointee.itemsize)-byte items"
            )
        }
        guard PyBuffer_IsContiguous(view, CChar(UInt8(ascii: "C"))) != 0 else {
            let rank = Int(view.pointee.ndim)
            let shape = (0..<rank).map { String(view.pointee.shape?[$0] ?? 0) }
            let strides = (0..<rank).map { String(view.pointee.strides?[$0] ?? 0) }
            throw PythonError.valueError(
                "\(context.label): expected a C-contiguous array, got strides \(tupleText(strides)) for shape "
                    + "\(tupleText(shape)) (pass numpy.ascontiguousarray(x))"
            )
        }
        accepted = true
    }

    /// Whether `object` is exactly a `numpy.ndarray` (subclasses take the format path).
    @inline(__always)
    private static func isNDArray(_ object: PyPointer) -> Bool {
        let type = _cpy_type(object)
        if let ndarrayType { return type == ndarrayType }
        guard strcmp(_cpy_type_name(object), "numpy.ndarray") == 0 else { return false }
        // First NumPy array seen: keep its type and the interned attribute name forever.
        let typeObject = UnsafeMutableRawPointer(type).assumingMemoryBound(to: PyObject.self)
        _cpy_incref(typeObject)
        ndarrayType = type
        dtypeName = PyUnicode_InternFromString("dtype")
        if dtypeName == nil { PyErr_Clear() }
        return true
    }

    /// The address of an ndarray's dtype object, for identity checks only (never dereferenced):
    /// read from the array struct when that was verified, else through `array.dtype`.
    @inline(__always)
    private static func arrayDescriptor(_ object: PyPointer) -> UnsafeRawPointer? {
        let state = descriptorLayout.pointee
        if state == 1 {
            return UnsafeRawPointer(object).load(fromByteOffset: descriptorOffset, as: UnsafeRawPointer?.self)
        }
        guard let dtypeName, let attribute = PyObject_GetAttr(object, dtypeName) else {
            PyErr_Clear()
            return nil
        }
        // The array keeps its dtype alive: the address stays valid for the comparison.
        _cpy_decref(attribute)
        let address = UnsafeRawPointer(attribute)
        if state == 0 {
            let stored = UnsafeRawPointer(object).load(fromByteOffset: descriptorOffset, as: UnsafeRawPointer?.self)
            descriptorLayout.pointee = stored == address ? 1 : -1
        }
        return address
    }

    /// NumPy's canonical dtype object for `Element` (`numpy.dtype("int32")`), kept forever.
    @inline(__always)
    private static func dtype(_ spec: BufferElementSpec) -> PyPointer? {
        let slot = spec.dtypeSlot
        guard slot >= 0, slot < slotCount else { return nil }
        if loaded[slot] { return cache[2 + slot]?.assumingMemoryBound(to: PyObject.self) }
        loaded[slot] = true
        guard dtypeName != nil, let moduleName = newPythonString("numpy") else {
            PyErr_Clear()
            return nil
        }
        defer { _cpy_decref(moduleName) }
        guard let numpy = PyImport_GetModule(moduleName) else {
            PyErr_Clear()
            return nil
        }
        defer { _cpy_decref(numpy) }
        guard let constructor = PyObject_GetAttrString(numpy, "dtype") else {
            PyErr_Clear()
            return nil
        }
        defer { _cpy_decref(constructor) }
        guard let name = newPythonString(spec.type.numpyTypeName), let dtype = PyObject_CallOneArg(constructor, name)
        else {
            PyErr_Clear()
            return nil
        }
        _cpy_decref(name)
        cache[2 + slot] = UnsafeMutableRawPointer(dtype)
        return dtype
    }

    private static func ndarrayDTypeText(_ object: PyPointer) -> String {
        guard let dtypeName, let dtype = PyObject_GetAttr(object, dtypeName) else {
            PyErr_Clear()
            return "another dtype"
        }
        defer { _cpy_decref(dtype) }
        return "dtype \(describe(dtype))"
    }

    private static func formatText(_ format: UnsafeMutablePointer<CChar>?) -> String {
        format.map { String(cString: $0) } ?? "B"
    }

    /// Whether a `struct` format string describes one native `Element` (`"i"`, `"<i"`, `"=i"`).
    private static func formatMatches(
        _ format: UnsafeMutablePointer<CChar>?,
        _ type: any PythonBufferElement.Type
    )
        -> Bool
    {
        // A NULL format means unsigned bytes ("B").
        var text = formatText(format)[...]
        if let first = text.first, "@=<>!".contains(first) {
            let littleEndian = 1.littleEndian == 1
            switch first {
            case "<": if !littleEndian { return false }
            case ">", "!": if littleEndian { return false }
            default: break
            }
            text = text.dropFirst()
        }
        guard text.count == 1, let code = text.first else { return false }
        return type.bufferFormatCodes.contains(code)
    }
}
