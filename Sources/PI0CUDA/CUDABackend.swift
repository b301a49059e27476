// `CUDABackend`: π0's `ComputeBackend` on an NVIDIA GPU through the driver API, cuBLAS (optional)
// and NVRTC-compiled kernels, all loaded at run time (docs/CUDA.md).
//
// Tensors live on the device (`CUDAStorage`). Every operation launches kernels (or a cuBLAS GEMM) on
// the backend's one stream and returns at once: no host transfer, no synchronisation. Only `upload`,
// `download` (which waits) and `synchronize` touch the host; weights are uploaded once, at load, in
// their stored dtype. Because nothing in an operation waits or allocates, a whole sequence of them can
// be captured as one CUDA graph and replayed (CUDABackend+Graph.swift).
//
// The ComputeBackend methods cannot throw, so a device failure after start-up (out of memory, a
// launch error) stops the process with the driver's message; start-up failures are typed errors.
import Foundation
import PI0Tensor

public final class CUDABackend: ComputeBackend, @unchecked Sendable {
    let device: CUDADeviceAPI
    let memory: CUDAAllocator
    let cublas: CUBLAS?
    /// Why cuBLAS is not used (nil when it is).
    public let cublasNote: String?
    let lock = NSRecursiveLock()
    /// True between cuStreamBeginCapture and cuStreamEndCapture.
    var capturing = false
    /// bf16 copy of a linear layer's activations for the cuBLAS bf16 GEMM (grown eagerly, never in a capture).
    var bf16Scratch: CUDABuffer?
    /// Bytes of bf16 scratch a capture needed but did not have (the capture is then redone).
    var scratchShortfall = 0
    /// cuBLAS workspace, fixed so that captured GEMMs allocate nothing.
    var cublasWorkspace: CUDABuffer?

    /// Opens device PI0_CUDA_DEVICE (default 0), loads (or compiles) the kernels and cuBLAS.
    /// PI0_CUDA_NO_CUBLAS=1 forces the fallback linear kernels. Throws `BackendError.unavailable`
    /// naming the missing library, symbol or device.
    public static func make() throws -> CUDABackend {
        let env = ProcessInfo.processInfo.environment
        let ordinal = Int(env["PI0_CUDA_DEVICE"] ?? "0") ?? 0
        return try CUDABackend(device: ordinal, useCUBLAS: env["PI0_CUDA_NO_CUBLAS"] != "1")
    }

    public convenience init(device ordinal: Int = 0, useCUBLAS: Bool = true) throws {
        let ctx = try CUDAContext(ordinal: ordinal)
        try ctx.loadKernels()
        var cublas: CUBLAS?, note: String?
        if useCUBLAS {
            do { cublas = try CUBLAS.load(stream: ctx.stream) } catch { note = "\(error)" }
        } else {
            note = "disabled (PI0_CUDA_NO_CUBLAS=1)"
        }
        try self.init(device: ctx, cublas: cublas, cublasNote: note)
    }

    /// A backend on any `CUDADeviceAPI` (the tests' emulated and recording devices have no cuBLAS).
    init(device: CUDADeviceAPI, cublas: CUBLAS? = nil, cublasNote: String? = "not loaded") throws {
        self.device = device
        memory = CUDAAllocator(device: device)
        self.cublas = cublas
        self.cublasNote = cublas == nil ? cublasNote : nil
        if let cublas {
            let ws = try memory.allocate(bytes: CUBLAS.workspaceBytes)
            cublas.setWorkspace(ws.pointer, bytes: ws.byteCount)
            cublasWorkspace = ws
        }
    }

    public var name: String { "cuda (\(device.label), \(cublas == nil ? "fallback GEMM" : "cuBLAS"))" }

    /// Runs `body` with the context current under the lock; device errors stop the process.
    func run<T>(_ what: @autoclosure () -> String, _ body: () throws -> T) -> T {
        lock.lock(); defer { lock.unlock() }
        do { try device.ctxSetCurrent(); return try body() } catch { fatalError("cuda \(what()): \(error)") }
    }

    /// Launches a kernel on the stream (through `run`).
    func launch(_ name: String, grid: (Int, Int), block: (Int, Int) = (256, 1), sharedBytes: Int = 0, _ args: [KernelArg]) {
        run(name) { try device.launchKernel(name, LaunchShape(grid: grid, block: block), sharedBytes: sharedBytes, args) }
    }

    /// Blocks for a grid-stride loop over n elements with 256 threads each.
    static func grid1D(_ n: Int) -> (Int, Int) { (max(1, min((n + 255) / 256, 65_535)), 1) }

    func requireEager(_ what: String) {
        precondition(!capturing, "cuda: \(what) during graph capture (only device operations can be captured)")
    }

    // MARK: Memory and transfers

    public func allocate(count: Int) -> BackendStorage {
        run("allocate \(count) floats") {
            requireEager("allocate")
            return CUDAStorage(count: count, buffer: try memory.allocate(bytes: max(count, 1) * 4))
        }
    }

    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        guard let base = source.baseAddress, source.count > 0 else { return }
        precondition(destination.offset + source.count <= destination.storage.count, "upload past the end of the tensor")
        run("upload") {
            requireEager("upload")
            try device.memcpyHtoDAsync(destination.devicePointer, base, bytes: source.count * 4)
        }
    }

    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        guard let base = destination.baseAddress, destination.count > 0 else { return }
        precondition(source.offset + destination.count <= source.storage.count, "download past the end of the tensor")
        run("download") {
            requireEager("download")
            try device.memcpyDtoHAsync(base, source.devicePointer, bytes: destination.count * 4)
            try device.streamSynchronize()
        }
    }

    public func synchronize() {
        run("synchronize") { requireEager("synchronize"); try device.streamSynchronize() }
    }

    // MARK: Weights

    public func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        let (weight, bias) = try WeightTensor.stacked(weights, biases: biases)
        let (n, k) = try weight.linearShape(bias: bias)
        lock.lock(); defer { lock.unlock() }
        requireEager("prepareLinear")
        try device.ctxSetCurrent()
        // cuBLAS needs equal A/B types: bf16 weights with inputs not known to be bf16 are widened to float32.
        let keepBF16 = weight.dtype == .bfloat16 && (cublas == nil || inputsAreBF16)
        let w: CUDABuffer
        if weight.dtype == .float32 || keepBF16 {
            w = try memory.allocate(bytes: weight.count * weight.dtype.byteSize)
            try device.memcpyHtoDAsync(w.pointer, weight.pointer, bytes: w.byteCount)
        } else {
            let f = weight.floats()
            w = try memory.allocate(bytes: f.count * 4)
            try f.withUnsafeBytes { try device.memcpyHtoDAsync(w.pointer, $0.baseAddress!, bytes: w.byteCount) }
        }
        var b: CUDABuffer?
        if let bias {
            let f = bias.floats()
            let d = try memory.allocate(bytes: f.count * 4)
            try f.withUnsafeBytes { try device.memcpyHtoDAsync(d.pointer, $0.baseAddress!, bytes: d.byteCount) }
            b = d
        }
        try device.streamSynchronize()   // load time: the host copies die at return
        return CUDALinear(n: n, k: k, weight: w, weightType: keepBF16 ? CUBLAS.r16BF : CUBLAS.r32F, bias: b,
                          bf16Inputs: keepBF16 && cublas != nil)
    }

    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding {
        guard table.shape.count == 2 else {
            throw BackendError.unsupportedWeight(name: table.name, reason: "expected [rows, width], got shape \(table.shape)")
        }
        lock.lock(); defer { lock.unlock() }
        requireEager("prepareEmbedding")
        try device.ctxSetCurrent()
        let t = try memory.allocate(bytes: table.count * table.dtype.byteSize)
        try device.memcpyHtoDAsync(t.pointer, table.pointer, bytes: t.byteCount)
        try device.streamSynchronize()
        return CUDAEmbedding(rows: table.shape[0], width: table.shape[1], table: t, dtype: table.dtype)
    }
}
