// π0 (PI0Pytorch in LeRobot 0.6.1): embedPrefix, embedSuffix, denoiseStep, sampleActions.
// Letters: B batch, C cameras, N tokens per image, L language tokens, P = C·N + L prefix tokens,
// H chunk (action horizon), S = H + 1 suffix tokens, A = max_action_dim, W VLM width, E expert width.
import Foundation
import PI0Tensor

public final class PI0Model: @unchecked Sendable {
    public let config: PI0Config
    public let dims: ModelDims
    public let precision: Precision
    public let backend: ComputeBackend
    let vision: SigLIP
    let vlm: Gemma
    let expert: Gemma
    let embedTokens: WeightTensor          // [vocab, W]
    let stateProj: Linear, actionInProj: Linear, actionTimeMlpIn: Linear, actionTimeMlpOut: Linear, actionOutProj: Linear

    var bf16: Bool { precision == .bfloat16 }

    /// Builds the model from a checkpoint. `precision` defaults to the config's `dtype`.
    public init(checkpoint ckpt: Checkpoint, precision: Precision? = nil, backend: ComputeBackend) throws {
        config = ckpt.config; dims = ckpt.dims; self.backend = backend
        self.precision = precision ?? ckpt.config.precision
        let bf16 = self.precision == .bfloat16
        let root = ckpt.scoped("")
        vision = try SigLIP(vision: ckpt.scoped(PI0Keys.vision), projector: ckpt.scoped("paligemma_with_expert.paligemma.model.multi_modal_projector"),
                            dims: dims.vision, projectionDim: dims.vlm.width, backend: backend)
        vlm = try Gemma(ckpt.scoped(PI0Keys.languageModel), dims: dims.vlm, backend: backend, bf16: bf16)
        expert = try Gemma(ckpt.scoped(PI0Keys.expert), dims: dims.expert, backend: backend, bf16: bf16)
        // LeRobot's rule: a real embed_tokens entry wins; otherwise the tied lm_head (docs/SPEC.md §8).
        let embKey = ckpt.contains(PI0Keys.embedTokens) ? PI0Keys.embedTokens : PI0Keys.lmHead
        var emb = try ckpt.weight(embKey, shape: [dims.vlm.vocabSize, dims.vlm.width], hint: "vocab_size by VLM width")
        if bf16, emb.dtype == .float32 {
            emb = WeightTensor(name: emb.name, shape: emb.shape, floats: emb.floats().map(BFloat16.round), dtype: .bfloat16)
        }
        embedTokens = emb
        let e = dims.expert.width, a = config.maxActionDim
        stateProj = try Linear(root, "state_proj", out: e, in: config.maxStateDim, bias: true, backend: backend, bf16: false,
                               hint: "expert width by max_state_dim")
        actionInProj = try Linear(root, "action_in_proj", out: e, in: a, bias: true, backend: backend, bf16: false,
                                  hint: "expert width by max_action_dim")
        actionTimeMlpIn = try Linear(root, "action_time_mlp_in", out: e, in: 2 * e, bias: true, backend: backend, bf16: false)
        actionTimeMlpOut = try Linear(root, "action_time_mlp_out", out: e, in: e, bias: true, backend: backend, bf16: false)
        actionOutProj = try Linear(root, "action_out_proj", out: a, in: e, bias: true, backend: backend, bf16: false,
                                   hint: "max_action_dim by expert width")
        try ckpt.checkAllUsed()
        // The backend holds packed copies now; let the kernel drop the mapped pages (the token
        // embedding rows are read back from the file on demand), so the checkpoint is not resident twice.
        ckpt.safetensors.releaseResidentPages()
    }

    /// Samples an action chunk [B, H, A] (normalised, padded to max_action_dim) from t = 1 to t = 0.
    /// With `inputs.rtc` every velocity is guided towards the previous chunk (real-time chunking,
    /// docs/RTC.md) using `rtcConfig`, else the checkpoint's `rtc_config`, else LeRobot's defaults.
    public func sampleActions(_ inputs: PI0Inputs, steps: Int? = nil, seed: UInt64 = 0, rtcConfig: RTCConfig? = nil,
                              trace: IntermediateRecorder? = nil, timings: StageTimings? = nil) throws -> Tensor {
        try inputs.validate(dims: dims, config: config)
        let steps = steps ?? config.numInferenceSteps
        guard steps >= 1 else { throw PI0InputError.invalid(input: "steps", reason: "must be at least 1, got \(steps)") }
        let b = inputs.batch, h = config.chunkSize, a = config.maxActionDim
        let guide = try inputs.rtc.map {
            try RTCGuide(request: $0, config: rtcConfig ?? config.rtc ?? RTCConfig(), batch: b, chunk: h, actionDim: a)
        }
        var clock = StageClock()
        var prefix = embedPrefix(inputs, trace: trace)
        // Prefix positions that are padding in every row (unused language slots, cameras masked in every
        // row) cannot reach the actions: drop them before the VLM pass. Kept when recording intermediates,
        // whose tensors have LeRobot's full prefix shape.
        if trace == nil { prefix = prefix.droppingPadding() }
        timings?.record("vision", clock.lap())
        let state = PrefixState(model: self, prefix: prefix, suffixTokens: h + 1)
        state.runPrefix(trace: trace)
        timings?.record("prefix", clock.lap())

        let x = Tensor(shape: [b, h, a], values: inputs.noise ?? GaussianNoise.sample(count: b * h * a, seed: seed))
        let v = Tensor(shape: [b, h, a])
        var vAll: [Float] = [], xAll: [Float] = [], ts: [Float] = []
        for k in 0..<steps {
            let t = FlowMatching.time(step: k, steps: steps)
            state.denoiseStep(x: x, t: t, state: inputs.state, into: v, trace: k == 0 ? trace : nil)
            if let guide {
                // Names as the RTC fixtures store them: x at the start of step k, raw and guided velocity.
                trace?.record("x_t_\(k)", shape: [b, h, a], floats: x.data)
                trace?.record("v_t_\(k)", shape: [b, h, a], floats: v.data)
                guide.guide(x: x.data, velocity: v.data, time: FlowMatching.timeF64(step: k, steps: steps))
                trace?.record("v_t_guided_\(k)", shape: [b, h, a], floats: v.data)
            }
            FlowMatching.eulerUpdate(x.data, velocity: v.data, count: x.count, steps: steps)
            if trace != nil { vAll += v.array; xAll += x.array; ts.append(t) }
            timings?.record(StageTimings.stepName(k), clock.lap())
        }
        if let trace {
            trace.record("v_t_all", shape: [steps, b, h, a], .float32(vAll))
            trace.record("x_t_all", shape: [steps, b, h, a], .float32(xAll))
            trace.record("timesteps", shape: [steps], .float32(ts))
            trace.record("actions", shape: [b, h, a], floats: x.data)
        }
        return x
    }
}

/// The embedded prefix of one observation batch.
struct Prefix {
    let batch: Int, tokens: Int
    let embeddings: Tensor          // [B, P, W]
    let pad: [[Bool]]               // [B][P]
    let positions: [[Int]]          // [B][P]

    /// The prefix without the positions that are padding in every batch row. Exact: a padded position
    /// is masked as a key for every query (prefix and suffix), the prefix's attention flags are all 0 (so
    /// no block boundary moves), the remaining tokens keep their RoPE positions (computed on the full
    /// pad mask), and the suffix positions count valid prefix tokens only. What changes is the length of
    /// softmax sums that had exact zeros in them.
    func droppingPadding() -> Prefix {
        let keep = (0..<tokens).filter { j in pad.contains { $0[j] } }
        if keep.count == tokens || keep.isEmpty { return self }
        let w = embeddings.shape[2], t = keep.count
        let emb = Tensor(shape: [batch, t, w])
        for r in 0..<batch {
            for (i, j) in keep.enumerated() {
                (emb.data + (r * t + i) * w).update(from: embeddings.data + (r * tokens + j) * w, count: w)
            }
        }
        return Prefix(batch: batch, tokens: t, embeddings: emb, pad: pad.map { row in keep.map { row[$0] } },
                      positions: positions.map { row in keep.map { row[$0] } })
    }
}

extension PI0Model {
    /// embed_prefix: SigLIP + projector per camera, token embeddings × √W, concatenated (docs/SPEC.md §3).
    func embedPrefix(_ inputs: PI0Inputs, trace: IntermediateRecorder?) -> Prefix {
        let b = inputs.batch, n = dims.vision.tokensPerImage, w = dims.vlm.width, side = dims.vision.imageSize
        let l = inputs.langTokens[0].count, cams = inputs.images.count
        let p = cams * n + l
        let emb = Tensor(shape: [b, p, w])
        // Every (camera, row) image that can reach the actions goes through the vision tower in one
        // pass. A camera masked in every row cannot (its tokens are padding): it is skipped and its rows
        // stay zero, unless intermediates are being recorded.
        let used = (0..<cams).filter { trace != nil || inputs.imageMasks[$0].contains(true) }
        let imageSize = 3 * side * side
        let stacked = Tensor(shape: [used.count * b, imageSize])   // owned copies: stable pointers
        for (j, c) in used.enumerated() {
            inputs.images[c].withUnsafeBufferPointer { stacked.row(j * b).update(from: $0.baseAddress!, count: b * imageSize) }
        }
        let pointers = (0..<(used.count * b)).map { UnsafePointer(stacked.row($0)) }
        var traced: [String: [Int: [Float]]] = [:]   // name -> image index -> values
        let embeddings = pointers.isEmpty ? Tensor(shape: [0, w]) : vision.embedImages(pointers) { name, i, shape, ptr in
            guard trace != nil else { return }
            traced[name, default: [:]][i] = Array(UnsafeBufferPointer(start: ptr, count: shape.reduce(1, *)))
        }
        for (j, c) in used.enumerated() {
            for r in 0..<b {
                (emb.data + (r * p + c * n) * w).update(from: embeddings.data + (j * b + r) * n * w, count: n * w)
            }
            guard let trace else { continue }
            trace.record("img_emb_cam\(c)", shape: [b, n, w], .float32(Array(UnsafeBufferPointer(start: embeddings.data + j * b * n * w, count: b * n * w))))
            for (name, perImage) in traced {
                // siglip_layer0_* are recorded for camera 0 only, as in the fixtures.
                if name.hasPrefix("siglip") && c != 0 { continue }
                let key = name.hasPrefix("siglip") ? name : "\(name)_cam\(c)"
                let values = (0..<b).flatMap { perImage[j * b + $0]! }
                trace.record(key, shape: [b, n, dims.vision.hidden], .float32(values))
            }
        }
        // Language: embedding row × embed_scale, the scale cast to the weight dtype (45.25 in bf16).
        var scale = Float(Double(w).squareRoot())
        if bf16 { scale = BFloat16.round(scale) }
        var langEmb: [Float] = []
        for r in 0..<b {
            for (j, tok) in inputs.langTokens[r].enumerated() {
                let dst = emb.data + (r * p + cams * n + j) * w
                for i in 0..<w {
                    let y = embedTokens.float(at: tok * w + i) * scale
                    dst[i] = bf16 ? BFloat16.round(y) : y
                }
                if trace != nil { langEmb += Array(UnsafeBufferPointer(start: dst, count: w)) }
            }
        }
        var pad: [[Bool]] = [], positions: [[Int]] = []
        for r in 0..<b {
            var row: [Bool] = []
            for c in 0..<cams { row += [Bool](repeating: inputs.imageMasks[c][r], count: n) }
            row += inputs.langMasks[r]
            pad.append(row)
            positions.append(AttentionMasks.positions(pad: row))
        }
        if let trace {
            trace.record("lang_emb", shape: [b, l, w], .float32(langEmb))
            trace.record("prefix_embs", shape: [b, p, w], floats: emb.data)
            trace.record("prefix_pad_masks", shape: [b, p], .bool(pad.flatMap { $0 }))
            trace.record("prefix_position_ids", shape: [b, p], .int64(positions.flatMap { $0 }.map(Int64.init)))
        }
        return Prefix(batch: b, tokens: p, embeddings: emb, pad: pad, positions: positions)
    }
}
