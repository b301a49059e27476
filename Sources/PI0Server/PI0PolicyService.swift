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

    /// `strictObservations`: see `ObservationMapper.strict` (nil: the layout's default).
    public init(policy: PI0Policy, layout: ObservationLayout, defaultPrompt: String? = nil, fixedSeed: UInt64? = nil,
                strictObservations: Bool? = nil) {
        self.policy = policy
        self.fixedSeed = fixedSeed
        mapper = ObservationMapper(layout: layout, checkpointCameras: policy.cameraNames, stateDim: policy.stateDim,
                                   defaultPrompt: defaultPrompt, strict: strictObservations)
        actionDim = layout.actionDim ?? policy.actionDim
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
        let obs = try mapper.map(observation)
        return try await withCheckedThrowingContinuation { cont in
            queue.async { [self] in
                do {
                    seed &+= 1
                    let timings = StageTimings()
                    let chunk = try policy.predictActionChunk(obs, seed: fixedSeed ?? seed, timings: timings, width: actionDim)
                    cont.resume(returning: PolicyOutput(actions: NDArray(floats: chunk.values, shape: [chunk.horizon, chunk.actionDim]),
                                                        policyInferMs: timings.total * 1000))
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
    }
}
