// Compiling the kernel source once per architecture and caching the result on disk.
//
// Cache folder: PI0_CUDA_CACHE_DIR, else ~/.cache/pi0-swift/cuda. Files are named
// `<fnv64 of source+options>-<arch>.cubin` / `.ptx`, so a cache compiled on a machine without a GPU
// (NVRTC needs none) can be carried to a GPU machine that has the driver but no NVRTC
// (tools/cuda/device_check.sh does this). The key does not include NVRTC's version: the source and the
// options decide the code; delete the folder to force a rebuild.
import Foundation
import PI0Tensor

public enum CUDAKernelCache {
    /// Options every compilation uses besides the architecture (see NVRTC.compile).
    static let optionsTag = "std=c++17 fmad=false v1"

    public static var directory: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["PI0_CUDA_CACHE_DIR"], !d.isEmpty { return d }
        let home = env["HOME"] ?? NSTemporaryDirectory()
        return "\(home)/.cache/pi0-swift/cuda"
    }

    /// FNV-1a 64-bit of the kernel source and options, hex (stable across runs and machines).
    public static var sourceHash: String {
        var h: UInt64 = 0xcbf29ce484222325
        for b in (CUDAKernels.source + "\u{0}" + optionsTag).utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return String(format: "%016llx", h)
    }

    public static func path(arch: String, cubin: Bool, in folder: String = directory) -> String {
        "\(folder)/\(sourceHash)-\(arch).\(cubin ? "cubin" : "ptx")"
    }

    /// The kernel source, for tests and tools.
    public static var source: String { CUDAKernels.source }
    /// Names of the kernels the module must export.
    public static var kernelNames: [String] { CUDAKernels.names }

    /// Compiles PTX (virtual arch compute_XY) and CUBIN (sm_XY) for `arch` with `nvrtc` and stores both
    /// in `folder` (default: the cache); returns both results (images and logs).
    @discardableResult
    public static func compileAndStore(arch: String, nvrtc: NVRTC, in folder: String = directory) throws
        -> (ptx: NVRTCResult, cubin: NVRTCResult) {
        let ptx = try nvrtc.compile(CUDAKernels.source, arch: arch.replacingOccurrences(of: "sm_", with: "compute_"))
        let cubin = try nvrtc.compile(CUDAKernels.source, arch: arch, cubin: true)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(ptx.image).write(to: URL(fileURLWithPath: path(arch: arch, cubin: false, in: folder)), options: .atomic)
        try Data(cubin.image).write(to: URL(fileURLWithPath: path(arch: arch, cubin: true, in: folder)), options: .atomic)
        return (ptx, cubin)
    }

    /// Cached images for `arch`, best first (CUBIN runs without JIT; PTX is the fallback). Compiles
    /// with NVRTC when nothing is cached; NVRTC's absence is then the error.
    static func images(arch: String) throws -> [(kind: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        func read(_ cubin: Bool) {
            if let d = FileManager.default.contents(atPath: path(arch: arch, cubin: cubin)), !d.isEmpty {
                var bytes = [UInt8](d)
                if !cubin { bytes.append(0) }   // cuModuleLoadData reads PTX as a C string
                out.append((cubin ? "cubin" : "ptx", bytes))
            }
        }
        read(true); read(false)
        if !out.isEmpty { return out }
        let nvrtc: NVRTC
        do { nvrtc = try NVRTC() } catch let BackendError.unavailable(_, reason) {
            throw BackendError.unavailable(backend: "cuda",
                reason: "no cached kernels for \(arch) in \(directory) and \(reason)")
        }
        try compileAndStore(arch: arch, nvrtc: nvrtc)
        read(true); read(false)
        return out
    }
}
