// Runs `PI0Model` samples the way the fastest engines do on an accelerator: a plan per observation
// shape (all buffers allocated once), and on a backend that records work (`GraphCapturing`, e.g. CUDA
// graphs) the plan's operations captured once and replayed for every later observation of that shape
// (docs/ARCHITECTURE.md, "Life of one observation"; docs/CUDA.md). Modes:
//   none  every call issues its operations (any backend; the cpu backend's only mode)
//   full  the whole sample — vision, prefix, every denoise step — is one captured graph per shape
//   loop  the prefix runs eagerly and only the denoise loop is captured. Its plans keep every camera and
//         prompt position (padding is masked, not dropped), so one graph serves every prompt length
//         and camera mask of a given camera count and token budget.
// A call's host traffic is the same in every mode: the observation's uploads, one download.
// `submit` / `collect` (SamplingEngine+Pipeline.swift) pipeline observations: on a backend with a
// transfer queue (`AsyncTransfers`) the next observation uploads while the current one computes.
import Foundation
import PI0
import PI0Tensor

public enum GraphMode: String, Sendable, CaseIterable {
    case none, full, loop
}

public final class SamplingEngine: @unchecked Sendable {
    public let model: PI0Model
    public let mode: GraphMode
    let capturing: GraphCapturing?
    /// The backend's transfer queue, when it has one: uploads are staged in pinned memory and issued on
    /// it, the download is asynchronous (SamplingEngine+Pipeline.swift).
    let transfers: AsyncTransfers?
    /// Per shape: its plans (one, or two while observations are pipelined) and their graphs.
    var shapes: [SamplingShape: ShapeSlots] = [:]
    /// Shapes by last use, oldest first: at most `maxPlans` shapes keep plans (and graphs), so a server
    /// whose clients send many prompt lengths does not grow without bound. A shape with an observation
    /// in flight is never dropped.
    var recent: [SamplingShape] = []
    public let maxPlans: Int
    /// Submitted and not yet collected, oldest first (at most `pipelineDepth`).
    var inFlight: [Pending] = []
    var issued = 0, collected = 0
    let lock = NSLock()

    /// Throws when `mode` needs capture and the model's backend cannot record work.
    public init(model: PI0Model, mode: GraphMode = .none, maxPlans: Int = 8) throws {
        self.model = model; self.mode = mode; self.maxPlans = max(maxPlans, 1)
        capturing = model.backend as? GraphCapturing
        transfers = model.backend as? AsyncTransfers
        if mode != .none && capturing == nil {
            throw BackendError.unavailable(backend: model.backend.name,
                                           reason: "graph mode '\(mode.rawValue)' needs a backend that captures work (cuda); use --graph none")
        }
    }

    /// Observations still in flight when the engine goes: wait for them, so that no copy into or out of
    /// the pinned buffers freed with it is pending.
    deinit {
        guard let transfers else { return }
        for p in inFlight { if let done = p.slot.done { transfers.hostWait(done) } }
    }

    /// Shapes with a captured graph (for reports and tests).
    public var capturedShapes: Int { lock.withLock { shapes.values.filter { $0.slots.contains { $0.graph != nil } }.count } }
    /// Shapes with a plan.
    public var plannedShapes: Int { lock.withLock { shapes.count } }
    /// Plans held over every shape (two for a shape whose observations were pipelined).
    public var plans: Int { lock.withLock { shapes.values.reduce(0) { $0 + $1.slots.count } } }

    /// `PI0Model.sampleActions` through this engine's mode. With `trace` the call runs eagerly
    /// (observers download intermediates); with `timings` a graph mode records one "sample" stage (its
    /// stages are not separable) and mode none the usual per-stage times. In a graph mode this is
    /// `collect(submit(…))`, and throws `PipelineError.busy` while submitted observations are in flight.
    public func sampleActions(_ inputs: PI0Inputs, steps: Int? = nil, seed: UInt64 = 0, rtcConfig: RTCConfig? = nil,
                              trace: IntermediateRecorder? = nil, timings: StageTimings? = nil) throws -> Tensor {
        guard mode != .none, capturing != nil, trace == nil else {
            return try model.sampleActions(inputs, steps: steps, seed: seed, rtcConfig: rtcConfig, trace: trace, timings: timings)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { timings?.record("sample", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        lock.lock(); defer { lock.unlock() }
        guard inFlight.isEmpty else { throw PipelineError.busy(inFlight: inFlight.count) }
        return try collectLocked(try submitLocked(inputs, steps: steps, seed: seed, rtcConfig: rtcConfig))
    }

    // MARK: Plans

    /// One plan of a shape with its captured graph and, on an `AsyncTransfers` backend, its pinned
    /// staging for uploads and results and its two events.
    final class Slot {
        let plan: SamplingPlan
        var graph: CapturedWork?
        let staging: PinnedHostBuffer?, results: PinnedHostBuffer?
        /// Recorded on the transfer queue after this plan's uploads.
        let uploaded: QueueEvent?
        /// Recorded on the compute queue after the last work that reads or writes this plan's inputs
        /// and outputs (the replay and the download; at creation: the buffers' zero-fill and constants).
        let done: QueueEvent?
        /// An observation in flight uses this plan.
        var busy = false

        init(plan: SamplingPlan, transfers: AsyncTransfers?) {
            self.plan = plan
            guard let t = transfers else { staging = nil; results = nil; uploaded = nil; done = nil; return }
            staging = t.allocatePinned(count: plan.uploadCapacity)
            results = t.allocatePinned(count: plan.outputCount)
            uploaded = t.makeEvent(); done = t.makeEvent()
            t.record(done!, on: .compute)
        }
    }

    final class ShapeSlots {
        var slots: [Slot] = []
        /// The shape ran eagerly once: the first call of a shape warms the backend (library
        /// workspaces, lazily loaded kernels) before anything is captured.
        var warmed = false
        var busy: Bool { slots.contains { $0.busy } }
    }

    /// The shape's slots, marked most recently used; drops the least recently used idle shapes beyond `maxPlans`.
    func touch(_ shape: SamplingShape) -> ShapeSlots {
        let s = shapes[shape] ?? ShapeSlots()
        shapes[shape] = s
        recent.removeAll { $0 == shape }
        recent.append(shape)
        var i = 0
        while recent.count > maxPlans && i < recent.count - 1 {
            if shapes[recent[i]]?.busy == true { i += 1; continue }
            shapes[recent.remove(at: i)] = nil
        }
        return s
    }

    /// Issues the sample of an uploaded plan on the compute queue: eagerly (mode none, or a shape's first
    /// call), captured then replayed (a plan's first call after warm-up), or replayed.
    func enqueue(_ slot: Slot, of state: ShapeSlots) throws {
        let plan = slot.plan
        guard mode != .none, let capturing else { plan.enqueue(); return }
        if mode == .loop { plan.enqueuePrefix(observer: nil, lap: nil) }
        let body: () -> Void = mode == .full ? { plan.enqueue() } : { plan.enqueueLoop(observer: nil, lap: nil) }
        if let graph = slot.graph {
            try capturing.replay(graph)
        } else if state.warmed {
            let graph = try capturing.capture(body)
            slot.graph = graph
            try capturing.replay(graph)
        } else {
            body()
            state.warmed = true
        }
    }
}
