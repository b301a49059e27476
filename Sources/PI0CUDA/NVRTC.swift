// NVRTC, NVIDIA's run-time CUDA C++ compiler (libnvrtc.so), resolved with dlsym. It needs no GPU:
// the tests compile every kernel with it on CPU-only machines (`pip install nvidia-cuda-nvrtc`,
// then PI0_NVRTC_PATH=<site-packages>/nvidia/cu13/lib).
import Foundation
import PI0Tensor

/// The output of one compilation.
public struct NVRTCResult: Sendable {
    /// PTX text (NUL-free) or CUBIN bytes, as asked.
    public var image: [UInt8]
    /// The compiler's log (warnings; empty when clean).
    public var log: String
}

public final class NVRTC: @unchecked Sendable {
    typealias Prog = OpaquePointer
    typealias FnVersion = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Int32
    typealias FnCreate = @convention(c) (UnsafeMutablePointer<Prog?>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32,
                                         UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias FnCompile = @convention(c) (Prog?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias FnSize = @convention(c) (Prog?, UnsafeMutablePointer<Int>?) -> Int32
    typealias FnGet = @convention(c) (Prog?, UnsafeMutablePointer<CChar>?) -> Int32
    typealias FnDestroy = @convention(c) (UnsafeMutablePointer<Prog?>?) -> Int32
    typealias FnErrorString = @convention(c) (Int32) -> UnsafePointer<CChar>?

    let library: DynamicLibrary
    private let create: FnCreate, compileFn: FnCompile, destroy: FnDestroy
    private let ptxSize: FnSize, ptx: FnGet, logSize: FnSize, log: FnGet
    private let cubinSize: FnSize?, cubin: FnGet?
    private let errorString: FnErrorString
    /// (major, minor) of the NVRTC library, e.g. (13, 0).
    public let version: (Int, Int)

    /// Loads NVRTC from PI0_NVRTC_PATH, PI0_CUDA_LIB_DIR or the standard names.
    public init() throws {
        let l = try DynamicLibrary.open(LibrarySearch.nvrtcCandidates(),
            what: "NVRTC (libnvrtc.so; `pip install nvidia-cuda-nvrtc` and set PI0_NVRTC_PATH to its lib folder)")
        library = l
        let ver = try l.symbol("nvrtcVersion", as: FnVersion.self)
        create = try l.symbol("nvrtcCreateProgram", as: FnCreate.self)
        compileFn = try l.symbol("nvrtcCompileProgram", as: FnCompile.self)
        destroy = try l.symbol("nvrtcDestroyProgram", as: FnDestroy.self)
        ptxSize = try l.symbol("nvrtcGetPTXSize", as: FnSize.self)
        ptx = try l.symbol("nvrtcGetPTX", as: FnGet.self)
        logSize = try l.symbol("nvrtcGetProgramLogSize", as: FnSize.self)
        log = try l.symbol("nvrtcGetProgramLog", as: FnGet.self)
        cubinSize = l.optionalSymbol("nvrtcGetCUBINSize", as: FnSize.self)
        cubin = l.optionalSymbol("nvrtcGetCUBIN", as: FnGet.self)
        errorString = try l.symbol("nvrtcGetErrorString", as: FnErrorString.self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = ver(&major, &minor)
        version = (Int(major), Int(minor))
    }

    public var path: String { library.path }

    /// Compiles `source` for `arch` (e.g. "sm_90"). `cubin`: real-architecture machine code instead of
    /// PTX (loads without the driver's JIT, so it also works when the driver is older than NVRTC's PTX
    /// ISA). A failed compilation throws `unavailable` carrying the full log.
    public func compile(_ source: String, name: String = "pi0_kernels.cu", arch: String, cubin wantCubin: Bool = false,
                        extraOptions: [String] = []) throws -> NVRTCResult {
        var prog: Prog?
        var r = source.withCString { s in name.withCString { n in create(&prog, s, n, 0, nil, nil) } }
        guard r == 0, prog != nil else { throw fail("nvrtcCreateProgram", r, log: "") }
        defer { _ = destroy(&prog) }
        // --fmad=false: no contraction of a*b+c into FMAs, so float32 results follow the CPU reference's
        // one-rounding-per-operation order (PyTorch on CPU); -default-device saves __global__ noise.
        let options = ["--gpu-architecture=\(arch)", "--std=c++17", "--fmad=false", "-default-device"] + extraOptions
        let cOpts = options.map { strdup($0) }
        defer { cOpts.forEach { free($0) } }
        r = cOpts.map { UnsafePointer($0) }.withUnsafeBufferPointer { compileFn(prog, Int32(options.count), $0.baseAddress) }
        let text = programLog(prog)
        guard r == 0 else { throw fail("nvrtcCompileProgram (\(arch))", r, log: text) }
        var image: [UInt8]
        if wantCubin {
            guard let cs = cubinSize, let cg = cubin else {
                throw BackendError.unavailable(backend: "cuda", reason: "nvrtcGetCUBIN not found in \(path) (NVRTC older than 11.1)")
            }
            var size = 0
            r = cs(prog, &size); guard r == 0 else { throw fail("nvrtcGetCUBINSize", r, log: text) }
            image = [UInt8](repeating: 0, count: size)
            r = image.withUnsafeMutableBytes { cg(prog, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            guard r == 0 else { throw fail("nvrtcGetCUBIN", r, log: text) }
        } else {
            var size = 0
            r = ptxSize(prog, &size); guard r == 0 else { throw fail("nvrtcGetPTXSize", r, log: text) }
            image = [UInt8](repeating: 0, count: size)
            r = image.withUnsafeMutableBytes { ptx(prog, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            guard r == 0 else { throw fail("nvrtcGetPTX", r, log: text) }
            while image.last == 0 { image.removeLast() }
        }
        return NVRTCResult(image: image, log: text)
    }

    private func programLog(_ prog: Prog?) -> String {
        var size = 0
        guard logSize(prog, &size) == 0, size > 1 else { return "" }
        var buf = [CChar](repeating: 0, count: size)
        guard log(prog, &buf) == 0 else { return "" }
        return String(cString: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func fail(_ call: String, _ r: Int32, log: String) -> BackendError {
        let msg = errorString(r).map { String(cString: $0) } ?? "error \(r)"
        return .unavailable(backend: "cuda", reason: "\(call) failed: \(msg)" + (log.isEmpty ? "" : "\n\(log)"))
    }
}
