// Run-time loading of NVIDIA's shared libraries with dlopen/dlsym (docs/ARCHITECTURE.md: optional
// accelerators load at run time and fail with a clear error). Nothing here links against CUDA, so the
// package builds and tests on machines without it; every failure is `BackendError.unavailable`
// naming the library or symbol that was missing.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import PI0Tensor

/// A dlopen'ed library; the handle is kept open for the life of the process (symbols are cached
/// function pointers, so closing it would leave them dangling).
final class DynamicLibrary: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// The file name or path that dlopen accepted.
    let path: String

    private init(handle: UnsafeMutableRawPointer, path: String) { self.handle = handle; self.path = path }

    /// Tries each candidate in order; the error lists every candidate and dlerror's last message.
    static func open(_ candidates: [String], what: String) throws -> DynamicLibrary {
        var messages: [String] = []
        for c in candidates {
            if let h = dlopen(c, RTLD_NOW | RTLD_LOCAL) { return DynamicLibrary(handle: h, path: c) }
            messages.append(dlerror().map { String(cString: $0) } ?? "\(c): not found")
        }
        // Report dlerror for the first bare soname (the dynamic linker's own search), which is the most
        // telling; a path that exists but fails (wrong architecture, missing dependency) is kept too.
        let bare = candidates.firstIndex { !$0.contains("/") } ?? 0
        var shown = messages.isEmpty ? [] : [messages[min(bare, messages.count - 1)]]
        shown += messages.filter { !$0.contains("No such file") && !shown.contains($0) }
        let tried = candidates.joined(separator: ", ")
        throw BackendError.unavailable(backend: "cuda",
            reason: "\(what) could not be loaded (tried \(tried)): \(shown.isEmpty ? "no candidates" : shown.joined(separator: "; "))")
    }

    /// The first of `names` that the library exports, cast to the C function type `T`.
    func symbol<T>(_ names: String..., as type: T.Type) throws -> T {
        for n in names {
            if let p = dlsym(handle, n) { return unsafeBitCast(p, to: T.self) }
        }
        throw BackendError.unavailable(backend: "cuda",
            reason: "symbol \(names.joined(separator: " / ")) not found in \(path)")
    }

    /// Like `symbol`, nil when absent (for entry points only some versions have).
    func optionalSymbol<T>(_ names: String..., as type: T.Type) -> T? {
        for n in names {
            if let p = dlsym(handle, n) { return unsafeBitCast(p, to: T.self) }
        }
        return nil
    }
}

/// Where the loaders look. Order: an explicit environment variable, then the standard soname
/// (resolved by the dynamic linker: LD_LIBRARY_PATH, ld.so.cache), then common install folders.
enum LibrarySearch {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Standard CUDA install folders tried after the plain soname.
    static let systemDirectories = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                                    "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64"]

    /// Candidates for `names` (sonames, most preferred first): each inside PI0_CUDA_LIB_DIR, then
    /// the bare names, then the system folders.
    static func candidates(_ names: [String], extraDirectories: [String] = []) -> [String] {
        var dirs: [String] = []
        if let d = environment["PI0_CUDA_LIB_DIR"], !d.isEmpty { dirs.append(d) }
        dirs += extraDirectories
        var out = dirs.flatMap { d in names.map { "\(d)/\($0)" } }
        out += names
        out += systemDirectories.flatMap { d in names.map { "\(d)/\($0)" } }
        return out
    }

    /// NVRTC candidates: PI0_NVRTC_PATH (a library file or a folder holding one, e.g. the pip wheel's
    /// `site-packages/nvidia/cu13/lib` or `site-packages/nvidia/cuda_nvrtc/lib`), then the general
    /// search. `pip install nvidia-cuda-nvrtc` provides it without a GPU or a CUDA toolkit.
    static func nvrtcCandidates() -> [String] {
        let names = ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"]
        var first: [String] = []
        if let p = environment["PI0_NVRTC_PATH"], !p.isEmpty {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue {
                for sub in ["", "/nvidia/cu13/lib", "/nvidia/cuda_nvrtc/lib", "/lib"] {
                    first += names.map { "\(p)\(sub)/\($0)" }.filter { FileManager.default.fileExists(atPath: $0) }
                }
                if first.isEmpty { first = names.map { "\(p)/\($0)" } }
            } else {
                first.append(p)
            }
        }
        return first + candidates(names)
    }
}
