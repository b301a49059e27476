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
import Foundation
import PI0
import PI0Tensor

public enum GraphMode: String, Sendable, CaseIterable {
    case none, full, loop
}

public final class SamplingEngine: @unchecked Sendable {
    public let model: PI0Model
    public let mode: GraphMode
    private let capturing: GraphCapturing?
    private var plans: [SamplingShape: SamplingPlan] = [:]
    private var graphs: [SamplingShape: CapturedWork] = [:]
    /// Shapes that ran eagerly once: the first call of a shape warms the backend (library workspaces,
    /// lazily loaded kernels) before anything is captured.
    private var warmed: Set<SamplingShape> = []
    /// Shapes by last use, oldest first: at most `maxPlans` plans (and their graphs) are kept, so a
    /// server whose clients send many prompt lengths does not grow without bound.
    private var recent: [SamplingShape] = []
    public let maxPlans: Int
    private let lock = NSLock()

    /// Throws when `mode` needs capture and the model's backend cannot record work.
    public init(model: PI0Model, mode: GraphMode = .none, maxPlans: Int = 8) throws {
        self.model = model; self.mode = mode; self.maxPlans = max(maxPlans, 1)
        capturing = model.backend as? GraphCapturing
        if mode != .none && capturing == nil {
            throw BackendError.unavailable(backend: model.backend.name,
                                           reason: "graph mode '\(mode.rawValue)' needs a backend that captures work (cuda); use --graph none")
        }
    }

    /// Shapes with a captured graph (for reports and tests).
    public var capturedShapes: Int { lock.withLock { graphs.count } }
    /// Shapes with a plan.
    public var plannedShapes: Int { lock.withLock { plans.count } }

    /// `PI0Model.sampleActions` through this engine's mode. With `trace` the call runs eagerly
    /// (observers download intermediates); with `timings` a graph mode records one "sample" stage (its
    /// stages are not separable) and mode none the usual per-stage times.
    public func sampleActions(_ inputs: PI0Inputs, steps: Int? = nil, seed: UInt64 = 0, rtcConfig: RTCConfig? = nil,
                              trace: IntermediateRecorder? = nil, timings: StageTimings? = nil) throws -> Tensor {
        guard mode != .none, let capturing, trace == nil else {
            return try model.sampleActions(inputs, steps: steps, seed: seed, rtcConfig: rtcConfig, trace: trace, timings: timings)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { timings?.record("sample", Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        lock.lock(); defer { lock.unlock() }
        let (shape, guide) = try model.prepare(inputs, steps: steps, rtcConfig: rtcConfig, dropPadding: mode == .full)
        let plan = plans[shape] ?? SamplingPlan(model: model, shape: shape)
        plans[shape] = plan
        recent.removeAll { $0 == shape }
        recent.append(shape)
        while recent.count > maxPlans {
            let old = recent.removeFirst()
            plans[old] = nil; graphs[old] = nil; warmed.remove(old)
        }
        let n = inputs.batch * model.config.chunkSize * model.config.maxActionDim
        try plan.upload(inputs, noise: inputs.noise ?? GaussianNoise.sample(count: n, seed: seed), guide: guide)
        if mode == .loop { plan.enqueuePrefix(observer: nil, lap: nil) }
        let body: () -> Void = mode == .full ? { plan.enqueue() } : { plan.enqueueLoop(observer: nil, lap: nil) }
        if let graph = graphs[shape] {
            try capturing.replay(graph)
        } else if warmed.contains(shape) {
            let graph = try capturing.capture(body)
            graphs[shape] = graph
            try capturing.replay(graph)
        } else {
            body()
            warmed.insert(shape)
        }
        return try plan.finish()
    }
}
