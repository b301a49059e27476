// cuBLAS (libcublas.so), resolved with dlsym; optional: without it the backend uses the tiled
// fallback kernels (Kernels.swift). Constants from cublas_api.h / library_types.h.
import PI0Tensor

struct CUBLAS: @unchecked Sendable {
    typealias Handle = OpaquePointer
    typealias FnCreate = @convention(c) (UnsafeMutablePointer<Handle?>?) -> Int32
    typealias FnSetStream = @convention(c) (Handle?, CUhandle?) -> Int32
    typealias FnSetWorkspace = @convention(c) (Handle?, UnsafeMutableRawPointer?, Int) -> Int32
    typealias FnGemmEx = @convention(c) (Handle?, Int32, Int32, Int32, Int32, Int32,
                                         UnsafeRawPointer?, UnsafeRawPointer?, Int32, Int32,
                                         UnsafeRawPointer?, Int32, Int32,
                                         UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int32,
                                         Int32, Int32) -> Int32

    static let opN: Int32 = 0, opT: Int32 = 1                   // CUBLAS_OP_N / CUBLAS_OP_T
    static let r32F: Int32 = 0, r16BF: Int32 = 14               // CUDA_R_32F / CUDA_R_16BF
    static let compute32F: Int32 = 68                           // CUBLAS_COMPUTE_32F (no TF32)
    static let gemmDefault: Int32 = -1                          // CUBLAS_GEMM_DEFAULT

    let library: DynamicLibrary
    let handle: Handle
    let gemmEx: FnGemmEx
    let setWorkspaceFn: FnSetWorkspace?

    /// A fixed cuBLAS workspace (cuBLAS's own recommendation for graph capture: no allocation inside it).
    static let workspaceBytes = 32 << 20

    /// cublasSetWorkspace_v2 when the library has it (cuBLAS ≥ 11.4); older ones manage their own.
    func setWorkspace(_ p: CUdeviceptr, bytes: Int) {
        _ = setWorkspaceFn?(handle, UnsafeMutableRawPointer(bitPattern: UInt(p)), bytes)
    }

    /// Loads cuBLAS, creates a handle bound to `stream` (the context must be current).
    static func load(stream: CUhandle?) throws -> CUBLAS {
        let names = ["libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"]
        // PI0_CUBLAS_PATH: the library file itself, or a folder holding it (e.g. a pip wheel's nvidia/cublas/lib).
        var first: [String] = [], extra: [String] = []
        if let p = LibrarySearch.environment["PI0_CUBLAS_PATH"], !p.isEmpty {
            if p.hasSuffix(".so") || p.contains(".so.") { first.append(p) } else { extra.append(p) }
        }
        let lib = try DynamicLibrary.open(first + LibrarySearch.candidates(names, extraDirectories: extra),
                                          what: "cuBLAS (libcublas.so; set PI0_CUBLAS_PATH or PI0_CUDA_LIB_DIR)")
        let create = try lib.symbol("cublasCreate_v2", as: FnCreate.self)
        let setStream = try lib.symbol("cublasSetStream_v2", as: FnSetStream.self)
        let gemm = try lib.symbol("cublasGemmEx", as: FnGemmEx.self)
        var h: Handle?
        let r = create(&h)
        guard r == 0, let handle = h else {
            throw BackendError.unavailable(backend: "cuda", reason: "cublasCreate_v2 failed with status \(r)")
        }
        let s = setStream(handle, stream)
        guard s == 0 else { throw BackendError.unavailable(backend: "cuda", reason: "cublasSetStream_v2 failed with status \(s)") }
        return CUBLAS(library: lib, handle: handle, gemmEx: gemm,
                      setWorkspaceFn: lib.optionalSymbol("cublasSetWorkspace_v2", as: FnSetWorkspace.self))
    }

    /// Row-major y[M, N] (stride ldy) = x[M, K] (stride ldx) · W[N, K]ᵀ, fp32 accumulation. In
    /// cuBLAS's column-major terms: yᵀ (N×M) = op_T(W as K×N) · xᵀ (K×M).
    func linear(w: CUdeviceptr, wType: Int32, x: CUdeviceptr, xType: Int32, m: Int, n: Int, k: Int, ldx: Int,
                y: CUdeviceptr, ldy: Int) -> Int32 {
        var alpha: Float = 1, beta: Float = 0
        return gemmEx(handle, CUBLAS.opT, CUBLAS.opN, Int32(n), Int32(m), Int32(k), &alpha,
                      UnsafeRawPointer(bitPattern: UInt(w)), wType, Int32(k),
                      UnsafeRawPointer(bitPattern: UInt(x)), xType, Int32(ldx), &beta,
                      UnsafeMutableRawPointer(bitPattern: UInt(y)), CUBLAS.r32F, Int32(ldy),
                      CUBLAS.compute32F, CUBLAS.gemmDefault)
    }
}
