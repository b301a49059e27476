// π0 behind the openpi server: decoded observation → layout mapping → PI0Policy → actions in the
// layout's action width. Inference runs on a dedicated thread, never on the event loop or the
// cooperative pool.
import Dispatch
import Foundation
import MessagePack
import PI0Runtime

public final class PI0PolicyService: PolicyService, @unchecked Sendable {
    public let policy: PI0Policy
    public let mapper: ObservationMapper
    public let actionDim: Int
    private let queue = DispatchQueue(label: "pi0.inference")
    private var seed: UInt64 = 0
    /// When set, every request uses this noise seed (reproducible answers); otherwise each request a new one.
    public let fixedSeed: UInt64?

    /// Batching across clients (nil: one request at a time, as openpi's server).
    let batcher: InferenceBatcher<BatchJob, ActionChunk>?

    struct BatchJob: Sendable { let observation: PI0Policy.PreparedObservation; let seed: UInt64 }

    /// - Parameters:
    ///   - maxBatch: with more than 1, requests that arrive while the model is busy run together as one
    ///     batch of up to this many rows; each client's answer equals what it would get alone with the
    ///     same seed. The server must let that many requests in at once (`maxConcurrentInferences`).
    ///   - batchWait: how long an idle model waits for more requests before it starts (seconds).
    ///   - strictObservations: see `ObservationMapper.strict` (nil: the layout's default).
    public init(policy: PI0Policy, layout: ObservationLayout, defaultPrompt: String? = nil, fixedSeed: UInt64? = nil,
                strictObservations: Bool? = nil, maxBatch: Int = 1, batchWait: TimeInterval = 0) {
        self.policy = policy
        self.fixedSeed = fixedSeed
        mapper = ObservationMapper(layout: layout, checkpointCameras: policy.cameraNames, stateDim: policy.stateDim,
                                   defaultPrompt: defaultPrompt, strict: strictObservations)
        actionDim = layout.actionDim ?? policy.actionDim
        let width = actionDim
        batcher = maxBatch > 1 ? InferenceBatcher(maxBatch: maxBatch, maxWait: batchWait) { [policy] jobs in
            Self.runBatch(policy, jobs, width: width)
        } : nil
    }

    /// One batch; if it fails as a whole (one row's non-finite result, say), each row runs alone so
    /// that every client gets its own answer or its own error.
    static func runBatch(_ policy: PI0Policy, _ jobs: [BatchJob], width: Int) -> [Result<ActionChunk, Error>] {
        do {
            return try policy.predictActionChunks(jobs.map(\.observation), seeds: jobs.map(\.seed), width: width).map { .success($0) }
        } catch {
            if jobs.count == 1 { return [.failure(error)] }
            return jobs.map { job in Result { try policy.predictActionChunks([job.observation], seeds: [job.seed], width: width)[0] } }
        }
    }

    public var metadata: MessagePackValue {
        .map([(.string("policy"), .string(policy.checkpoint.config.model.rawValue)),
              (.string("layout"), .string(mapper.layout.rawValue)),
              (.string("action_horizon"), .int(Int64(policy.checkpoint.config.chunkSize))),
              (.string("action_dim"), .int(Int64(actionDim))),
              (.string("cameras"), .array(policy.cameraNames.map { .string($0) }))])
    }

    public func infer(_ observation: NumpyValue) async throws -> NDArray {
        try await inferOutput(observation).actions
    }

    public func inferOutput(_ observation: NumpyValue) async throws -> PolicyOutput {
        var mapped = try mapper.map(observation)
        mapped.previousChunk = try mapped.previousChunk.map(policyWidth)
        let obs = mapped
        if let batcher {
            let prepared = try policy.prepare(obs)
            let seed = fixedSeed ?? nextSeed()
            let started = Date()
            let chunk = try await batcher.submit(BatchJob(observation: prepared, seed: seed))
            return PolicyOutput(actions: actionsArray(chunk), policyInferMs: Date().timeIntervalSince(started) * 1000)
        }
        return try await withCheckedThrowingContinuation { cont in
            queue.async { [self] in
                do {
                    let timings = PolicyTimings()
                    let chunk = try policy.predictActionChunk(obs, seed: fixedSeed ?? nextSeed(), timings: timings, width: actionDim)
                    cont.resume(returning: PolicyOutput(actions: actionsArray(chunk), policyInferMs: timings.total * 1000))
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
    }

    /// A previous chunk as the client holds it ([steps, the layout's action width]) in the policy's width:
    /// extra layout dims (zero padding of this server's answers) are dropped; a layout narrower than the
    /// checkpoint leaves the remaining dims to the model's padding.
    func policyWidth(_ prev: PreviousChunk) throws -> PreviousChunk {
        guard prev.actions.count == prev.steps * actionDim else {
            throw ObservationError.badValue(key: "rtc_prev_chunk", reason: "expected [steps, \(actionDim)] (the action width this server answers with), got \(prev.actions.count) values in \(prev.steps) rows")
        }
        let width = policy.actionDim
        guard width < actionDim else { return prev }
        var out = prev
        out.actions = (0..<prev.steps).flatMap { t in prev.actions[(t * actionDim)..<(t * actionDim + width)] }
        return out
    }

    /// The chunk as the server sends it ([horizon, the layout's action width]; `postprocess` chose the dims).
    func actionsArray(_ chunk: ActionChunk) -> NDArray {
        NDArray(floats: chunk.values, shape: [chunk.horizon, chunk.actionDim])
    }

    private let seedLock = NSLock()
    /// A new noise seed per request (1, 2, 3, … in arrival order).
    func nextSeed() -> UInt64 {
        seedLock.lock(); defer { seedLock.unlock() }
        seed &+= 1
        return seed
    }
}
