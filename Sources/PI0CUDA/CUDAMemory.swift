// Device memory of the CUDA backend: `CUDAStorage` (the `BackendStorage` the model's tensors live in)
// and the weights' buffers, all from one allocator that knows when a graph is being captured
// (no allocation then; a buffer released during a capture is freed after it ends).
import Foundation
import PI0Tensor

/// Allocates and frees device memory for one backend.
final class CUDAAllocator: @unchecked Sendable {
    let device: CUDADeviceAPI
    private let lock = NSLock()
    private var capturing = false
    private var deferred: [CUdeviceptr] = []

    init(device: CUDADeviceAPI) { self.device = device }

    /// A zero-filled allocation (cuMemAlloc, then cuMemsetD32Async on the stream). Never during a capture.
    func allocate(bytes: Int) throws -> CUDABuffer {
        lock.lock(); let inCapture = capturing; lock.unlock()
        precondition(!inCapture, "cuda: memory allocated during graph capture (a plan allocates its tensors before it is captured)")
        let rounded = max((bytes + 3) / 4 * 4, 4)
        let p = try device.memAlloc(bytes: rounded)
        try device.memsetD32Async(p, value: 0, count: rounded / 4)
        return CUDABuffer(pointer: p, byteCount: bytes, allocator: self)
    }

    func free(_ p: CUdeviceptr) {
        lock.lock(); defer { lock.unlock() }
        if capturing { deferred.append(p); return }
        try? device.ctxSetCurrent()
        device.memFree(p)
    }

    func setCapturing(_ on: Bool) {
        lock.lock(); defer { lock.unlock() }
        capturing = on
        guard !on else { return }
        try? device.ctxSetCurrent()
        deferred.forEach { device.memFree($0) }
        deferred = []
    }
}

/// One device allocation, freed when the last reference goes.
final class CUDABuffer: @unchecked Sendable {
    let pointer: CUdeviceptr
    let byteCount: Int
    private let allocator: CUDAAllocator

    init(pointer: CUdeviceptr, byteCount: Int, allocator: CUDAAllocator) {
        self.pointer = pointer; self.byteCount = byteCount; self.allocator = allocator
    }
    deinit { allocator.free(pointer) }
}

/// Device memory behind a `TensorRef`: `count` floats in one allocation.
public final class CUDAStorage: BackendStorage, @unchecked Sendable {
    public let count: Int
    let buffer: CUDABuffer

    init(count: Int, buffer: CUDABuffer) { self.count = count; self.buffer = buffer }
}

extension TensorRef {
    /// The device address of this position (a tensor of another backend is a programming error).
    var devicePointer: CUdeviceptr {
        guard let s = storage as? CUDAStorage else {
            preconditionFailure("a \(type(of: storage)) tensor was given to the cuda backend")
        }
        precondition(offset >= 0 && offset <= s.count, "tensor offset \(offset) outside storage of \(s.count)")
        return s.buffer.pointer + UInt64(offset * 4)
    }
}

extension Optional where Wrapped == TensorRef {
    /// The device address, or 0 (a null pointer to the kernel) when absent.
    var devicePointer: CUdeviceptr { map { $0.devicePointer } ?? 0 }
}

/// A linear layer resident on the device (weights in their stored dtype unless cuBLAS needs float32).
final class CUDALinear: PreparedLinear, @unchecked Sendable {
    let outFeatures: Int, inFeatures: Int
    let weight: CUDABuffer
    /// CUBLAS.r32F or CUBLAS.r16BF: the element type stored in `weight`.
    let weightType: Int32
    let bias: CUDABuffer?
    /// cuBLAS bf16×bf16 path: the activations are converted to bf16 first (exact: the caller said they are).
    let bf16Inputs: Bool
    var byteCount: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    init(n: Int, k: Int, weight: CUDABuffer, weightType: Int32, bias: CUDABuffer?, bf16Inputs: Bool) {
        outFeatures = n; inFeatures = k; self.weight = weight; self.weightType = weightType
        self.bias = bias; self.bf16Inputs = bf16Inputs
    }
}

/// A token table resident on the device, in its stored dtype.
final class CUDAEmbedding: PreparedEmbedding, @unchecked Sendable {
    let rows: Int, width: Int
    let table: CUDABuffer
    let dtype: WeightDType

    init(rows: Int, width: Int, table: CUDABuffer, dtype: WeightDType) {
        self.rows = rows; self.width = width; self.table = table; self.dtype = dtype
    }
}
