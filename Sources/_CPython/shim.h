// speculative-moe
// SPDX-License-Identifier: Apache-2.0
//
// The C side of the embedded CPython runtime: <Python.h> plus small static inline wrappers for
// what Swift cannot import (function-like macros such as Py_INCREF, Py_None, the type checks)
// or rejects under Swift 6 strict concurrency (the PyExc_* globals are mutable C globals).
// Only the PythonRuntime module imports this; nothing here knows of vLLM.

// Importing SwiftGlibc before <Python.h> keeps a clean build from failing with
// "'__fds_bits' from module 'SwiftGlibc' is not present in definition of 'fd_set'".
#pragma clang module import SwiftGlibc
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef MOE_CPYTHON_SHIM_H
#define MOE_CPYTHON_SHIM_H

// MARK: - Reference counts and singletons

static inline void _cpy_incref(PyObject *_Nonnull object) { Py_INCREF(object); }
static inline void _cpy_decref(PyObject *_Nonnull object) { Py_DECREF(object); }
static inline void _cpy_xdecref(PyObject *_Nullable object) { Py_XDECREF(object); }
static inline Py_ssize_t _cpy_refcnt(PyObject *_Nonnull object) { return Py_REFCNT(object); }

/// Py_None, borrowed.
static inline PyObject *_Nonnull _cpy_none(void) { return Py_None; }
/// Py_True, borrowed.
static inline PyObject *_Nonnull _cpy_true(void) { return Py_True; }
/// Py_False, borrowed.
static inline PyObject *_Nonnull _cpy_false(void) { return Py_False; }

// MARK: - Types

static inline PyTypeObject *_Nonnull _cpy_type(PyObject *_Nonnull object) { return Py_TYPE(object); }
static inline const char *_Nonnull _cpy_type_name(PyObject *_Nonnull object) { return Py_TYPE(object)->tp_name; }
static inline int _cpy_is_type(PyObject *_Nonnull object, PyTypeObject *_Nonnull type) { return Py_IS_TYPE(object, type); }
static inline int _cpy_long_check(PyObject *_Nonnull object) { return PyLong_Check(object); }
static inline int _cpy_bool_check(PyObject *_Nonnull object) { return PyBool_Check(object); }
static inline int _cpy_float_check(PyObject *_Nonnull object) { return PyFloat_Check(object); }
static inline int _cpy_unicode_check(PyObject *_Nonnull object) { return PyUnicode_Check(object); }
static inline int _cpy_bytes_check(PyObject *_Nonnull object) { return PyBytes_Check(object); }
static inline int _cpy_bytearray_check(PyObject *_Nonnull object) { return PyByteArray_Check(object); }
static inline int _cpy_list_check(PyObject *_Nonnull object) { return PyList_Check(object); }
static inline int _cpy_tuple_check(PyObject *_Nonnull object) { return PyTuple_Check(object); }
static inline int _cpy_dict_check(PyObject *_Nonnull object) { return PyDict_Check(object); }
static inline int _cpy_exception_instance_check(PyObject *_Nonnull object) {
    return PyExceptionInstance_Check(object);
}
static inline int _cpy_exception_class_check(PyObject *_Nonnull object) { return PyExceptionClass_Check(object); }
static inline PyObject *_Nonnull _cpy_exception_instance_class(PyObject *_Nonnull object) {
    return PyExceptionInstance_Class(object);
}

// MARK: - Exception classes (borrowed references)

static inline PyObject *_Nonnull _cpy_exc_base_exception(void) { return PyExc_BaseException; }
static inline PyObject *_Nonnull _cpy_exc_runtime_error(void) { return PyExc_RuntimeError; }
static inline PyObject *_Nonnull _cpy_exc_type_error(void) { return PyExc_TypeError; }
static inline PyObject *_Nonnull _cpy_exc_value_error(void) { return PyExc_ValueError; }
static inline PyObject *_Nonnull _cpy_exc_overflow_error(void) { return PyExc_OverflowError; }
static inline PyObject *_Nonnull _cpy_exc_system_exit(void) { return PyExc_SystemExit; }

// MARK: - Native functions

/// The signature of a METH_FASTCALL | METH_KEYWORDS function, spelled for Swift.
typedef PyObject *_Nullable (*_cpy_fastcall_keywords)(PyObject *_Nullable self,
                                                       PyObject *_Nullable const *_Nullable args,
                                                       Py_ssize_t nargs,
                                                       PyObject *_Nullable kwnames);

/// Fills a method definition for a METH_FASTCALL | METH_KEYWORDS function.
static inline void _cpy_fill_fastcall_def(PyMethodDef *_Nonnull def, const char *_Nonnull name,
                                          _cpy_fastcall_keywords _Nonnull function,
                                          const char *_Nullable doc) {
    def->ml_name = name;
    def->ml_meth = (PyCFunction)(void (*)(void))function;
    def->ml_flags = METH_FASTCALL | METH_KEYWORDS;
    def->ml_doc = doc;
}

/// Number of positional arguments of a vectorcall (strips PY_VECTORCALL_ARGUMENTS_OFFSET).
static inline Py_ssize_t _cpy_vectorcall_nargs(Py_ssize_t nargs) { return PyVectorcall_NARGS(nargs); }

// MARK: - Buffers

static inline int _cpy_buf_strides(void) { return PyBUF_STRIDES; }
static inline int _cpy_buf_strides_format(void) { return PyBUF_STRIDES | PyBUF_FORMAT; }
static inline int _cpy_buf_writable(void) { return PyBUF_WRITABLE; }
static inline int _cpy_check_buffer(PyObject *_Nonnull object) { return PyObject_CheckBuffer(object); }

// MARK: - Introspection

/// The address of a libpython function, read through the GOT (not a thunk of the caller's).
static inline const void *_Nonnull _cpy_libpython_symbol(void) { return (const void *)&Py_GetVersion; }

// MARK: - Compile modes

static inline int _cpy_file_input(void) { return Py_file_input; }
static inline int _cpy_eval_input(void) { return Py_eval_input; }

#endif  // MOE_CPYTHON_SHIM_H
