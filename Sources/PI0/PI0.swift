// π0 and π0.5 (PI0Pytorch / PI05Pytorch in LeRobot 0.6.1): embedPrefix, embedSuffix, denoiseStep,
// sampleActions. One sampling loop serves both; the model kind decides the suffix (π0: state token +
// action/time tokens; π0.5: action tokens only, time through the expert's adaptive norms,
// docs/SPEC_PI05.md §3-§6).
// Letters: B batch, C cameras, N tokens per image, L language tokens, P = C·N + L prefix tokens,
// H chunk (action horizon), S suffix tokens (π0: H + 1, π0.5: H), A = max_action_dim, W VLM width, E expert width.
import Foundation
import PI0Tensor

/// The layers that differ between π0 and π0.5 (their checkpoint keys are declared in `PI0Model.init`).
enum SuffixHeads {
    /// π0: `state_proj` makes the state token; `action_time_mlp_in/out` fuse each action token with the time.
    case pi0(stateProj: Linear, actionTimeMlpIn: Linear, actionTimeMlpOut: Linear)
    /// π0.5: `time_mlp_in/out` turn the time embedding into the expert's adaRMS conditioning.
    case pi05(timeMlpIn: Linear, timeMlpOut: Linear)
}

public final class PI0Model: @unchecked Sendable {
    public let config: PI0Config
    public let dims: ModelDims
    public let precision: Precision
    public let backend: ComputeBackend
    let vision: SigLIP
    let vlm: Gemma
    let expert: Gemma
    let embedTokens: WeightTensor          // [vocab, W]
    let actionInProj: Linear, actionOutProj: Linear
    let heads: SuffixHeads

    var bf16: Bool { precision == .bfloat16 }
    /// π0 or π0.5, from the checkpoint's config.json.
    public var kind: ModelKind { config.model }

    /// Builds the model from a checkpoint. `precision` defaults to the config's `dtype`.
    public init(checkpoint ckpt: Checkpoint, precision: Precision? = nil, backend: ComputeBackend) throws {
        config = ckpt.config; dims = ckpt.dims; self.backend = backend
        self.precision = precision ?? ckpt.config.precision
        let bf16 = self.precision == .bfloat16
        let root = ckpt.scoped("")
        try ckpt.checkModelKind()   // a π0 tensor in a π0.5 checkpoint (or the reverse) is named first
        vision = try SigLIP(vision: ckpt.scoped(PI0Keys.vision), projector: ckpt.scoped("paligemma_with_expert.paligemma.model.multi_modal_projector"),
                            dims: dims.vision, projectionDim: dims.vlm.width, backend: backend)
        vlm = try Gemma(ckpt.scoped(PI0Keys.languageModel), dims: dims.vlm, backend: backend, bf16: bf16)
        expert = try Gemma(ckpt.scoped(PI0Keys.expert), dims: dims.expert, adaptiveNorms: config.model == .pi05,
                           backend: backend, bf16: bf16)
        // LeRobot's rule: a real embed_tokens entry wins; otherwise the tied lm_head (docs/SPEC.md §8).
        let embKey = ckpt.contains(PI0Keys.embedTokens) ? PI0Keys.embedTokens : PI0Keys.lmHead
        var emb = try ckpt.weight(embKey, shape: [dims.vlm.vocabSize, dims.vlm.width], hint: "vocab_size by VLM width")
        if bf16, emb.dtype == .float32 {
            emb = WeightTensor(name: emb.name, shape: emb.shape, floats: emb.floats().map(BFloat16.round), dtype: .bfloat16)
        }
        embedTokens = emb
        // The heads are float32 in both precision modes (docs/SPEC.md §7, docs/SPEC_PI05.md §8).
        let e = dims.expert.width, a = config.maxActionDim
        actionInProj = try Linear(root, "action_in_proj", out: e, in: a, bias: true, backend: backend, bf16: false,
                                  hint: "expert width by max_action_dim")
        actionOutProj = try Linear(root, "action_out_proj", out: a, in: e, bias: true, backend: backend, bf16: false,
                                   hint: "max_action_dim by expert width")
        switch config.model {
        case .pi0:
            heads = .pi0(
                stateProj: try Linear(root, "state_proj", out: e, in: config.maxStateDim, bias: true, backend: backend, bf16: false,
                                      hint: "expert width by max_state_dim"),
                actionTimeMlpIn: try Linear(root, "action_time_mlp_in", out: e, in: 2 * e, bias: true, backend: backend, bf16: false),
                actionTimeMlpOut: try Linear(root, "action_time_mlp_out", out: e, in: e, bias: true, backend: backend, bf16: false))
        case .pi05:
            heads = .pi05(
                timeMlpIn: try Linear(root, "time_mlp_in", out: e, in: e, bias: true, backend: backend, bf16: false,
                                      hint: "expert width by expert width (the time embedding's width)"),
                timeMlpOut: try Linear(root, "time_mlp_out", out: e, in: e, bias: true, backend: backend, bf16: false,
                                       hint: "expert width by expert width"))
        }
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
        try FiniteGuard.check(prefix.embeddings, stage: "the prefix embeddings (vision tower, token embeddings)")
        timings?.record("vision", clock.lap())
        let pass = PaliGemmaWithExpert(vlm: vlm, expert: expert, prefix: prefix, suffixAtt: suffixAttention)
        pass.runPrefix(trace: trace)
        try pass.checkCacheFinite()
        timings?.record("prefix", clock.lap())
        let suffix = SuffixBuffers(model: self, batch: b, steps: steps)

        let x = Tensor(shape: [b, h, a], values: inputs.noise ?? GaussianNoise.sample(count: b * h * a, seed: seed))
        let v = Tensor(shape: [b, h, a])
        var vAll: [Float] = [], xAll: [Float] = [], ts: [Float] = [], outAll: [Float] = []
        for k in 0..<steps {
            let t = FlowMatching.time(step: k, steps: steps)
            if k == 0 && kind == .pi05 { prepareConditioning(suffix, steps: steps) }   // every step's, at once
            denoiseStep(pass, suffix, x: x, t: t, step: k, state: inputs.state, into: v, trace: k == 0 ? trace : nil)
            if let guide {
                // Names as the RTC fixtures store them: x at the start of step k, raw and guided velocity.
                trace?.record("x_t_\(k)", shape: [b, h, a], floats: x.data)
                trace?.record("v_t_\(k)", shape: [b, h, a], floats: v.data)
                guide.guide(x: x.data, velocity: v.data, time: FlowMatching.timeF64(step: k, steps: steps))
                trace?.record("v_t_guided_\(k)", shape: [b, h, a], floats: v.data)
            }
            FlowMatching.eulerUpdate(x.data, velocity: v.data, count: x.count, steps: steps)
            try FiniteGuard.check(x, stage: "denoise step \(k)")
            if trace != nil { vAll += v.array; xAll += x.array; ts.append(t); outAll += pass.normed.array }
            timings?.record(StageTimings.stepName(k), clock.lap())
        }
        if let trace {
            trace.record("v_t_all", shape: [steps, b, h, a], .float32(vAll))
            trace.record("x_t_all", shape: [steps, b, h, a], .float32(xAll))
            trace.record("timesteps", shape: [steps], .float32(ts))
            trace.record("suffix_out_all", shape: [steps] + pass.normed.shape, .float32(outAll))
            if kind == .pi05 {
                let shape = [steps, b, dims.expert.width]
                trace.record("time_emb_all", shape: shape, floats: suffix.timeEmbedding.data)
                trace.record("time_mlp_hidden_all", shape: shape, floats: suffix.hidden.data)
                trace.record("adarms_cond_all", shape: shape, floats: suffix.conditioning.data)
            }
            trace.record("actions", shape: [b, h, a], floats: x.data)
        }
        return x
    }
}

/// The suffix embeddings and the buffers embed_suffix works in, made once per observation.
final class SuffixBuffers: @unchecked Sendable {
    let batch: Int, steps: Int
    let embeddings: Tensor                 // [B, S, E]
    let actionTime: Tensor                 // π0: [B·H, 2E] (action embedding | time embedding)
    let hidden: Tensor                     // π0: [B·H, E]; π0.5: [steps·B, E] (swish(time_mlp_in(·)))
    let timeEmbedding: Tensor              // π0.5: [steps·B, E]
    let conditioning: Tensor               // π0.5: [steps·B, E] adarms_cond of every step
    let modulations: Tensor                // π0.5: [2·depth + 1, steps·B, 3E] (Gemma.modulations)

    init(model m: PI0Model, batch b: Int, steps: Int) {
        let h = m.config.chunkSize, e = m.dims.expert.width
        batch = b; self.steps = steps
        switch m.kind {
        case .pi0:
            embeddings = Tensor(shape: [b, h + 1, e])
            actionTime = Tensor(shape: [b * h, 2 * e])
            hidden = Tensor(shape: [b * h, e])
            timeEmbedding = Tensor(shape: [0]); conditioning = Tensor(shape: [0]); modulations = Tensor(shape: [0])
        case .pi05:
            embeddings = Tensor(shape: [b, h, e])
            actionTime = Tensor(shape: [0])
            hidden = Tensor(shape: [steps * b, e])
            timeEmbedding = Tensor(shape: [steps * b, e])
            conditioning = Tensor(shape: [steps * b, e])
            modulations = Tensor(shape: [m.expert.normCount, steps * b, 3 * e])
        }
    }

    /// π0.5: norm j's modulation [B, 3E] of step k is at `modulationsOfStep(k) + j·modulationNormStride`.
    func modulationsOfStep(_ k: Int) -> UnsafePointer<Float> { UnsafePointer(modulations.data + k * batch * modulations.shape[2]) }
    var modulationNormStride: Int { steps * batch * modulations.shape[2] }
}

extension PI0Model {
    /// The suffix's attention flags (a 1 starts a block): π0 [1 (state), 1, 0, …] — the state token and
    /// the first action token each start a block; π0.5 [1, 0, …] (docs/SPEC_PI05.md §3).
    var suffixAttention: [Int] {
        let rest = [Int](repeating: 0, count: max(config.chunkSize - 1, 0))
        return kind == .pi0 ? [1, 1] + rest : [1] + rest
    }

    /// π0.5: the adaRMS conditioning swish(time_mlp_out(swish(time_mlp_in(emb(t_k))))) of every step k
    /// and its modulations for every expert norm (docs/SPEC_PI05.md §3, §4). They depend on t alone, so
    /// they are computed for all steps at once: each `dense` weight is read once per sample, not per step.
    func prepareConditioning(_ buf: SuffixBuffers, steps: Int) {
        guard case let .pi05(timeMlpIn, timeMlpOut) = heads else { return }
        let b = buf.batch, e = dims.expert.width, rows = steps * b
        for k in 0..<steps {
            let t = FlowMatching.time(step: k, steps: steps)
            for r in 0..<b {
                FlowMatching.timeEmbedding(t: t, dim: e, minPeriod: config.minPeriod, maxPeriod: config.maxPeriod,
                                           into: buf.timeEmbedding.row(k * b + r))
            }
        }
        timeMlpIn(buf.timeEmbedding.data, rows: rows, into: buf.hidden.data)
        backend.silu(buf.hidden.data, count: rows * e)
        timeMlpOut(buf.hidden.data, rows: rows, into: buf.conditioning.data)
        backend.silu(buf.conditioning.data, count: rows * e)
        expert.modulations(cond: buf.conditioning.data, rows: rows, into: buf.modulations.data)
    }

    /// embed_suffix into `buf` (float32 in both modes). x: [B, H, A]; state: [B, max_state_dim] (π0 only).
    /// π0: [state token, action/time tokens]. π0.5: the action tokens (the time enters through the
    /// conditioning made by `prepareConditioning`; docs/SPEC_PI05.md §3).
    func embedSuffix(x: Tensor, t: Float, step k: Int, state: [Float], _ buf: SuffixBuffers, trace: IntermediateRecorder?) {
        let b = x.shape[0], h = config.chunkSize, e = dims.expert.width
        let suffix = buf.embeddings, s = suffix.shape[1]
        switch heads {
        case let .pi0(stateProj, actionTimeMlpIn, actionTimeMlpOut):
            let actionTime = buf.actionTime, hidden = buf.hidden
            actionInProj(x.data, rows: b * h, into: actionTime.data, ldy: 2 * e)
            FlowMatching.timeEmbedding(t: t, dim: e, minPeriod: config.minPeriod, maxPeriod: config.maxPeriod, into: actionTime.row(0) + e)
            for r in 1..<max(b * h, 1) { (actionTime.row(r) + e).update(from: actionTime.row(0) + e, count: e) }
            trace?.record("suffix_action_time_in_step0", shape: [b, h, 2 * e], floats: actionTime.data)
            actionTimeMlpIn(actionTime.data, rows: b * h, into: hidden.data)
            backend.silu(hidden.data, count: b * h * e)
            state.withUnsafeBufferPointer { st in
                for r in 0..<b {
                    stateProj(st.baseAddress! + r * config.maxStateDim, rows: 1, into: suffix.data + r * s * e)
                    actionTimeMlpOut(hidden.data + r * h * e, rows: h, into: suffix.data + (r * s + 1) * e)
                }
            }
        case .pi05:
            actionInProj(x.data, rows: b * h, into: suffix.data)
            if let trace {
                let m = buf.modulationsOfStep(k), stride = buf.modulationNormStride
                trace.record("adarms_mod_layer0_input_step\(k)", shape: [b, 3 * e], floats: m)
                trace.record("adarms_mod_layer0_post_attn_step\(k)", shape: [b, 3 * e], floats: m + stride)
                trace.record("adarms_mod_final_norm_step\(k)", shape: [b, 3 * e], floats: m + 2 * dims.expert.depth * stride)
            }
        }
        trace?.record("suffix_embs_step0", shape: [b, s, e], floats: suffix.data)
    }

    /// One denoise step: v_t = action_out_proj(expert(embed_suffix(x_t, t))[:, −H:]) into v [B, H, A].
    /// π0.5 needs `prepareConditioning` first; `step` k picks its conditioning.
    func denoiseStep(_ pass: PaliGemmaWithExpert, _ buf: SuffixBuffers, x: Tensor, t: Float, step k: Int, state: [Float],
                     into v: Tensor, trace: IntermediateRecorder?) {
        let b = x.shape[0], h = config.chunkSize, s = pass.suffixTokens, e = dims.expert.width, a = config.maxActionDim
        embedSuffix(x: x, t: t, step: k, state: state, buf, trace: trace)
        if kind == .pi05 {
            pass.runExpert(buf.embeddings, modulations: buf.modulationsOfStep(k), normStride: buf.modulationNormStride, trace: trace)
        } else {
            pass.runExpert(buf.embeddings, trace: trace)
        }
        for r in 0..<b {
            actionOutProj(pass.normed.data + (r * s + s - h) * e, rows: h, into: v.data + r * h * a)
        }
        trace?.record("v_t_step0", shape: [b, h, a], floats: v.data)
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
