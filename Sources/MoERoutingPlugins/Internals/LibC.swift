// speculative-moe
// SPDX-License-Identifier: Apache-2.0

// The only file of MoERoutingPlugins that imports the platform's C library: dynamic loading, the
// C strings handed across the plugin ABI, and file identity, as thin wrappers.

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Thin wrappers over the C library calls of this module, with C semantics.
enum LibC {
    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`, or the `dlerror()` text on failure.
    static func openLibrary(_ path: String) -> Result<UnsafeMutableRawPointer, LoadFailure> {
        if let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) { return .success(handle) }
        return .failure(LoadFailure(message: dlerror().map { String(cString: $0) } ?? "unknown error"))
    }

    /// `dlsym(handle, name)`.
    static func symbol(_ handle: UnsafeMutableRawPointer, _ name: String) -> UnsafeMutableRawPointer? {
        dlsym(handle, name)
    }

    /// Why `dlopen` failed (`dlerror()`).
    struct LoadFailure: Error {
        var message: String
    }

    /// `strdup(3)`: a C copy of `s` that the receiver releases with ``free(_:)``.
    static func duplicate(_ s: String) -> UnsafeMutablePointer<CChar>? { strdup(s) }

    /// `free(3)`.
    static func free(_ p: UnsafeMutableRawPointer?) { systemFree(p) }

    /// The device and inode of the file at `path` (`stat(2)`, symbolic links followed), or `nil`.
    static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }
}

// `LibC.free` shadows the C function inside the enum.
private func systemFree(_ p: UnsafeMutableRawPointer?) { free(p) }
