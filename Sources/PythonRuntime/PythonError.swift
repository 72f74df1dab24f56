// speculative-moe
// SPDX-License-Identifier: Apache-2.0

/// A Python exception, as a Swift error.
///
/// Thrown by every ``PythonObject`` operation and ``PythonGIL`` method whose Python code raised,
/// and by the conversions when a value has the wrong Python type (then ``typeName`` is
/// `TypeError`, `ValueError` or `OverflowError` and ``exception`` is `nil`).
///
/// When a Swift function called from Python throws a `PythonError`, Python sees the original
/// exception object again when ``exception`` is set (same type, same object, traceback kept);
/// otherwise an exception of the built-in class named by ``typeName`` (or `RuntimeError`).
///
/// ```swift
/// do {
///     _ = try gil.evaluate("1 / 0")
/// } catch let error as PythonError {
///     print(error.typeName)   // ZeroDivisionError
///     print(error.message)    // division by zero
///     print(error.traceback)  // Traceback (most recent call last): ...
/// }
/// ```
public struct PythonError: Error, Sendable, CustomStringConvertible {
    /// The exception's class: its `__qualname__`, prefixed by its module unless that is `builtins`
    /// (`ValueError`, `json.decoder.JSONDecodeError`).
    public let typeName: String
    /// `str(exception)`.
    public let message: String
    /// The text of `traceback.format_exception(exception)`: empty when there was no traceback
    /// (an error made in Swift).
    public let traceback: String
    /// The exception object itself, when the error came from Python.
    public let exception: PythonObject?

    /// Creates an error that has no Python exception object behind it yet.
    ///
    /// - Parameters:
    ///   - typeName: the built-in exception class Python should see (`TypeError`, `ValueError`,
    ///     `OverflowError`, `KeyError`...); names that are no built-in exception become `RuntimeError`.
    ///   - message: the exception's message.
    public init(typeName: String, message: String) {
        self.typeName = typeName
        self.message = message
        self.traceback = ""
        self.exception = nil
    }

    init(typeName: String, message: String, traceback: String, exception: PythonObject?) {
        self.typeName = typeName
        self.message = message
        self.traceback = traceback
        self.exception = exception
    }

    /// A `TypeError` made in Swift.
    public static func typeError(_ message: String) -> PythonError {
        PythonError(typeName: "TypeError", message: message)
    }

    /// A `ValueError` made in Swift.
    public static func valueError(_ message: String) -> PythonError {
        PythonError(typeName: "ValueError", message: message)
    }

    /// `TypeName: message`, one line as Python prints the last line of a traceback.
    public var description: String {
        message.isEmpty ? typeName : "\(typeName): \(message)"
    }
}
