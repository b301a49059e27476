// Overlapping transfers with computation (docs/ARCHITECTURE.md, "Life of one observation"; docs/CUDA.md,
// "Streams"): an optional capability beside `GraphCapturing`. A backend with a second queue for copies
// (CUDA: a second stream) uploads the next observation from page-locked host memory while the current
// one computes; events order the two queues. The model never sees this: `PI0Runtime`'s
// `SamplingEngine.submit` / `collect` drive it, and a backend without it runs the same calls in order.
//
// Queue semantics: work issued on one queue runs in issue order; `record(event, on:)` marks the point
// reached so far on that queue; `wait(queue, for: event)` makes later work on `queue` wait for that
// point; `hostWait` blocks the caller until it is reached. Every `ComputeBackend` operation, `upload`
// and `download` run on the compute queue.

/// Where host→backend copies go: a backend's own (synchronous) `upload`, or a staged transfer queue.
/// A sampling plan uploads an observation through one (`SamplingPlan.upload(…, via:)`).
public protocol TensorUploading: AnyObject {
    /// Host → backend: `source.count` floats into `destination`.
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef)
}

extension TensorUploading {
    /// Convenience (not a requirement): uploads `values` at `destination`.
    public func upload(_ values: [Float], to destination: TensorRef) {
        values.withUnsafeBufferPointer { upload($0, to: destination) }
    }
}

/// Page-locked host memory (CUDA: `cuMemHostAlloc`) that asynchronous copies read or write; freed with
/// the last reference. The host must not touch a range while a copy of it is pending.
public protocol PinnedHostBuffer: AnyObject, Sendable {
    var count: Int { get }
    var floats: UnsafeMutableBufferPointer<Float> { get }
}

/// A point in one queue's work (CUDA: an event), to be waited for by another queue or by the host.
public protocol QueueEvent: AnyObject, Sendable {}

/// The two queues of an `AsyncTransfers` backend.
public enum BackendQueue: String, Sendable {
    /// Every operation, `upload`, `download`, graph replays.
    case compute
    /// `uploadAsync` only.
    case transfer
}

/// A backend with a transfer queue beside its compute queue (CUDA: a second stream, asynchronous copies
/// from pinned memory, events). Nothing here allocates device memory or may run during a capture.
public protocol AsyncTransfers: ComputeBackend {
    /// Page-locked host memory for `count` floats (zero-filled).
    func allocatePinned(count: Int) -> PinnedHostBuffer
    /// A new event (not yet recorded: waiting for it returns at once).
    func makeEvent() -> QueueEvent
    /// source.floats[offset ..< offset + count] → destination, on the transfer queue; returns at once.
    func uploadAsync(_ source: PinnedHostBuffer, offset: Int, count: Int, to destination: TensorRef)
    /// `count` floats from `source` → destination.floats[offset...], on the compute queue after every
    /// operation issued so far; returns at once (wait for an event recorded after it to read the values).
    func downloadAsync(_ source: TensorRef, count: Int, into destination: PinnedHostBuffer, offset: Int)
    /// Marks the work issued so far on `queue`.
    func record(_ event: QueueEvent, on queue: BackendQueue)
    /// Later work on `queue` waits until `event` is reached.
    func wait(_ queue: BackendQueue, for event: QueueEvent)
    /// Blocks the caller until `event` is reached.
    func hostWait(_ event: QueueEvent)
}
