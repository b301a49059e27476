// One CUDA device: the driver, its primary context, a stream and the loaded kernel module; the real
// `CUDADeviceAPI` (CUDADevice.swift). Every entry of the backend makes the context current first
// (callers may come from any thread) and holds the backend's lock.
import Foundation
import PI0Tensor

final class CUDAContext: @unchecked Sendable {
    let driver: CUDADriver
    let device: Int32
    let deviceName: String
    let computeCapability: (Int, Int)
    let context: CUhandle?
    let stream: CUhandle?
    /// The second stream: asynchronous uploads of the next observation (AsyncTransfers).
    let transferStream: CUhandle?
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
        var t: CUhandle?
        try driver.check(driver.cuStreamCreate(&t, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate(transfer)")
        transferStream = t
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
                raiseAttentionSharedLimit()
                return
            }
            do { try driver.check(r, "cuModuleLoadData(\(image.kind))") } catch { failures.append("\(error)") }
        }
        throw BackendError.unavailable(backend: "cuda", reason: "could not load the kernels for \(arch): " + failures.joined(separator: "; "))
    }

    /// The largest dynamic shared memory the attention kernel was allowed (bytes): the opt-in maximum
    /// when the driver has cuFuncSetAttribute (sm_80+: up to 163 or 227 KiB), else the 48 KiB default.
    private(set) var attentionSharedLimit = 48 * 1024

    private func raiseAttentionSharedLimit() {
        guard let set = driver.cuFuncSetAttribute, let f = functions["pi0_attention"] else { return }
        var optIn: Int32 = 0
        guard driver.cuDeviceGetAttribute(&optIn, CUDADriver.attrSharedOptIn, device) == 0, Int(optIn) > attentionSharedLimit,
              set(f, CUDADriver.funcMaxDynamicShared, optIn) == 0 else { return }
        attentionSharedLimit = Int(optIn)
    }
}

extension CUDAContext: CUDADeviceAPI {
    var label: String { "\(deviceName), \(arch), \(moduleKind) kernels" }

    func ctxSetCurrent() throws { try makeCurrent() }

    func memAlloc(bytes: Int) throws -> CUdeviceptr {
        var p: CUdeviceptr = 0
        try driver.check(driver.cuMemAlloc(&p, max(bytes, 4)), "cuMemAlloc(\(bytes) bytes)")
        return p
    }

    func memFree(_ pointer: CUdeviceptr) { _ = driver.cuMemFree(pointer) }

    func memsetD32Async(_ pointer: CUdeviceptr, value: UInt32, count: Int) throws {
        guard count > 0 else { return }
        try driver.check(driver.cuMemsetD32Async(pointer, value, count, stream), "cuMemsetD32Async")
    }

    func memcpyHtoDAsync(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try driver.check(driver.cuMemcpyHtoDAsync(destination, source, bytes, stream), "cuMemcpyHtoDAsync")
    }

    func memcpyDtoHAsync(_ destination: UnsafeMutableRawPointer, _ source: CUdeviceptr, bytes: Int) throws {
        guard bytes > 0 else { return }
        try driver.check(driver.cuMemcpyDtoHAsync(destination, source, bytes, stream), "cuMemcpyDtoHAsync")
    }

    func launchKernel(_ name: String, _ shape: LaunchShape, sharedBytes: Int, _ args: [KernelArg]) throws {
        guard let f = functions[name] else { throw BackendError.unavailable(backend: "cuda", reason: "kernel \(name) not loaded") }
        let r = KernelArg.withParameters(args) { p in
            driver.cuLaunchKernel(f, UInt32(shape.grid.0), UInt32(shape.grid.1), 1, UInt32(shape.block.0), UInt32(shape.block.1), 1,
                                  UInt32(sharedBytes), stream, p, nil)
        }
        try driver.check(r, "cuLaunchKernel(\(name))")
    }

    func streamSynchronize() throws { try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize") }

    func streamBeginCapture() throws {
        try driver.check(driver.cuStreamBeginCapture(stream, CUDADriver.captureThreadLocal), "cuStreamBeginCapture")
    }

    func streamEndCapture() throws -> CUhandle? {
        var g: CUhandle?
        try driver.check(driver.cuStreamEndCapture(stream, &g), "cuStreamEndCapture")
        return g
    }

    func graphInstantiate(_ graph: CUhandle?) throws -> CUhandle? {
        var e: CUhandle?
        try driver.check(driver.cuGraphInstantiate(&e, graph, 0), "cuGraphInstantiateWithFlags")
        return e
    }

    func graphLaunch(_ exec: CUhandle?) throws { try driver.check(driver.cuGraphLaunch(exec, stream), "cuGraphLaunch") }
    func graphDestroy(_ graph: CUhandle?) { _ = driver.cuGraphDestroy(graph) }
    func graphExecDestroy(_ exec: CUhandle?) { _ = driver.cuGraphExecDestroy(exec) }

    func memHostAlloc(bytes: Int) throws -> UnsafeMutableRawPointer {
        var p: UnsafeMutableRawPointer?
        try driver.check(driver.cuMemHostAlloc(&p, max(bytes, 4), 0), "cuMemHostAlloc(\(bytes) bytes)")
        guard let p else { throw BackendError.unavailable(backend: "cuda", reason: "cuMemHostAlloc returned no memory") }
        return p
    }
    func memFreeHost(_ pointer: UnsafeMutableRawPointer) { _ = driver.cuMemFreeHost(pointer) }

    func memcpyHtoDAsyncOnTransferStream(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        guard bytes > 0 else { return }
        try driver.check(driver.cuMemcpyHtoDAsync(destination, source, bytes, transferStream), "cuMemcpyHtoDAsync(transfer)")
    }

    func eventCreate() throws -> CUhandle? {
        var e: CUhandle?
        try driver.check(driver.cuEventCreate(&e, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
        return e
    }
    func eventDestroy(_ event: CUhandle?) { _ = driver.cuEventDestroy(event) }
    private func handle(_ role: CUDAStreamRole) -> CUhandle? { role == .compute ? stream : transferStream }
    func eventRecord(_ event: CUhandle?, on role: CUDAStreamRole) throws {
        try driver.check(driver.cuEventRecord(event, handle(role)), "cuEventRecord(\(role.rawValue))")
    }
    func streamWaitEvent(_ role: CUDAStreamRole, _ event: CUhandle?) throws {
        try driver.check(driver.cuStreamWaitEvent(handle(role), event, 0), "cuStreamWaitEvent(\(role.rawValue))")
    }
    func eventSynchronize(_ event: CUhandle?) throws { try driver.check(driver.cuEventSynchronize(event), "cuEventSynchronize") }
}
