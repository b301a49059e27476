// CUDA graphs: `GraphCapturing` on the backend's stream (docs/CUDA.md, "Graph capture").
//
// capture: cuStreamBeginCapture → the body issues its operations (kernels and cuBLAS GEMMs are recorded,
// nothing runs) → cuStreamEndCapture → cuGraphInstantiateWithFlags. replay: one cuGraphLaunch. While
// capturing, allocation, upload, download and synchronisation are programming errors (preconditions):
// a plan allocates its tensors and uploads its constants before it is captured. The graph reads and
// writes the very tensors the body used, so they must outlive the captured work.
// One exception keeps captures allocation-free without knowing shapes in advance: when the bf16
// activation scratch of the cuBLAS bf16 GEMM is too small for a captured linear, the capture is ended
// and thrown away, the scratch grows (outside the capture) and the body is captured once more.
import PI0Tensor

/// An instantiated CUDA graph (cuGraphExec), destroyed with the last reference.
public final class CUDAGraph: CapturedWork, @unchecked Sendable {
    let exec: CUhandle?
    let device: CUDADeviceAPI

    init(exec: CUhandle?, device: CUDADeviceAPI) { self.exec = exec; self.device = device }
    deinit { try? device.ctxSetCurrent(); device.graphExecDestroy(exec) }
}

extension CUDABackend: GraphCapturing {
    public func capture(_ body: () throws -> Void) throws -> CapturedWork {
        lock.lock(); defer { lock.unlock() }
        precondition(!capturing, "cuda: capture inside a capture")
        for attempt in 0..<2 {
            try device.ctxSetCurrent()
            scratchShortfall = 0
            try device.streamBeginCapture()
            capturing = true
            memory.setCapturing(true)
            var failure: Error?
            do { try body() } catch { failure = error }
            capturing = false
            let graph: CUhandle?
            do { graph = try device.streamEndCapture() } catch { memory.setCapturing(false); throw failure ?? error }
            memory.setCapturing(false)
            if let failure { device.graphDestroy(graph); throw failure }
            if scratchShortfall > 0 {
                device.graphDestroy(graph)
                guard attempt == 0 else { break }
                try growBF16Scratch(scratchShortfall)
                continue
            }
            defer { device.graphDestroy(graph) }
            let exec = try device.graphInstantiate(graph)
            return CUDAGraph(exec: exec, device: device)
        }
        throw BackendError.unavailable(backend: "cuda", reason: "graph capture needed more bf16 scratch twice (\(scratchShortfall) bytes)")
    }

    public func replay(_ work: CapturedWork) throws {
        guard let g = work as? CUDAGraph, g.device === device else {
            preconditionFailure("CUDABackend.replay got work captured by another backend")
        }
        lock.lock(); defer { lock.unlock() }
        requireEager("replay")
        try device.ctxSetCurrent()
        try device.graphLaunch(g.exec)
    }
}
