// `AsyncTransfers` on two streams (docs/CUDA.md, "Streams"): the next observation is uploaded on the
// transfer stream (cuMemcpyHtoDAsync from page-locked memory, cuMemHostAlloc) while the compute stream
// runs the current one; events order them (cuEventRecord on one stream, cuStreamWaitEvent on the other)
// and the host waits for an event (cuEventSynchronize) before reading an asynchronous download.
// PI0Runtime's SamplingEngine.submit / collect use this; nothing here allocates device memory, and
// none of it may be issued while a graph is being captured.
import PI0Tensor

/// Page-locked host memory (cuMemHostAlloc), freed with the last reference (cuMemFreeHost).
final class CUDAPinnedBuffer: PinnedHostBuffer, @unchecked Sendable {
    let count: Int
    let floats: UnsafeMutableBufferPointer<Float>
    private let device: CUDADeviceAPI

    init(count: Int, pointer: UnsafeMutableRawPointer, device: CUDADeviceAPI) {
        self.count = count; self.device = device
        floats = UnsafeMutableBufferPointer(start: pointer.bindMemory(to: Float.self, capacity: max(count, 1)), count: count)
        floats.initialize(repeating: 0)
    }
    deinit { try? device.ctxSetCurrent(); device.memFreeHost(UnsafeMutableRawPointer(floats.baseAddress!)) }
}

/// A CUDA event (cuEventCreate without timing), destroyed with the last reference.
final class CUDAEvent: QueueEvent, @unchecked Sendable {
    let handle: CUhandle?
    private let device: CUDADeviceAPI

    init(handle: CUhandle?, device: CUDADeviceAPI) { self.handle = handle; self.device = device }
    deinit { try? device.ctxSetCurrent(); device.eventDestroy(handle) }
}

extension CUDABackend: AsyncTransfers {
    public func allocatePinned(count: Int) -> PinnedHostBuffer {
        run("allocate \(count) pinned floats") {
            requireEager("allocatePinned")
            return CUDAPinnedBuffer(count: count, pointer: try device.memHostAlloc(bytes: max(count, 1) * 4), device: device)
        }
    }

    public func makeEvent() -> QueueEvent {
        run("create an event") { CUDAEvent(handle: try device.eventCreate(), device: device) }
    }

    public func uploadAsync(_ source: PinnedHostBuffer, offset: Int, count: Int, to destination: TensorRef) {
        guard count > 0 else { return }
        let s = pinned(source)
        precondition(offset >= 0 && offset + count <= s.count, "uploadAsync past the end of the pinned buffer")
        precondition(destination.offset + count <= destination.storage.count, "uploadAsync past the end of the tensor")
        run("uploadAsync") {
            requireEager("uploadAsync")
            try device.memcpyHtoDAsyncOnTransferStream(destination.devicePointer, s.floats.baseAddress! + offset, bytes: count * 4)
        }
    }

    public func downloadAsync(_ source: TensorRef, count: Int, into destination: PinnedHostBuffer, offset: Int) {
        guard count > 0 else { return }
        let d = pinned(destination)
        precondition(offset >= 0 && offset + count <= d.count, "downloadAsync past the end of the pinned buffer")
        precondition(source.offset + count <= source.storage.count, "downloadAsync past the end of the tensor")
        run("downloadAsync") {
            requireEager("downloadAsync")
            try device.memcpyDtoHAsync(d.floats.baseAddress! + offset, source.devicePointer, bytes: count * 4)
        }
    }

    public func record(_ event: QueueEvent, on queue: BackendQueue) {
        let e = cudaEvent(event)
        run("record an event") { requireEager("record"); try device.eventRecord(e.handle, on: role(queue)) }
    }

    public func wait(_ queue: BackendQueue, for event: QueueEvent) {
        let e = cudaEvent(event)
        run("wait for an event") { requireEager("wait"); try device.streamWaitEvent(role(queue), e.handle) }
    }

    public func hostWait(_ event: QueueEvent) {
        let e = cudaEvent(event)
        // Without the backend lock: other threads may issue work while this one waits.
        do { try device.ctxSetCurrent(); try device.eventSynchronize(e.handle) } catch { fatalError("cuda hostWait: \(error)") }
    }

    private func role(_ q: BackendQueue) -> CUDAStreamRole { q == .compute ? .compute : .transfer }

    private func pinned(_ b: PinnedHostBuffer) -> CUDAPinnedBuffer {
        guard let p = b as? CUDAPinnedBuffer else { preconditionFailure("a \(type(of: b)) was given to the cuda backend as pinned memory") }
        return p
    }

    private func cudaEvent(_ e: QueueEvent) -> CUDAEvent {
        guard let c = e as? CUDAEvent else { preconditionFailure("a \(type(of: e)) was given to the cuda backend as an event") }
        return c
    }
}
