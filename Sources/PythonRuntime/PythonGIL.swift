// speculative-moe
// SPDX-License-Identifier: Apache-2.0

internal import _CPython

/// Proof that the calling thread holds the GIL, handed to the body of ``Python/withGIL(_:)``.
///
/// It cannot be copied or made outside the module, so the interpreter-level operations below
/// can only run inside a GIL scope.
///
/// ```swift
/// try Python.withGIL { gil in
///     let globals = try gil.run("import math\nx = math.sqrt(2)")
///     let x = try globals.item("x").convert(to: Double.self)
///     let y = try gil.evaluate("x * x", globals: globals).convert(to: Double.self)
/// }
/// ```
public struct PythonGIL: ~Copyable {
    init() {}

    /// `None`.
    public var none: PythonObject { PythonObject(borrowing: _cpy_none()) }

    /// The `builtins` module.
    public func builtins() throws -> PythonObject {
        try `import`("builtins")
    }

    /// `import name` (dotted names give the leaf module, like `importlib.import_module`).
    ///
    /// - Throws: ``PythonError`` (`ModuleNotFoundError`, or whatever the module raised).
    public func `import`(_ name: String) throws -> PythonObject {
        PythonObject(owning: try checked(PyImport_ImportModule(name)))
    }

    /// Converts a Swift value to a new Python object.
    public func object(_ value: any PythonConvertible) throws -> PythonObject {
        try value.pythonObject()
    }

    /// A fresh globals `dict` for ``run(_:globals:filename:)`` and ``evaluate(_:globals:)``: holds
    /// `__builtins__` and `__name__` (`"__swift__"`).
    public func newGlobals(name: String = "__swift__") throws -> PythonObject {
        let globals = PythonObject(owning: try checked(PyDict_New()))
        let builtins = try self.builtins()
        try checkStatus(PyDict_SetItemString(globals.pointer, "__builtins__", builtins.pointer))
        let nameObject = try name.pythonObject()
        try checkStatus(PyDict_SetItemString(globals.pointer, "__name__", nameObject.pointer))
        return globals
    }

    /// Runs Python statements (`exec`) and returns the globals `dict` they ran in.
    ///
    /// - Parameters:
    ///   - source: the statements.
    ///   - globals: where to run them; a fresh dict (``newGlobals(name:)``) when `nil`.
    ///   - filename: the name tracebacks show for this source.
    /// - Throws: ``PythonError`` for a syntax error or an exception the code raised.
    @discardableResult
    public func run(
        _ source: String,
        globals: PythonObject? = nil,
        filename: String = "<swift>"
    ) throws
        -> PythonObject
    {
        let scope = try globals ?? newGlobals()
        let code = try checked(Py_CompileString(source, filename, _cpy_file_input()))
        defer { _cpy_decref(code) }
        let result = try checked(PyEval_EvalCode(code, scope.pointer, scope.pointer))
        _cpy_decref(result)
        return scope
    }

    /// Evaluates one Python expression (`eval`).
    ///
    /// - Parameters:
    ///   - expression: the expression.
    ///   - globals: the names it sees; a fresh dict when `nil`.
    /// - Throws: ``PythonError``.
    public func evaluate(_ expression: String, globals: PythonObject? = nil) throws -> PythonObject {
        let scope = try globals ?? newGlobals()
        let code = try checked(Py_CompileString(expression, "<swift-eval>", _cpy_eval_input()))
        defer { _cpy_decref(code) }
        return PythonObject(owning: try checked(PyEval_EvalCode(code, scope.pointer, scope.pointer)))
    }

    /// Runs a module as a script (`python -m name arguments...`, through `runpy.run_module`),
    /// with `sys.argv` set to `[name] + arguments` for the run and restored after.
    ///
    /// `SystemExit` with status 0 or `None` counts as success.
    ///
    /// - Returns: the module's globals after the run (empty when it exited through `SystemExit`).
    /// - Throws: ``PythonError`` (including `SystemExit` with a non-zero status).
    @discardableResult
    public func runModule(_ name: String, arguments: [String] = []) throws -> PythonObject {
        let sys = try `import`("sys")
        let savedArgv = try sys.attribute("argv")
        try sys.setAttribute("argv", to: [name] + arguments)
        defer { _ = try? sys.setAttribute("argv", to: savedArgv) }
        let runpy = try `import`("runpy")
        do {
            return try runpy.callMethod("run_module", name, keywords: ["run_name": "__main__", "alter_sys": true])
        } catch let error as PythonError {
            if error.typeName == "SystemExit", let exception = error.exception {
                let code = try exception.attribute("code")
                if code.isNone || (try? code.convert(to: Int.self)) == 0 {
                    return PythonObject(owning: try checked(PyDict_New()))
                }
            }
            throw error
        }
    }

    /// Defines a Swift function importable from Python as `module.name`.
    ///
    /// See ``PythonFunction`` for the calling convention, arguments and errors.
    ///
    /// ```swift
    /// try gil.defineFunction(module: "swift_ext", name: "add") { args in
    ///     try args.requireCount(2)
    ///     return try (args.value(at: 0, as: Int.self) + args.value(at: 1, as: Int.self)).pythonObject()
    /// }
    /// try gil.run("import swift_ext\nassert swift_ext.add(2, 3) == 5")
    /// ```
    ///
    /// - Parameters:
    ///   - module: the module's name; made (empty, in `sys.modules`) when missing. Use a plain
    ///     name: a dotted one needs its parent package imported first.
    ///   - name: the function's name in the module.
    ///   - doc: its `__doc__`.
    ///   - body: the Swift code; runs on whichever thread calls it from Python, holding the GIL.
    /// - Returns: the function object (also set as the module's attribute).
    @discardableResult
    public func defineFunction(
        module: String,
        name: String,
        doc: String? = nil,
        _ body: @escaping PythonFunction.Body
    ) throws -> PythonObject {
        try PythonFunction.define(module: module, name: name, doc: doc, body: body)
    }
}
