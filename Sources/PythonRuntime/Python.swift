// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Synchronization
internal import _CPython

/// The embedded CPython interpreter: start-up on a venv, and the scoped GIL.
///
/// One interpreter per process, started once by ``initialize(environment:programName:)``
/// (idempotent and thread-safe; it is never finalised). Every Python operation runs inside
/// ``withGIL(_:)``, from any thread:
///
/// ```swift
/// try Python.initialize(environment: PythonEnvironment(path: "/data/moe-venv"))
/// let answer = try Python.withGIL { gil in
///     try gil.evaluate("6 * 7").convert(to: Int.self)
/// }
/// ```
///
/// > Warning: Never `await` inside `withGIL`: a task may resume on another thread, which does
/// > not hold the GIL. Waiting for the GIL blocks the calling thread; keep long Python work on a
/// > dedicated thread rather than on the cooperative pool.
public enum Python {
    /// What a started interpreter runs on.
    public struct RuntimeInfo: Sendable, Hashable {
        /// The venv the interpreter was started on.
        public var environment: PythonEnvironment
        /// The embedded libpython's version (`3.11.2`).
        public var libraryVersion: String
        /// `sys.executable` (the venv's `bin/python`).
        public var executable: String
        /// `sys.prefix` (the venv).
        public var prefix: String
    }

    private enum State {
        case idle
        case running(RuntimeInfo)
        case failed(PythonRuntimeError)
    }

    private static let state = Mutex<State>(.idle)
    private static let started = Atomic<Bool>(false)

    /// Whether the interpreter runs (it never stops once started).
    public static var isInitialized: Bool { started.load(ordering: .acquiring) }

    /// The running interpreter's description, or `nil` before start-up.
    public static var runtimeInfo: RuntimeInfo? {
        state.withLock { state in
            if case .running(let info) = state { return info }
            return nil
        }
    }

    /// The embedded libpython's version, `major.minor.micro` (from `Py_GetVersion`; callable
    /// before start-up).
    public static var libraryVersion: String {
        let full = String(cString: Py_GetVersion())
        return String(full.prefix { $0 != " " })
    }

    /// The full `Py_GetVersion()` text (version, build date, compiler).
    public static var libraryVersionDetails: String { String(cString: Py_GetVersion()) }

    /// The path of the libpython shared library this process loaded, or `nil` when it cannot
    /// be told (for example a statically linked interpreter).
    public static var libraryPath: String? {
        LoadedLibraries.path(containing: UInt(bitPattern: _cpy_libpython_symbol()))
    }

    // MARK: - Start-up

    /// Starts the interpreter on a venv, once per process.
    ///
    /// The configuration is PEP 587's isolated one (PYTHONHOME, PYTHONPATH and the user site are
    /// ignored) with `sys.executable` set to the venv's `bin/python` (so `sys.prefix` is the
    /// venv and its site-packages are importable), UTF-8 mode, unbuffered stdio, no Python
    /// signal handlers (SIGINT stays with the host) and `sys.argv == [programName]`. The GIL is
    /// released before returning, so that any thread can take it with ``withGIL(_:)``.
    ///
    /// Calling it again with the same venv returns at once; with another venv it throws.
    ///
    /// - Parameters:
    ///   - environment: the venv; it must exist and be made by the embedded libpython's version.
    ///   - programName: `sys.argv[0]`.
    /// - Returns: what the interpreter runs on.
    /// - Throws: ``PythonRuntimeError`` (missing venv, version mismatch, another venv already
    ///   running, start-up failure). A failed start-up cannot be retried in the same process.
    @discardableResult
    public static func initialize(
        environment: PythonEnvironment,
        programName: String = "moe-routing"
    ) throws
        -> RuntimeInfo
    {
        try environment.validate(libraryVersion: libraryVersion)
        return try state.withLock { state throws -> RuntimeInfo in
            switch state {
            case .running(let info):
                guard info.environment == environment else {
                    throw PythonRuntimeError.alreadyInitialized(
                        running: info.environment.path,
                        requested: environment.path
                    )
                }
                return info
            case .failed(let error):
                throw error
            case .idle:
                do {
                    let info = try start(environment: environment, programName: programName)
                    state = .running(info)
                    started.store(true, ordering: .releasing)
                    return info
                } catch let error as PythonRuntimeError {
                    state = .failed(error)
                    throw error
                }
            }
        }
    }

    private static func start(
        environment: PythonEnvironment,
        programName: String
    ) throws(PythonRuntimeError)
        -> RuntimeInfo
    {
        if Py_IsInitialized() != 0 {
            throw .initializationFailed("another component of this process already started Python")
        }
        var preConfig = PyPreConfig()
        PyPreConfig_InitIsolatedConfig(&preConfig)
        preConfig.utf8_mode = 1
        try check(Py_PreInitialize(&preConfig), "pre-initialisation")

        // PyConfig needs a stable address: the setters take pointers into it.
        let config = UnsafeMutablePointer<PyConfig>.allocate(capacity: 1)
        defer { config.deallocate() }
        PyConfig_InitIsolatedConfig(config)
        defer { PyConfig_Clear(config) }
        let executable = environment.pythonExecutable
        try check(PyConfig_SetBytesString(config, &config.pointee.executable, executable), "executable")
        try check(PyConfig_SetBytesString(config, &config.pointee.program_name, executable), "program_name")
        config.pointee.buffered_stdio = 0
        config.pointee.install_signal_handlers = 0
        config.pointee.parse_argv = 0
        var argumentStatus = PyStatus()
        programName.withCString { name in
            var argv: [UnsafeMutablePointer<CChar>?] = [UnsafeMutablePointer(mutating: name)]
            argumentStatus = argv.withUnsafeMutableBufferPointer { buffer in
                PyConfig_SetBytesArgv(config, 1, buffer.baseAddress)
            }
        }
        try check(argumentStatus, "argv")
        try check(Py_InitializeFromConfig(config), "start-up")

        // The initialising thread holds the GIL: read sys, then release it for every thread.
        let sys = PyImport_ImportModule("sys")
        let executablePath = sys.flatMap { stringAttribute($0, "executable") } ?? ""
        let prefix = sys.flatMap { stringAttribute($0, "prefix") } ?? ""
        _cpy_xdecref(sys)
        PyErr_Clear()
        _ = PyEval_SaveThread()
        return RuntimeInfo(
            environment: environment,
            libraryVersion: libraryVersion,
            executable: executablePath,
            prefix: prefix
        )
    }

    private static func check(_ status: PyStatus, _ step: String) throws(PythonRuntimeError) {
        guard PyStatus_Exception(status) != 0 else { return }
        let message = status.err_msg.map { String(cString: $0) } ?? "unknown error"
        let function = status.func.map { String(cString: $0) + ": " } ?? ""
        throw .initializationFailed("\(step): \(function)\(message)")
    }

    private static func stringAttribute(_ object: UnsafeMutablePointer<PyObject>, _ name: String) -> String? {
        guard let value = PyObject_GetAttrString(object, name) else { return nil }
        defer { _cpy_decref(value) }
        return swiftString(value)
    }

    // MARK: - GIL

    /// Runs `body` holding the GIL (`PyGILState_Ensure` / `PyGILState_Release`), from any thread;
    /// nested calls are fine.
    ///
    /// ```swift
    /// let pi = try Python.withGIL { gil in try gil.import("math").attribute("pi").convert(to: Double.self) }
    /// ```
    ///
    /// - Throws: ``PythonRuntimeError/notInitialized`` before start-up, and whatever `body` throws.
    /// > Warning: `body` must not await, block on another thread that wants the GIL, or let the
    /// > token escape.
    @discardableResult
    public static func withGIL<R>(_ body: (borrowing PythonGIL) throws -> R) throws -> R {
        guard isInitialized else { throw PythonRuntimeError.notInitialized }
        let gilState = PyGILState_Ensure()
        defer { PyGILState_Release(gilState) }
        return try body(PythonGIL())
    }

    /// Releases the GIL around long Swift work inside a GIL scope (a Swift function called from
    /// Python, or ``withGIL(_:)``), so that Python threads can run meanwhile; takes it back after.
    ///
    /// Costs about 55 ns: worth it for work of tens of microseconds or more. `body` must not
    /// touch Python objects. When the calling thread does not hold the GIL it just runs `body`.
    @discardableResult
    public static func withoutGIL<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        guard isInitialized, PyGILState_Check() != 0 else { return try body() }
        let threadState = PyEval_SaveThread()
        defer { PyEval_RestoreThread(threadState) }
        return try body()
    }

    /// Whether the calling thread holds the GIL.
    public static var holdsGIL: Bool { isInitialized && PyGILState_Check() != 0 }
}
