// One CUDA device: the driver, its primary context, a stream, the loaded kernel module, device
// memory and kernel launches. Every public entry of the backend makes the context current first
// (callers may come from any thread) and holds the backend's lock.
import Foundation
import PI0Tensor

/// Device memory owned by Swift; freed on deinit.
final class DeviceBuffer: @unchecked Sendable {
    let pointer: CUdeviceptr
    let byteCount: Int
    private let context: CUDAContext
    init(context: CUDAContext, byteCount: Int) throws {
        var p: CUdeviceptr = 0
        try context.makeCurrent()
        try context.driver.check(context.driver.cuMemAlloc(&p, max(byteCount, 4)), "cuMemAlloc(\(byteCount) bytes)")
        pointer = p; self.byteCount = byteCount; self.context = context
    }
    deinit { try? context.makeCurrent(); _ = context.driver.cuMemFree(pointer) }
}

/// A kernel argument, stored as cuLaunchKernel expects (a pointer to each value).
enum KernelArg {
    case ptr(CUdeviceptr), i32(Int), i64(Int), f32(Float)
}

final class CUDAContext: @unchecked Sendable {
    let driver: CUDADriver
    let device: Int32
    let deviceName: String
    let computeCapability: (Int, Int)
    let context: CUhandle?
    let stream: CUhandle?
    private(set) var module: CUhandle?
    private(set) var functions: [String: CUhandle] = [:]
    private(set) var moduleKind = ""

    init(ordinal: Int) throws {
        driver = try CUDADriver.load()
        try driver.check(driver.cuInit(0), "cuInit")
        var count: Int32 = 0
        try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard count > 0 else { throw BackendError.unavailable(backend: "cuda", reason: "no CUDA device (cuDeviceGetCount returned 0)") }
        guard ordinal >= 0 && ordinal < Int(count) else {
            throw BackendError.unavailable(backend: "cuda", reason: "device \(ordinal) requested (PI0_CUDA_DEVICE) but only \(count) present")
        }
        var dev: Int32 = 0
        try driver.check(driver.cuDeviceGet(&dev, Int32(ordinal)), "cuDeviceGet")
        device = dev
        var name = [CChar](repeating: 0, count: 256)
        try driver.check(driver.cuDeviceGetName(&name, 255, dev), "cuDeviceGetName")
        deviceName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var major: Int32 = 0, minor: Int32 = 0
        try driver.check(driver.cuDeviceGetAttribute(&major, CUDADriver.attrComputeMajor, dev), "cuDeviceGetAttribute(major)")
        try driver.check(driver.cuDeviceGetAttribute(&minor, CUDADriver.attrComputeMinor, dev), "cuDeviceGetAttribute(minor)")
        computeCapability = (Int(major), Int(minor))
        var ctx: CUhandle?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")
        context = ctx
        try driver.check(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        var s: CUhandle?
        try driver.check(driver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate")
        stream = s
    }

    var arch: String { "sm_\(computeCapability.0)\(computeCapability.1)" }

    func makeCurrent() throws { try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent") }

    /// Loads the kernels (cached CUBIN, else PTX, else compiled now) and resolves every entry point.
    func loadKernels() throws {
        var failures: [String] = []
        for image in try CUDAKernelCache.images(arch: arch) {
            var m: CUhandle?
            let r = image.bytes.withUnsafeBytes { driver.cuModuleLoadData(&m, $0.baseAddress) }
            if r == 0, let m {
                module = m; moduleKind = image.kind
                for n in CUDAKernels.names {
                    var f: CUhandle?
                    try driver.check(n.withCString { driver.cuModuleGetFunction(&f, m, $0) }, "cuModuleGetFunction(\(n))")
                    functions[n] = f
                }
                return
            }
            do { try driver.check(r, "cuModuleLoadData(\(image.kind))") } catch { failures.append("\(error)") }
        }
        throw BackendError.unavailable(backend: "cuda", reason: "could not load the kernels for \(arch): " + failures.joined(separator: "; "))
    }

    /// Launches `name` on the stream.
    func launch(_ name: String, grid: (Int, Int), block: (Int, Int), sharedBytes: Int = 0, _ args: [KernelArg]) throws {
        guard let f = functions[name] else { throw BackendError.unavailable(backend: "cuda", reason: "kernel \(name) not loaded") }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(args.count, 1), alignment: 8)
        defer { storage.deallocate() }
        var params = [UnsafeMutableRawPointer?](repeating: nil, count: args.count)
        for (i, a) in args.enumerated() {
            let slot = storage + 8 * i
            switch a {
            case let .ptr(p): slot.storeBytes(of: p, as: UInt64.self)
            case let .i32(v): slot.storeBytes(of: Int32(v), as: Int32.self)
            case let .i64(v): slot.storeBytes(of: Int64(v), as: Int64.self)
            case let .f32(v): slot.storeBytes(of: v, as: Float.self)
            }
            params[i] = slot
        }
        let r = params.withUnsafeMutableBufferPointer { p in
            driver.cuLaunchKernel(f, UInt32(grid.0), UInt32(grid.1), 1, UInt32(block.0), UInt32(block.1), 1,
                                  UInt32(sharedBytes), stream, p.baseAddress, nil)
        }
        try driver.check(r, "cuLaunchKernel(\(name))")
    }

    /// Grid size for a grid-stride loop over n elements with 256 threads per block.
    static func grid1D(_ n: Int) -> (Int, Int) { (max(1, min((n + 255) / 256, 65_535)), 1) }

    func upload(_ host: UnsafeRawPointer, bytes: Int, to dst: CUdeviceptr) throws {
        guard bytes > 0 else { return }
        try driver.check(driver.cuMemcpyHtoDAsync(dst, host, bytes, stream), "cuMemcpyHtoDAsync")
    }

    func download(_ src: CUdeviceptr, bytes: Int, to host: UnsafeMutableRawPointer) throws {
        guard bytes > 0 else { return }
        try driver.check(driver.cuMemcpyDtoHAsync(host, src, bytes, stream), "cuMemcpyDtoHAsync")
    }

    func synchronize() throws { try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize") }
}
