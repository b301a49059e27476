// π0 behind the openpi server: decoded observation → layout mapping → PI0Policy → actions in the
// layout's action width. Inference runs on a dedicated thread, never on the event loop or the
// cooperative pool.
import Dispatch
import Foundation
import MessagePack
import PI0
import PI0Runtime

public final class PI0PolicyService: PolicyService, @unchecked Sendable {
    public let policy: PI0Policy
    public let mapper: ObservationMapper
    public let actionDim: Int
    private let queue = DispatchQueue(label: "pi0.inference")
    private var seed: UInt64 = 0
    /// When set, every request uses this noise seed (reproducible answers); otherwise each request a new one.
    public let fixedSeed: UInt64?

    public init(policy: PI0Policy, layout: ObservationLayout, defaultPrompt: String? = nil, fixedSeed: UInt64? = nil) {
        self.policy = policy
        self.fixedSeed = fixedSeed
        mapper = ObservationMapper(layout: layout, checkpointCameras: policy.cameraNames, stateDim: policy.stateDim,
                                   defaultPrompt: defaultPrompt)
        actionDim = layout.actionDim ?? policy.actionDim
    }

    public var metadata: MessagePackValue {
        .map([(.string("policy"), .string("pi0")),
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
        return try await withCheckedThrowingContinuation { cont in
            queue.async { [self] in
                do {
                    seed &+= 1
                    let timings = StageTimings()
                    let chunk = try policy.predictActionChunk(obs, seed: fixedSeed ?? seed, timings: timings)
                    var out = [Float](repeating: 0, count: chunk.horizon * actionDim)
                    for t in 0..<chunk.horizon {
                        for d in 0..<min(actionDim, chunk.actionDim) { out[t * actionDim + d] = chunk.values[t * chunk.actionDim + d] }
                    }
                    cont.resume(returning: PolicyOutput(actions: NDArray(floats: out, shape: [chunk.horizon, actionDim]),
                                                        policyInferMs: timings.total * 1000))
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
}
