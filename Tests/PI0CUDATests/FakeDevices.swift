// Two stand-ins for the CUDA driver (`CUDADeviceAPI`), so that `CUDABackend` runs without a GPU:
//  * `EmulatedDevice`: host memory as "device" memory and the kernels run by KernelEmulator; stream
//    capture records the launches and a graph launch replays them.
//  * `RecordingDevice`: wraps another device (or none) and records every driver call in order, so a
//    test can assert what happens during capture and replay (no cuMemAlloc, no copies, one cuGraphLaunch).
import Foundation
@testable import PI0CUDA

final class EmulatedDevice: CUDADeviceAPI, @unchecked Sendable {
    let launcher: KernelEmulator.Launch
    var label: String { "CPU emulation of the kernels" }
    var attentionSharedLimit: Int
    var stream: CUhandle? { nil }
    /// The emulator's launcher keeps its state in globals: one launch at a time in the process.
    static let launchLock = NSLock()
    private var capturing: [() -> Void]?
    private var graphs: [Int: [() -> Void]] = [:]
    private var nextGraph = 1

    init(launcher: KernelEmulator.Launch, attentionSharedLimit: Int = 48 * 1024) {
        self.launcher = launcher; self.attentionSharedLimit = attentionSharedLimit
    }

    func ctxSetCurrent() throws {}

    func memAlloc(bytes: Int) throws -> CUdeviceptr {
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 256)
        return CUdeviceptr(UInt(bitPattern: p))
    }
    func memFree(_ pointer: CUdeviceptr) { UnsafeMutableRawPointer(bitPattern: UInt(pointer))?.deallocate() }

    private func raw(_ p: CUdeviceptr) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(p))! }

    func memsetD32Async(_ pointer: CUdeviceptr, value: UInt32, count: Int) throws {
        raw(pointer).bindMemory(to: UInt32.self, capacity: count).initialize(repeating: value, count: count)
    }
    func memcpyHtoDAsync(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        raw(destination).copyMemory(from: source, byteCount: bytes)
    }
    func memcpyDtoHAsync(_ destination: UnsafeMutableRawPointer, _ source: CUdeviceptr, bytes: Int) throws {
        destination.copyMemory(from: raw(source), byteCount: bytes)
    }

    func launchKernel(_ name: String, _ shape: LaunchShape, sharedBytes: Int, _ args: [KernelArg]) throws {
        let run = { [launcher] in
            EmulatedDevice.launchLock.lock(); defer { EmulatedDevice.launchLock.unlock() }
            let r = KernelArg.withParameters(args) { params in
                launcher(name, UInt32(shape.grid.0), UInt32(shape.grid.1), UInt32(shape.block.0), UInt32(shape.block.1), sharedBytes, params)
            }
            precondition(r != 1, "emulator: unknown kernel \(name)")
            precondition(r != 2, "emulator: kernel \(name) has a __syncthreads that not every thread of a block reaches")
        }
        submit(run)
    }

    /// Runs `work` now, or records it into the graph being captured (kernels, and FakeCUBLAS's GEMMs).
    func submit(_ work: @escaping () -> Void) {
        if capturing != nil { capturing!.append(work) } else { work() }
    }

    func streamSynchronize() throws {}
    func streamBeginCapture() throws { precondition(capturing == nil); capturing = [] }
    func streamEndCapture() throws -> CUhandle? {
        let id = nextGraph; nextGraph += 1
        graphs[id] = capturing; capturing = nil
        return CUhandle(bitPattern: id)
    }
    func graphInstantiate(_ graph: CUhandle?) throws -> CUhandle? {
        let id = nextGraph; nextGraph += 1
        graphs[id] = graphs[Int(bitPattern: graph)]
        return CUhandle(bitPattern: id)
    }
    func graphLaunch(_ exec: CUhandle?) throws { graphs[Int(bitPattern: exec)]!.forEach { $0() } }
    func graphDestroy(_ graph: CUhandle?) { graphs[Int(bitPattern: graph)] = nil }
    func graphExecDestroy(_ exec: CUhandle?) { graphs[Int(bitPattern: exec)] = nil }

    // One queue in program order: a transfer-stream copy runs when issued, events are already reached.
    func memHostAlloc(bytes: Int) throws -> UnsafeMutableRawPointer { UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 256) }
    func memFreeHost(_ pointer: UnsafeMutableRawPointer) { pointer.deallocate() }
    func memcpyHtoDAsyncOnTransferStream(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        precondition(capturing == nil, "transfer-stream copy during a capture")
        raw(destination).copyMemory(from: source, byteCount: bytes)
    }
    func eventCreate() throws -> CUhandle? { nextGraph += 1; return CUhandle(bitPattern: 1_000_000 + nextGraph) }
    func eventDestroy(_ event: CUhandle?) {}
    func eventRecord(_ event: CUhandle?, on stream: CUDAStreamRole) throws {}
    func streamWaitEvent(_ stream: CUDAStreamRole, _ event: CUhandle?) throws {}
    func eventSynchronize(_ event: CUhandle?) throws {}
}

/// Records every driver call ("cuMemAlloc", "cuLaunchKernel pi0_add", …), forwarding to `inner` when
/// given (else a launch does nothing and memory is plain host memory, never read).
final class RecordingDevice: CUDADeviceAPI, @unchecked Sendable {
    let inner: CUDADeviceAPI?
    private(set) var calls: [String] = []
    private var nextHandle = 1000
    private let lock = NSLock()

    init(wrapping inner: CUDADeviceAPI? = nil) { self.inner = inner }

    var label: String { "recording (\(inner?.label ?? "no device"))" }
    var attentionSharedLimit: Int { inner?.attentionSharedLimit ?? 48 * 1024 }
    var stream: CUhandle? { nil }

    private func record(_ call: String) { lock.lock(); calls.append(call); lock.unlock() }
    /// Records a call that does not go through this protocol (FakeCUBLAS's GEMM).
    func note(_ call: String) { record(call) }
    private func handle() -> CUhandle? { nextHandle += 1; return CUhandle(bitPattern: nextHandle) }

    /// Calls recorded so far, without cuCtxSetCurrent (issued before every operation), then cleared.
    func take() -> [String] {
        lock.lock(); defer { calls = []; lock.unlock() }
        return calls.filter { $0 != "cuCtxSetCurrent" }
    }

    func ctxSetCurrent() throws { record("cuCtxSetCurrent"); try inner?.ctxSetCurrent() }
    func memAlloc(bytes: Int) throws -> CUdeviceptr {
        record("cuMemAlloc")
        if let inner { return try inner.memAlloc(bytes: bytes) }
        return CUdeviceptr(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 256)))
    }
    func memFree(_ pointer: CUdeviceptr) {
        record("cuMemFree")
        if let inner { inner.memFree(pointer) } else { UnsafeMutableRawPointer(bitPattern: UInt(pointer))?.deallocate() }
    }
    func memsetD32Async(_ pointer: CUdeviceptr, value: UInt32, count: Int) throws {
        record("cuMemsetD32Async"); try inner?.memsetD32Async(pointer, value: value, count: count)
    }
    func memcpyHtoDAsync(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        record("cuMemcpyHtoDAsync"); try inner?.memcpyHtoDAsync(destination, source, bytes: bytes)
    }
    func memcpyDtoHAsync(_ destination: UnsafeMutableRawPointer, _ source: CUdeviceptr, bytes: Int) throws {
        record("cuMemcpyDtoHAsync"); try inner?.memcpyDtoHAsync(destination, source, bytes: bytes)
    }
    func launchKernel(_ name: String, _ shape: LaunchShape, sharedBytes: Int, _ args: [KernelArg]) throws {
        record("cuLaunchKernel \(name)"); try inner?.launchKernel(name, shape, sharedBytes: sharedBytes, args)
    }
    func streamSynchronize() throws { record("cuStreamSynchronize"); try inner?.streamSynchronize() }
    func streamBeginCapture() throws { record("cuStreamBeginCapture"); try inner?.streamBeginCapture() }
    func streamEndCapture() throws -> CUhandle? {
        record("cuStreamEndCapture")
        return try inner.map { try $0.streamEndCapture() } ?? handle()
    }
    func graphInstantiate(_ graph: CUhandle?) throws -> CUhandle? {
        record("cuGraphInstantiate")
        return try inner.map { try $0.graphInstantiate(graph) } ?? handle()
    }
    func graphLaunch(_ exec: CUhandle?) throws { record("cuGraphLaunch"); try inner?.graphLaunch(exec) }
    func graphDestroy(_ graph: CUhandle?) { record("cuGraphDestroy"); inner?.graphDestroy(graph) }
    func graphExecDestroy(_ exec: CUhandle?) { record("cuGraphExecDestroy"); inner?.graphExecDestroy(exec) }

    /// Events are named by creation order ("e1", "e2", …) in the records.
    private var eventNames: [Int: String] = [:]
    func eventName(_ e: CUhandle?) -> String { lock.lock(); defer { lock.unlock() }; return eventNames[Int(bitPattern: e)] ?? "e?" }

    func memHostAlloc(bytes: Int) throws -> UnsafeMutableRawPointer {
        record("cuMemHostAlloc")
        return try inner?.memHostAlloc(bytes: bytes) ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 256)
    }
    func memFreeHost(_ pointer: UnsafeMutableRawPointer) {
        record("cuMemFreeHost")
        if let inner { inner.memFreeHost(pointer) } else { pointer.deallocate() }
    }
    func memcpyHtoDAsyncOnTransferStream(_ destination: CUdeviceptr, _ source: UnsafeRawPointer, bytes: Int) throws {
        record("cuMemcpyHtoDAsync transfer"); try inner?.memcpyHtoDAsyncOnTransferStream(destination, source, bytes: bytes)
    }
    func eventCreate() throws -> CUhandle? {
        let h = try inner.map { try $0.eventCreate() } ?? handle()
        lock.lock(); eventNames[Int(bitPattern: h)] = "e\(eventNames.count + 1)"; lock.unlock()
        record("cuEventCreate \(eventName(h))")
        return h
    }
    func eventDestroy(_ event: CUhandle?) { record("cuEventDestroy \(eventName(event))"); inner?.eventDestroy(event) }
    func eventRecord(_ event: CUhandle?, on stream: CUDAStreamRole) throws {
        record("cuEventRecord \(eventName(event)) \(stream.rawValue)"); try inner?.eventRecord(event, on: stream)
    }
    func streamWaitEvent(_ stream: CUDAStreamRole, _ event: CUhandle?) throws {
        record("cuStreamWaitEvent \(stream.rawValue) \(eventName(event))"); try inner?.streamWaitEvent(stream, event)
    }
    func eventSynchronize(_ event: CUhandle?) throws { record("cuEventSynchronize \(eventName(event))"); try inner?.eventSynchronize(event) }
}
