// The policy a robotics engineer calls: observation in, un-normalised actions in the robot's own
// dimensions out, with LeRobot 0.6.1's pre- and post-processing for π0 (docs/SPEC.md §2.1) and π0.5
// (docs/SPEC_PI05.md §10); the checkpoint's config.json says which:
//   images → float [0,1] CHW → resize-with-pad to the model resolution → [-1, 1]; cameras the
//   checkpoint knows but the observation lacks are appended after the present ones as −1 images, mask false;
//   π0:   prompt → "\n" appended → BOS + SentencePiece ids, padded/truncated to tokenizer_max_length (48);
//         state → normaliser (e.g. (x − mean)/(std + eps)) → zero-padded to max_state_dim;
//   π0.5: state → normaliser (usually quantiles) → 256 bins written into "Task: …, State: …;\nAction: "
//         → BOS + SentencePiece ids, padded/truncated to tokenizer_max_length (200); no state tensor;
//   actions → first action_dim dims → un-normaliser (e.g. x·std + mean).
import Foundation
import PI0
import PI0Tensor
import SentencePiece

public struct ActionChunk: Sendable {
    public let horizon: Int
    public let actionDim: Int
    /// Row-major [horizon, actionDim], un-normalised.
    public let values: [Float]
    public subscript(step: Int) -> ArraySlice<Float> { values[(step * actionDim)..<((step + 1) * actionDim)] }
}

/// π0 or π0.5 as a policy. Thread-safe: concurrent calls are serialised (each inference already uses every core).
public final class PI0Policy: @unchecked Sendable {
    public let checkpoint: Checkpoint
    public let model: PI0Model
    public let stats: NormalizationStats?
    public let tokenizer: PI0PromptTokenizer?
    /// Camera feature names in the order the model receives them when all are present.
    public let cameraNames: [String]
    public let stateDim: Int
    public let actionDim: Int
    private let lock = NSLock()
    /// Runs every sample (`withModel`): eagerly, or through captured graphs.
    public let engine: SamplingEngine
    /// Called with warnings (e.g. a truncated prompt); defaults to standard error.
    public var warn: @Sendable (String) -> Void = { FileHandle.standardError.write(("warning: " + $0 + "\n").data(using: .utf8)!) }

    /// - Parameters:
    ///   - checkpoint: a folder or a Hugging Face id found in the local hub cache (see `CheckpointLocator`).
    ///   - tokenizer: a SentencePiece `.model` file; default: `tokenizer.model` in the checkpoint folder or
    ///     PaliGemma's in the hub cache. Without one, observations must carry `tokens`.
    ///   - loadProgress: called while the weights are read and packed (see `Checkpoint.loadProgress`).
    ///   - graph: how samples run on the backend (`SamplingEngine`; full and loop need a capturing backend).
    public init(checkpoint: String, tokenizer: String? = nil, precision: Precision? = nil, backend: ComputeBackend? = nil,
                graph: GraphMode = .none, loadProgress: ((_ bytesDone: Int64, _ bytesTotal: Int64) -> Void)? = nil) throws {
        let dir = try CheckpointLocator.resolve(checkpoint)
        self.checkpoint = try Checkpoint(directory: dir)
        self.checkpoint.loadProgress = loadProgress
        model = try PI0Model(checkpoint: self.checkpoint, precision: precision, backend: try backend ?? Backends.cpu())
        engine = try SamplingEngine(model: model, mode: graph)
        let config = self.checkpoint.config
        stats = try NormalizationStats.loadIfPresent(checkpointDirectory: dir)
        if let path = tokenizer ?? CheckpointLocator.defaultTokenizer(near: dir) {
            self.tokenizer = PI0PromptTokenizer(processor: try SentencePieceProcessor(modelPath: path), maxLength: config.tokenizerMaxLength)
        } else {
            self.tokenizer = nil
        }
        var cams = config.cameraNames
        for i in 0..<config.emptyCameras where !cams.contains("observation.images.empty_camera_\(i)") {
            cams.append("observation.images.empty_camera_\(i)")   // LeRobot's validate_features adds these
        }
        cameraNames = cams
        stateDim = config.stateDim ?? config.maxStateDim
        actionDim = config.actionDim ?? config.maxActionDim
    }

    /// The full camera name for a user-given name (`top` or `observation.images.top`).
    public func resolveCamera(_ name: String) throws -> String {
        if cameraNames.contains(name) { return name }
        if let m = cameraNames.first(where: { $0 == "observation.images." + name }) { return m }
        throw PolicyError.unknownCamera(name: name, known: cameraNames)
    }

    /// Preprocesses one observation into the model's inputs (batch 1). Exposed for tests and tools.
    public func preprocess(_ obs: Observation) throws -> PI0Inputs {
        let config = checkpoint.config, side = checkpoint.dims.vision.imageSize
        var given: [String: CameraFrame] = [:]
        for (name, frame) in obs.images { given[try resolveCamera(name)] = frame }
        let present = cameraNames.filter { given[$0] != nil }
        guard !present.isEmpty else { throw PolicyError.noCameras(known: cameraNames) }
        var images: [[Float]] = [], masks: [[Bool]] = []
        for name in present {
            let f = given[name]!
            images.append(try f.modelInput(camera: name, side: side))
            masks.append([true])
        }
        for name in cameraNames where given[name] == nil {
            images.append([Float](repeating: -1, count: 3 * side * side)); masks.append([false])
        }
        // State: dimension check, normalisation, padding (never truncation, as LeRobot's pad_vector).
        guard obs.state.count == stateDim else {
            throw PolicyError.badState(reason: "expected \(stateDim) values for this checkpoint, got \(obs.state.count)")
        }
        if let i = obs.state.firstIndex(where: { !$0.isFinite }) { throw PolicyError.badState(reason: "non-finite value at index \(i)") }
        var state = try stats?.normalizeState(obs.state) ?? obs.state
        if config.model == .pi05 {
            // The state enters through the prompt; the model takes no state tensor.
            let (ids, mask) = try tokens(for: obs, text: try PI05Prompt.prompt(task: obs.prompt, normalizedState: state))
            return PI0Inputs(batch: 1, images: images, imageMasks: masks, langTokens: [ids], langMasks: [mask], state: [])
        }
        guard state.count <= config.maxStateDim else {
            throw PolicyError.badState(reason: "\(state.count) dims exceed max_state_dim \(config.maxStateDim)")
        }
        state += [Float](repeating: 0, count: config.maxStateDim - state.count)
        let (ids, mask) = try tokens(for: obs, text: obs.prompt)
        return PI0Inputs(batch: 1, images: images, imageMasks: masks, langTokens: [ids], langMasks: [mask], state: state)
    }

    /// The exact text π0.5 tokenises for this task and raw state (after the checkpoint's normaliser);
    /// π0's prompt is the task itself.
    public func promptText(task: String, state: [Float]) throws -> String {
        guard checkpoint.config.model == .pi05 else { return task }
        guard state.count == stateDim else {
            throw PolicyError.badState(reason: "expected \(stateDim) values for this checkpoint, got \(state.count)")
        }
        return try PI05Prompt.prompt(task: task, normalizedState: try stats?.normalizeState(state) ?? state)
    }

    /// Token ids and mask for `text`, or the observation's own `tokens` (for π0.5 they must already hold
    /// the state prompt).
    func tokens(for obs: Observation, text: String) throws -> ([Int], [Bool]) {
        let length = checkpoint.config.tokenizerMaxLength
        if let t = obs.tokens {
            guard t.ids.count == t.mask.count, !t.ids.isEmpty, t.ids.count <= length else {
                throw PolicyError.badTokens(reason: "need 1…\(length) ids with a mask of the same length, got \(t.ids.count) ids / \(t.mask.count) mask")
            }
            return (t.ids + [Int](repeating: 0, count: length - t.ids.count), t.mask + [Bool](repeating: false, count: length - t.mask.count))
        }
        guard let tokenizer else {
            throw PolicyError.noTokenizer(reason: "no tokenizer.model next to the checkpoint or in the caches; " + PolicyPreflight.tokenizerHelp
                                          + " (library callers may pass Observation.tokens instead)")
        }
        let r = tokenizer.encode(text, appendNewline: checkpoint.config.model == .pi0)
        if r.truncated { warn("prompt longer than \(length) tokens was truncated (as LeRobot does): \"\(text.prefix(60))…\"") }
        return (r.tokens, r.mask)
    }

    /// Predicts a chunk of actions [chunk, actionDim] in the robot's units. `width`: the number of action
    /// dimensions the caller wants (default `actionDim`; see `postprocess`).
    public func predictActionChunk(_ obs: Observation, noise: [Float]? = nil, seed: UInt64 = 0, steps: Int? = nil,
                                   timings: StageTimings? = nil, width: Int? = nil) throws -> ActionChunk {
        var inputs = try preprocess(obs)
        inputs.noise = noise
        inputs.rtc = try obs.previousChunk.map { RTCRequest(rows: [try rtcRow($0)]) }
        let raw = try withModel { try $0.sampleActions(inputs, steps: steps, seed: seed, timings: timings) }
        return try postprocess(raw.array, width: width)
    }

    /// Runs `body` with the model, one caller at a time.
    func withModel<T>(_ body: (SamplingEngine) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body(engine)
    }

    /// The previous chunk in the model's normalised action space (docs/RTC.md §1). A chunk narrower than
    /// the action dimension (a server layout that answers fewer dims) leaves the remaining dims to the
    /// model's zero padding, as LeRobot does for any previous chunk narrower than max_action_dim.
    func rtcRow(_ prev: PreviousChunk) throws -> RTCRequest.Row {
        let chunk = checkpoint.config.chunkSize
        guard prev.steps >= 1, prev.steps <= chunk else {
            throw PolicyError.badPreviousChunk(reason: "\(prev.steps) steps; expected 1…\(chunk) (the chunk size)")
        }
        let width = prev.actions.count / prev.steps
        guard width >= 1, width <= actionDim, prev.actions.count == prev.steps * width else {
            throw PolicyError.badPreviousChunk(reason: "\(prev.actions.count) values for \(prev.steps) steps; expected \(prev.steps) × (1…\(actionDim)) (the action dimension)")
        }
        if let i = prev.actions.firstIndex(where: { !$0.isFinite }) {
            throw PolicyError.badPreviousChunk(reason: "non-finite value at index \(i)")
        }
        var normalized = prev.actions
        if let stats {
            // Per-dimension statistics: normalise full rows, keep the given dims.
            var rows = [Float](repeating: 0, count: prev.steps * actionDim)
            for t in 0..<prev.steps {
                for i in 0..<width { rows[t * actionDim + i] = prev.actions[t * width + i] }
            }
            let all = try stats.normalizeActions(rows, actionDim: actionDim)
            for t in 0..<prev.steps {
                for i in 0..<width { normalized[t * width + i] = all[t * actionDim + i] }
            }
        }
        return RTCRequest.Row(previousChunk: normalized, previousSteps: prev.steps, previousWidth: width,
                              inferenceDelay: prev.inferenceDelay, executionHorizon: prev.executionHorizon)
    }

    /// Model output [chunk, max_action_dim] (normalised, padded) → [chunk, width] un-normalised: the one
    /// place the action dimensions are chosen. The checkpoint's first `actionDim` dimensions are
    /// un-normalised (LeRobot: slice, then unnormalizer); a caller asking for another `width` (a server
    /// layout) gets the first `width` of them, and zeros for dimensions beyond the checkpoint's.
    public func postprocess(_ padded: [Float], width: Int? = nil) throws -> ActionChunk {
        let c = checkpoint.config, width = width ?? actionDim
        var sliced: [Float] = []
        sliced.reserveCapacity(c.chunkSize * actionDim)
        for t in 0..<c.chunkSize { sliced += padded[(t * c.maxActionDim)..<(t * c.maxActionDim + actionDim)] }
        let values = try stats?.unnormalizeActions(sliced, actionDim: actionDim) ?? sliced
        try FiniteGuard.check(values, stage: "the un-normalisation of the actions (\(stats?.post.statsFile ?? "no statistics"))")
        guard width != actionDim else { return ActionChunk(horizon: c.chunkSize, actionDim: actionDim, values: values) }
        var out = [Float](repeating: 0, count: c.chunkSize * width)
        for t in 0..<c.chunkSize {
            for d in 0..<min(width, actionDim) { out[t * width + d] = values[t * actionDim + d] }
        }
        return ActionChunk(horizon: c.chunkSize, actionDim: width, values: out)
    }
}

extension NormalizationStats {
    /// The checkpoint's normalisation statistics, or nil when it ships no processor files.
    public static func loadIfPresent(checkpointDirectory dir: String) throws -> NormalizationStats? {
        let pre = (dir as NSString).appendingPathComponent("policy_preprocessor.json")
        guard FileManager.default.fileExists(atPath: pre) else { return nil }
        return try load(checkpointDirectory: dir)
    }
}
