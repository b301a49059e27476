// The driver calls `CUDABackend` makes after start-up, behind one small protocol: the real
// implementation is `CUDAContext` (libcuda through dlsym, one context, one stream, the kernel module);
// the tests put a device emulated on the CPU and a fake that records every call in its place
// (Tests/PI0CUDATests), so the backend's memory discipline and graph capture are checked without a GPU.
// Method names follow the driver entry points they stand for (docs/CUDA.md, "Graph capture").

typealias CUresult = Int32
typealias CUdeviceptr = UInt64
typealias CUhandle = OpaquePointer

/// A kernel argument, stored as cuLaunchKernel expects (a pointer to each value).
enum KernelArg: Equatable {
    case ptr(CUdeviceptr), i32(Int), i64(Int), f32(Float), f64(Double)

    /// Runs `body` with the `void**` parameter array for `args` (each value in its own 8-byte slot).
    static func withParameters<R>(_ args: [KernelArg], _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws -> R) rethrows -> R {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(args.count, 1), alignment: 8)
        defer { storage.deallocate() }
        // Filler in the unused bytes of a slot: a kernel parameter declared wider than the value passed
        // (an int passed where the kernel takes a long) then reads garbage, and the CPU emulation fails.
        storage.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 8 * max(args.count, 1))
        var params = [UnsafeMutableRawPointer?](repeating: nil, count: max(args.count, 1))
        for (i, a) in args.enumerated() {
            let slot = storage + 8 * i
            switch a {
            case let .ptr(p): slot.storeBytes(of: p, as: UInt64.self)
            case let .i32(v): slot.storeBytes(of: Int32(v), as: Int32.self)
            case let .i64(v): slot.storeBytes(of: Int64(v), as: Int64.self)
            case let .f32(v): slot.storeBytes(of: v, as: Float.self)
            case let .f64(v): slot.storeBytes(of: v, as: Double.self)
            }
            params[i] = slot
        }
        return try params.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}

/// Grid and block sizes of a launch (x, y; z is 1).
struct LaunchShape: Equatable {
    var grid: (Int, Int), block: (Int, Int)
    static func == (a: LaunchShape, b: LaunchShape) -> Bool {
        a.grid == b.grid && a.block == b.block
    }
}

/// The backend's two streams: `compute` carries every operation, graph launch and synchronous transfer;
/// `transfer` carries only the asynchronous uploads of `AsyncTransfers` (CUDABackend+Transfers.swift).
enum CUDAStreamRole: String, Sendable {
    case compute, transfer
}

/// One CUDA context and its two streams. Every call is issued on the compute stream unless it names the
/// transfer stream; only `streamSynchronize`, `eventSynchronize` and `memcpyDtoHAsync` followed by a
/// synchronisation wait for the device.
protocol CUDADeviceAPI: AnyObject, Sendable {
    /// "NVIDIA H100 80GB HBM3, sm_90, cubin kernels" (for the backend's name).
    var label: String { get }
    /// The most dynamic shared memory one block of `pi0_attention` may use (bytes).
    var attentionSharedLimit: Int { get }
    /// The stream, for cuBLAS (nil on fakes).
    var stream: CUhandle? { get }

    /// cuCtxSetCurrent: makes the context current on the calling thread.
    func ctxSetCurrent() throws
    /// cuMemAlloc.
    func memAlloc(bytes: Int) throws -> CUdeviceptr
    /// cuMemFree.
    func memFree(_ pointer: CUdeviceptr)
    /// cuMemsetD32Async: `count` 32-bit words set to `value` on the stream.
    func memsetD32Async(_ pointer: CUdeviceptr, value: UInt32, count: Int) throws
    /// cuMemcpyHtoDAsync from pageable memory (returns once the source has been staged).
    func memcpyHtoDAsync(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws
    /// cuMemcpyDtoHAsync (the caller synchronises before reading `destination`).
    func memcpyDtoHAsync(_ destination: UnsafeMutableRawPointer, _ source: CUdeviceptr, bytes: Int) throws
    /// cuLaunchKernel of the named kernel of the module on the stream.
    func launchKernel(_ name: String, _ shape: LaunchShape, sharedBytes: Int, _ args: [KernelArg]) throws
    /// cuStreamSynchronize.
    func streamSynchronize() throws
    /// cuStreamBeginCapture (thread-local mode).
    func streamBeginCapture() throws
    /// cuStreamEndCapture: the captured graph.
    func streamEndCapture() throws -> CUhandle?
    /// cuGraphInstantiateWithFlags: an executable graph.
    func graphInstantiate(_ graph: CUhandle?) throws -> CUhandle?
    /// cuGraphLaunch on the stream.
    func graphLaunch(_ exec: CUhandle?) throws
    /// cuGraphDestroy.
    func graphDestroy(_ graph: CUhandle?)
    /// cuGraphExecDestroy.
    func graphExecDestroy(_ exec: CUhandle?)

    // Asynchronous transfers (AsyncTransfers): pinned host memory, the transfer stream, events.
    /// cuMemHostAlloc: page-locked host memory.
    func memHostAlloc(bytes: Int) throws -> UnsafeMutableRawPointer
    /// cuMemFreeHost.
    func memFreeHost(_ pointer: UnsafeMutableRawPointer)
    /// cuMemcpyHtoDAsync on the transfer stream (from pinned memory: returns at once).
    func memcpyHtoDAsyncOnTransferStream(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws
    /// cuEventCreate (CU_EVENT_DISABLE_TIMING).
    func eventCreate() throws -> CUhandle?
    /// cuEventDestroy.
    func eventDestroy(_ event: CUhandle?)
    /// cuEventRecord on one of the streams.
    func eventRecord(_ event: CUhandle?, on stream: CUDAStreamRole) throws
    /// cuStreamWaitEvent: later work on `stream` waits for `event`.
    func streamWaitEvent(_ stream: CUDAStreamRole, _ event: CUhandle?) throws
    /// cuEventSynchronize: the host waits for `event`.
    func eventSynchronize(_ event: CUhandle?) throws
}
