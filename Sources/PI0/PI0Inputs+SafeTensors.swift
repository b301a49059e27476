// Reading `sample_actions` arguments from a safetensors file named as in the fixtures'
// `inputs.safetensors`: image_0…, img_mask_0…, lang_tokens, lang_masks, state (π0 only), noise (optional), and
// for real-time chunking rtc_prev_chunk [B, T_prev, A_prev] float32 (normalised action space),
// rtc_inference_delay and rtc_execution_horizon (int64, one value each; the horizon is optional).
import SafeTensors

extension PI0Inputs {
    public static func load(from file: SafeTensorsFile, dims: ModelDims, config: PI0Config) throws -> PI0Inputs {
        func need(_ name: String) throws -> SafeTensorInfo {
            guard file.contains(name) else {
                throw PI0InputError.invalid(input: name, reason: "missing from \(file.path)")
            }
            return try file.info(name)
        }
        let tokensInfo = try need("lang_tokens")
        guard tokensInfo.shape.count == 2 else {
            throw PI0InputError.invalid(input: "lang_tokens", reason: "expected [B, L], got \(tokensInfo.shape)")
        }
        let batch = tokensInfo.shape[0], l = tokensInfo.shape[1]
        let masksInfo = try need("lang_masks")
        guard masksInfo.shape == [batch, l] else {
            throw PI0InputError.invalid(input: "lang_masks", reason: "expected [\(batch), \(l)], got \(masksInfo.shape)")
        }
        let tokens = try file.int64s("lang_tokens").map(Int.init)
        let masks = try file.bools("lang_masks")
        var images: [[Float]] = [], imageMasks: [[Bool]] = []
        let side = dims.vision.imageSize
        var c = 0
        while file.contains("image_\(c)") {
            let info = try file.info("image_\(c)")
            guard info.shape == [batch, 3, side, side] else {
                throw PI0InputError.invalid(input: "image_\(c)", reason: "expected [\(batch), 3, \(side), \(side)], got \(info.shape)")
            }
            images.append(try file.floats("image_\(c)"))
            let m = try need("img_mask_\(c)")
            guard m.shape == [batch] else {
                throw PI0InputError.invalid(input: "img_mask_\(c)", reason: "expected [\(batch)], got \(m.shape)")
            }
            imageMasks.append(try file.bools("img_mask_\(c)"))
            c += 1
        }
        if c == 0 { _ = try need("image_0") }
        var state: [Float] = []
        if config.model == .pi05 {
            guard !file.contains("state") else {
                throw PI0InputError.invalid(input: "state", reason: "π0.5 takes no state tensor: the state is written into the prompt (see `pi0 prompt`)")
            }
        } else {
            let stateInfo = try need("state")
            guard stateInfo.shape == [batch, config.maxStateDim] else {
                throw PI0InputError.invalid(input: "state", reason: "expected [\(batch), \(config.maxStateDim)], got \(stateInfo.shape)")
            }
            state = try file.floats("state")
        }
        var noise: [Float]? = nil
        if file.contains("noise") {
            let n = try file.info("noise")
            guard n.shape == [batch, config.chunkSize, config.maxActionDim] else {
                throw PI0InputError.invalid(input: "noise", reason: "expected [\(batch), \(config.chunkSize), \(config.maxActionDim)], got \(n.shape)")
            }
            noise = try file.floats("noise")
        }
        return PI0Inputs(batch: batch, images: images, imageMasks: imageMasks,
                         langTokens: (0..<batch).map { Array(tokens[($0 * l)..<(($0 + 1) * l)]) },
                         langMasks: (0..<batch).map { Array(masks[($0 * l)..<(($0 + 1) * l)]) },
                         state: state, noise: noise, rtc: try rtcRequest(from: file))
    }

    /// The RTC fields, all or none (a delay without a previous chunk is an error, not ignored).
    static func rtcRequest(from file: SafeTensorsFile) throws -> RTCRequest? {
        let names = ["rtc_prev_chunk", "rtc_inference_delay", "rtc_execution_horizon"]
        guard file.contains("rtc_prev_chunk") else {
            if let stray = names.first(where: file.contains) {
                throw PI0InputError.invalid(input: stray, reason: "given without rtc_prev_chunk in \(file.path)")
            }
            return nil
        }
        let prev = try file.info("rtc_prev_chunk")
        guard prev.shape.count == 3 else {
            throw PI0InputError.invalid(input: "rtc_prev_chunk", reason: "expected [B, T_prev, A_prev], got \(prev.shape)")
        }
        func scalar(_ name: String) throws -> Int? {
            guard file.contains(name) else { return nil }
            let v = try file.int64s(name)
            guard v.count == 1 else { throw PI0InputError.invalid(input: name, reason: "expected one int64 value, got \(v.count)") }
            guard abs(v[0]) < 1 << 31 else { throw PI0InputError.invalid(input: name, reason: "value \(v[0]) out of range") }
            return Int(v[0])
        }
        guard let delay = try scalar("rtc_inference_delay") else {
            throw PI0InputError.invalid(input: "rtc_inference_delay", reason: "missing from \(file.path) (needed with rtc_prev_chunk)")
        }
        return RTCRequest(previousChunk: try file.floats("rtc_prev_chunk"), batch: prev.shape[0], previousSteps: prev.shape[1],
                          previousWidth: prev.shape[2], inferenceDelay: delay, executionHorizon: try scalar("rtc_execution_horizon"))
    }
}
