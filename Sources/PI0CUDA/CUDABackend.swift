// `CUDABackend`: π0's `ComputeBackend` on an NVIDIA GPU through the driver API, cuBLAS (optional)
// and NVRTC-compiled kernels, all loaded at run time.
//
// This is the host-pointer version of the interface: every call uploads its inputs, runs on the
// device and downloads the result, then synchronises. Weights are uploaded once, in prepareLinear, and
// stay resident (bf16 weights stay bf16 on the device). Correct but slow for the whole model: the
// transfers dominate. The fast path (device-resident activations, the sampling loop captured as one
// CUDA graph) needs a device tensor type in the interface; docs/CUDA.md has the plan.
//
// The ComputeBackend methods cannot throw, so a device failure after start-up (out of memory, a
// launch error) stops the process with the driver's message; start-up failures are typed errors.
import Foundation
import PI0Tensor

/// A linear layer resident on the device.
final class CUDALinear: PreparedLinear, @unchecked Sendable {
    let outFeatures: Int, inFeatures: Int
    let weight: DeviceBuffer
    /// CUBLAS.r32F or CUBLAS.r16BF: the element type stored in `weight`.
    let weightType: Int32
    let bias: DeviceBuffer?
    /// cuBLAS bf16×bf16 path: the activations are converted to bf16 (exact: the caller said inputs are bf16).
    let bf16Inputs: Bool
    var byteCount: Int { weight.byteCount + (bias?.byteCount ?? 0) }
    init(n: Int, k: Int, weight: DeviceBuffer, weightType: Int32, bias: DeviceBuffer?, bf16Inputs: Bool) {
        outFeatures = n; inFeatures = k; self.weight = weight; self.weightType = weightType
        self.bias = bias; self.bf16Inputs = bf16Inputs
    }
}

public final class CUDABackend: ComputeBackend, @unchecked Sendable {
    let ctx: CUDAContext
    let cublas: CUBLAS?
    /// Why cuBLAS is not used (nil when it is).
    public let cublasNote: String?
    let lock = NSLock()
    private var scratch: [String: DeviceBuffer] = [:]

    /// Opens device PI0_CUDA_DEVICE (default 0), loads (or compiles) the kernels and cuBLAS.
    /// PI0_CUDA_NO_CUBLAS=1 forces the fallback linear kernels. Throws `BackendError.unavailable`
    /// naming the missing library, symbol or device.
    public static func make() throws -> CUDABackend {
        let env = ProcessInfo.processInfo.environment
        let ordinal = Int(env["PI0_CUDA_DEVICE"] ?? "0") ?? 0
        return try CUDABackend(device: ordinal, useCUBLAS: env["PI0_CUDA_NO_CUBLAS"] != "1")
    }

    public init(device: Int = 0, useCUBLAS: Bool = true) throws {
        ctx = try CUDAContext(ordinal: device)
        try ctx.loadKernels()
        if useCUBLAS {
            do { cublas = try CUBLAS.load(stream: ctx.stream); cublasNote = nil }
            catch { cublas = nil; cublasNote = "\(error)" }
        } else {
            cublas = nil; cublasNote = "disabled (PI0_CUDA_NO_CUBLAS=1)"
        }
    }

    public var name: String {
        "cuda (\(ctx.deviceName), \(ctx.arch), \(ctx.moduleKind) kernels, \(cublas == nil ? "fallback GEMM" : "cuBLAS"))"
    }

    /// Device name as the driver reports it, e.g. "NVIDIA H100 80GB HBM3".
    public var deviceName: String { ctx.deviceName }
    public var computeCapability: (Int, Int) { ctx.computeCapability }

    func buffer(_ role: String, bytes: Int) throws -> CUdeviceptr {
        if let b = scratch[role], b.byteCount >= bytes { return b.pointer }
        scratch[role] = nil
        let b = try DeviceBuffer(context: ctx, byteCount: max(bytes, 256))
        scratch[role] = b
        return b.pointer
    }

    /// Runs `body` with the context current under the lock; device errors stop the process.
    func run<T>(_ what: String, _ body: () throws -> T) -> T {
        lock.lock(); defer { lock.unlock() }
        do { try ctx.makeCurrent(); return try body() } catch { fatalError("cuda \(what): \(error)") }
    }

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        let (n, k) = try weight.linearShape(bias: bias)
        lock.lock(); defer { lock.unlock() }
        try ctx.makeCurrent()
        // cuBLAS needs equal A/B types: bf16 weights with non-bf16 inputs are widened to float32.
        let keepBF16 = weight.dtype == .bfloat16 && (cublas == nil || inputsAreBF16)
        let w: DeviceBuffer
        if weight.dtype == .float32 || keepBF16 {
            w = try DeviceBuffer(context: ctx, byteCount: weight.count * weight.dtype.byteSize)
            try ctx.upload(weight.pointer, bytes: w.byteCount, to: w.pointer)
        } else {
            let f = weight.floats()
            w = try DeviceBuffer(context: ctx, byteCount: f.count * 4)
            try f.withUnsafeBytes { try ctx.upload($0.baseAddress!, bytes: w.byteCount, to: w.pointer) }
        }
        var b: DeviceBuffer?
        if let bias {
            let f = bias.floats()
            let d = try DeviceBuffer(context: ctx, byteCount: f.count * 4)
            try f.withUnsafeBytes { try ctx.upload($0.baseAddress!, bytes: d.byteCount, to: d.pointer) }
            b = d
        }
        try ctx.synchronize()   // the host copies of `f` die at return
        return CUDALinear(n: n, k: k, weight: w, weightType: keepBF16 ? CUBLAS.r16BF : CUBLAS.r32F, bias: b,
                          bf16Inputs: keepBF16 && cublas != nil)
    }

    public func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let p = w as? CUDALinear else { preconditionFailure("CUDABackend got a foreign PreparedLinear") }
        guard rows > 0 else { return }
        let n = p.outFeatures, k = p.inFeatures
        run("linear \(rows)x\(k)->\(n)") {
            let xSpan = (rows - 1) * ldx + k
            let dx = try buffer("x", bytes: xSpan * 4), dy = try buffer("y", bytes: rows * n * 4)
            try ctx.upload(x, bytes: xSpan * 4, to: dx)
            try deviceLinear(p, x: dx, rows: rows, ldx: ldx, y: dy)
            try downloadRows(dy, rows: rows, width: n, deviceStride: n, to: y, hostStride: ldy)
            try ctx.synchronize()
        }
    }

    /// y (dense [rows, N], device) = x (device, stride ldx) · Wᵀ + b.
    func deviceLinear(_ p: CUDALinear, x dx: CUdeviceptr, rows: Int, ldx: Int, y dy: CUdeviceptr) throws {
        let n = p.outFeatures, k = p.inFeatures
        if let cublas {
            var xPtr = dx, xType = CUBLAS.r32F, xld = ldx
            if p.bf16Inputs {
                xPtr = try buffer("x16", bytes: rows * k * 2); xType = CUBLAS.r16BF; xld = k
                try ctx.launch("f32_to_bf16", grid: CUDAContext.grid1D(rows * k), block: (256, 1),
                               [.ptr(dx), .i32(rows), .i32(k), .i32(ldx), .ptr(xPtr)])
            }
            let s = cublas.linear(w: p.weight.pointer, wType: p.weightType, x: xPtr, xType: xType, m: rows, n: n, k: k,
                                  ldx: xld, y: dy, ldy: n)
            guard s == 0 else { throw BackendError.unavailable(backend: "cuda", reason: "cublasGemmEx failed with status \(s)") }
            if let b = p.bias {
                try ctx.launch("bias_add", grid: CUDAContext.grid1D(rows * n), block: (256, 1),
                               [.ptr(dy), .i32(rows), .i32(n), .i32(n), .ptr(b.pointer)])
            }
        } else {
            let kernel = p.weightType == CUBLAS.r16BF ? "linear_bf16w" : "linear_f32w"
            try ctx.launch(kernel, grid: ((n + 15) / 16, (rows + 15) / 16), block: (16, 16),
                           [.ptr(dx), .i32(rows), .i32(k), .i32(ldx), .ptr(p.weight.pointer), .i32(n),
                            .ptr(p.bias?.pointer ?? 0), .ptr(dy), .i32(n)])
        }
    }

    /// Copies rows of `width` floats from the device (stride deviceStride) into host rows (stride
    /// hostStride) without touching the host's gap columns.
    func downloadRows(_ src: CUdeviceptr, rows: Int, width: Int, deviceStride: Int,
                      to host: UnsafeMutablePointer<Float>, hostStride: Int) throws {
        if hostStride == width && deviceStride == width {
            try ctx.download(src, bytes: rows * width * 4, to: host)
        } else {
            for r in 0..<rows {
                try ctx.download(src + UInt64(r * deviceStride * 4), bytes: width * 4, to: host + r * hostStride)
            }
        }
    }

    public func attention(_ a: AttentionArgs) {
        guard a.queries > 0 && a.keys > 0 else { return }
        precondition(a.kvHeads > 0 && a.heads % a.kvHeads == 0, "attention: \(a.heads) heads over \(a.kvHeads) kv heads")
        run("attention T\(a.queries) S\(a.keys) H\(a.heads)") {
            let width = a.heads * a.headDim, kvWidth = a.kvHeads * a.headDim
            let qSpan = (a.queries - 1) * a.qStride + width
            let kSpan = (a.keys - 1) * a.kStride + kvWidth, vSpan = (a.keys - 1) * a.vStride + kvWidth
            let dq = try buffer("q", bytes: qSpan * 4), dk = try buffer("k", bytes: kSpan * 4)
            let dv = try buffer("v", bytes: vSpan * 4), dout = try buffer("out", bytes: a.queries * width * 4)
            try ctx.upload(a.q, bytes: qSpan * 4, to: dq)
            try ctx.upload(a.k, bytes: kSpan * 4, to: dk)
            try ctx.upload(a.v, bytes: vSpan * 4, to: dv)
            var dm: CUdeviceptr = 0
            if let m = a.mask {
                let mSpan = (a.queries - 1) * a.maskStride + a.keys
                dm = try buffer("mask", bytes: mSpan * 4)
                try ctx.upload(m, bytes: mSpan * 4, to: dm)
            }
            try deviceAttention(a, q: dq, k: dk, v: dv, mask: dm, out: dout, outStride: width)
            try downloadRows(dout, rows: a.queries, width: width, deviceStride: width, to: a.out, hostStride: a.outStride)
            try ctx.synchronize()
        }
    }

    /// The attention kernel on device pointers (strides from `a`, output stride `outStride`).
    func deviceAttention(_ a: AttentionArgs, q: CUdeviceptr, k: CUdeviceptr, v: CUdeviceptr, mask: CUdeviceptr,
                         out: CUdeviceptr, outStride: Int) throws {
        let shared = (a.headDim + a.keys + 32) * 4
        guard shared <= 48 * 1024 else {
            throw BackendError.unavailable(backend: "cuda",
                reason: "attention over \(a.keys) keys at head dim \(a.headDim) needs \(shared) bytes of shared memory (limit 49152)")
        }
        try ctx.launch("attention", grid: (a.heads, a.queries), block: (128, 1), sharedBytes: shared,
                       [.ptr(q), .i32(a.qStride), .ptr(k), .i32(a.kStride), .ptr(v), .i32(a.vStride),
                        .ptr(mask), .i32(a.maskStride), .ptr(out), .i32(outStride), .i32(a.queries), .i32(a.keys),
                        .i32(a.heads), .i32(a.kvHeads), .i32(a.headDim), .f32(a.scale), .i32(a.roundToBF16 ? 1 : 0)])
    }
}
