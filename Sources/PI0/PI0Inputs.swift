// The arguments of `PI0Pytorch.sample_actions` (docs/SPEC.md §2), already preprocessed:
// images in [-1, 1], tokens, normalised padded state and optional noise.

public struct PI0Inputs: Sendable {
    public var batch: Int
    /// Per camera, [B, 3, S, S] float32 in [-1, 1] (S = the model's image size), row-major.
    public var images: [[Float]]
    /// Per camera, [B] validity (false = a missing camera; its tokens are padding).
    public var imageMasks: [[Bool]]
    /// [B][L] token ids, right-padded.
    public var langTokens: [[Int]]
    /// [B][L], true for real tokens.
    public var langMasks: [[Bool]]
    /// [B, max_state_dim], normalised and zero-padded. Empty for π0.5, whose state is part of the prompt
    /// (docs/SPEC_PI05.md §10).
    public var state: [Float]
    /// [B, chunk, max_action_dim] standard normal; drawn from `seed` when nil.
    public var noise: [Float]?
    /// Real-time chunking: the previous chunk's unexecuted actions, delay and horizon (nil: plain sampling).
    public var rtc: RTCRequest?

    public init(batch: Int, images: [[Float]], imageMasks: [[Bool]], langTokens: [[Int]], langMasks: [[Bool]],
                state: [Float], noise: [Float]? = nil, rtc: RTCRequest? = nil) {
        self.batch = batch; self.images = images; self.imageMasks = imageMasks
        self.langTokens = langTokens; self.langMasks = langMasks; self.state = state; self.noise = noise
        self.rtc = rtc
    }
}

public enum PI0InputError: Error, CustomStringConvertible, Equatable {
    case invalid(input: String, reason: String)
    case nonFinite(input: String, index: Int)

    public var description: String {
        switch self {
        case let .invalid(i, r): return "input '\(i)': \(r)"
        case let .nonFinite(i, idx): return "input '\(i)': non-finite value (NaN or Inf) at flat index \(idx)"
        }
    }
}

extension PI0Inputs {
    /// Checks every shape and value range against the model; the messages name the input.
    func validate(dims: ModelDims, config: PI0Config) throws {
        func bad(_ name: String, _ reason: String) -> PI0InputError { .invalid(input: name, reason: reason) }
        guard batch >= 1 else { throw bad("batch", "must be at least 1, got \(batch)") }
        guard !images.isEmpty else { throw bad("image_0", "at least one camera is required") }
        guard images.count == imageMasks.count else {
            throw bad("img_mask_\(min(images.count, imageMasks.count))", "\(images.count) images but \(imageMasks.count) masks")
        }
        let side = dims.vision.imageSize
        for (c, img) in images.enumerated() {
            guard img.count == batch * 3 * side * side else {
                throw bad("image_\(c)", "expected [\(batch), 3, \(side), \(side)] = \(batch * 3 * side * side) values, got \(img.count)")
            }
            if let i = img.firstIndex(where: { !$0.isFinite }) { throw PI0InputError.nonFinite(input: "image_\(c)", index: i) }
            guard imageMasks[c].count == batch else { throw bad("img_mask_\(c)", "expected [\(batch)], got \(imageMasks[c].count) values") }
        }
        guard langTokens.count == batch, langMasks.count == batch else {
            throw bad("lang_tokens", "expected \(batch) rows, got \(langTokens.count) tokens / \(langMasks.count) mask rows")
        }
        let l = langTokens[0].count
        guard l >= 1 else { throw bad("lang_tokens", "no language tokens") }
        for b in 0..<batch {
            guard langTokens[b].count == l, langMasks[b].count == l else {
                throw bad("lang_masks", "row \(b) has \(langTokens[b].count) tokens and \(langMasks[b].count) mask entries, expected \(l)")
            }
            if let bad = langTokens[b].firstIndex(where: { $0 < 0 || $0 >= dims.vlm.vocabSize }) {
                throw PI0InputError.invalid(input: "lang_tokens", reason: "row \(b) position \(bad): id \(langTokens[b][bad]) outside the vocabulary [0, \(dims.vlm.vocabSize))")
            }
        }
        if config.model == .pi05 {
            guard state.isEmpty else {
                throw bad("state", "π0.5 takes no state tensor: the state is written into the prompt (see `pi0 prompt`)")
            }
        } else if state.count != batch * config.maxStateDim {
            throw bad("state", "expected [\(batch), \(config.maxStateDim)] = \(batch * config.maxStateDim) values, got \(state.count)")
        }
        if let i = state.firstIndex(where: { !$0.isFinite }) { throw PI0InputError.nonFinite(input: "state", index: i) }
        if let noise {
            let n = batch * config.chunkSize * config.maxActionDim
            guard noise.count == n else {
                throw bad("noise", "expected [\(batch), \(config.chunkSize), \(config.maxActionDim)] = \(n) values, got \(noise.count)")
            }
            if let i = noise.firstIndex(where: { !$0.isFinite }) { throw PI0InputError.nonFinite(input: "noise", index: i) }
        }
    }
}
