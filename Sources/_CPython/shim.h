// speculative-moe
// SPDX-License-Identifier: Apache-2.0
#pragma clang module import SwiftGlibc
#define PY_SSIZE_T_CLEAN
#include <Python.h>
