// π0 and π0.5 (PI0Pytorch / PI05Pytorch in LeRobot 0.6.1): embedPrefix, embedSuffix, denoiseStep,
// sampleActions. One sampling loop serves both; the model kind decides the suffix (π0: state token +
// action/time tokens; π0.5: action tokens only, time through the expert's adaptive norms,
// docs/SPEC_PI05.md §3-§6).
// Letters: B batch, C cameras, N tokens per image, L language tokens, P = C·N + L prefix tokens,
// H chunk (action horizon), S suffix tokens (π0: H + 1, π0.5: H), A = max_action_dim, W VLM width, E expert width.
// The model never touches activation memory: it allocates backend tensors (through `SamplingPlan`, once
// per shape) and issues backend operations (docs/ARCHITECTURE.md, "Life of one observation").
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
    let embedTokens: PreparedEmbedding     // [vocab, W]
    let actionInProj: Linear, actionOutProj: Linear
    let heads: SuffixHeads

    var bf16: Bool { precision == .bfloat16 }
    /// The plan of the last shape sampled, reused by the next call of the same shape (taken out while in use).
    private var cachedPlan: SamplingPlan?
    private let planLock = NSLock()
    /// π0 or π0.5, from the checkpoint's config.json.
    public var kind: ModelKind { config.model }

    /// Builds the model from a checkpoint. `precision` defaults to the config's `dtype`.
    public convenience init(checkpoint ckpt: Checkpoint, precision: Precision? = nil, backend: ComputeBackend) throws {
        try ckpt.checkModelKind()   // a π0 tensor in a π0.5 checkpoint (or the reverse) is named first
        try self.init(weights: ckpt, config: ckpt.config, dims: ckpt.dims, precision: precision ?? ckpt.config.precision,
                      backend: backend)
        try ckpt.checkAllUsed()
        // The backend holds packed copies now; let the kernel drop the mapped pages (the token
        // embedding rows are read back from the file on demand), so the checkpoint is not resident twice.
        ckpt.safetensors.releaseResidentPages()
    }

    /// Builds the model from `weights`: a checkpoint, or the recorder behind `CheckpointLayout`. The
    /// keys below (and in the modules' initialisers) are the checkpoint's layout.
    init(weights: WeightSource, config: PI0Config, dims: ModelDims, precision: Precision, backend: ComputeBackend) throws {
        self.config = config; self.dims = dims; self.backend = backend; self.precision = precision
        let bf16 = precision == .bfloat16
        let root = weights.scoped("")
        root.unused("paligemma_with_expert.gemma_expert.lm_head.weight", [dims.expert.vocabSize, dims.expert.width],
                    role: .embedding, reason: "the action expert's output head is never used by π0 or π0.5")
        vision = try SigLIP(vision: weights.scoped(PI0Keys.vision), projector: weights.scoped(PI0Keys.projector),
                            dims: dims.vision, projectionDim: dims.vlm.width, backend: backend)
        vlm = try Gemma(weights.scoped(PI0Keys.languageModel), dims: dims.vlm, backend: backend, bf16: bf16)
        expert = try Gemma(weights.scoped(PI0Keys.expert), dims: dims.expert, adaptiveNorms: config.model == .pi05,
                           backend: backend, bf16: bf16)
        // LeRobot's rule: a real embed_tokens entry wins; otherwise the tied lm_head (docs/SPEC.md §8).
        let embKey = weights.contains(PI0Keys.embedTokens) ? PI0Keys.embedTokens : PI0Keys.lmHead
        var emb = try weights.weight(embKey, shape: [dims.vlm.vocabSize, dims.vlm.width], role: .embedding,
                                     hint: "vocab_size by VLM width")
        if bf16, emb.dtype == .float32 {
            emb = WeightTensor(name: emb.name, shape: emb.shape, floats: emb.floats().map(BFloat16.round), dtype: .bfloat16)
        }
        embedTokens = try backend.prepareEmbedding(emb)
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
    }

    /// Samples an action chunk [B, H, A] (normalised, padded to max_action_dim) from t = 1 to t = 0.
    /// With `inputs.rtc` every velocity is guided towards the previous chunk (real-time chunking,
    /// docs/RTC.md) using `rtcConfig`, else the checkpoint's `rtc_config`, else LeRobot's defaults.
    /// One plan per shape is kept and reused (`plan(for:)`); observers get a fresh, unreduced one.
    public func sampleActions(_ inputs: PI0Inputs, steps: Int? = nil, seed: UInt64 = 0, rtcConfig: RTCConfig? = nil,
                              trace: IntermediateRecorder? = nil, timings: StageTimings? = nil) throws -> Tensor {
        let (shape, guide) = try prepare(inputs, steps: steps, rtcConfig: rtcConfig, observing: trace != nil)
        let plan = trace == nil ? takePlan(shape) : SamplingPlan(model: self, shape: shape)
        defer { if trace == nil { returnPlan(plan) } }
        let b = inputs.batch, n = b * config.chunkSize * config.maxActionDim
        try plan.upload(inputs, noise: inputs.noise ?? GaussianNoise.sample(count: n, seed: seed), guide: guide, observer: trace)
        var clock = StageClock()
        let lap: ((String) -> Void)? = timings.map { t in { name in self.backend.synchronize(); t.record(name, clock.lap()) } }
        plan.enqueuePrefix(observer: trace, lap: lap)
        plan.enqueueLoop(observer: trace, lap: lap)
        return try plan.finish(observer: trace)
    }

    /// Checks the inputs and works out the plan shape and the RTC guide of one call.
    /// `dropPadding` false: the plan keeps every camera and prefix position (see `SamplingShape`).
    public func prepare(_ inputs: PI0Inputs, steps: Int? = nil, rtcConfig: RTCConfig? = nil, observing: Bool = false,
                        dropPadding: Bool = true) throws -> (SamplingShape, RTCGuide?) {
        try inputs.validate(dims: dims, config: config)
        let steps = steps ?? config.numInferenceSteps
        guard steps >= 1 else { throw PI0InputError.invalid(input: "steps", reason: "must be at least 1, got \(steps)") }
        let guide = try inputs.rtc.map {
            try RTCGuide(request: $0, config: rtcConfig ?? config.rtc ?? RTCConfig(), batch: inputs.batch,
                         chunk: config.chunkSize, actionDim: config.maxActionDim)
        }
        return (SamplingShape(model: self, inputs: inputs, steps: steps, guided: guide != nil,
                              dropPadding: dropPadding && !observing), guide)
    }

    /// The cached plan for `shape` (made when the cache holds another shape or is in use). Plans hold
    /// only backend buffers sized for the shape; making one allocates, running one does not.
    public func takePlan(_ shape: SamplingShape) -> SamplingPlan {
        planLock.lock()
        defer { planLock.unlock() }
        if let p = cachedPlan, p.shape == shape { cachedPlan = nil; return p }
        return SamplingPlan(model: self, shape: shape)
    }

    /// Gives a plan back for the next call of its shape.
    public func returnPlan(_ plan: SamplingPlan) {
        planLock.lock(); cachedPlan = plan; planLock.unlock()
    }
}

extension PI0Model {
    /// The suffix's attention flags (a 1 starts a block): π0 [1 (state), 1, 0, …] — the state token and
    /// the first action token each start a block; π0.5 [1, 0, …] (docs/SPEC_PI05.md §3).
    var suffixAttention: [Int] {
        let rest = [Int](repeating: 0, count: max(config.chunkSize - 1, 0))
        return kind == .pi0 ? [1, 1] + rest : [1] + rest
    }

    /// The time conditioning of every step, once per plan (it depends on t alone): π0 the sinusoidal
    /// embedding of each t_k [steps, E]; π0.5 also swish(time_mlp_out(swish(time_mlp_in(emb(t_k))))) for
    /// every batch row and its modulations for every expert norm (docs/SPEC_PI05.md §3, §4), so each
    /// `dense` weight is read once per plan, not per step.
    func prepareConditioning(_ buf: SuffixBuffers) {
        let b = buf.batch, e = dims.expert.width, steps = buf.steps
        for k in 0..<steps {
            backend.timeEmbedding(t: FlowMatching.time(step: k, steps: steps), width: e, minPeriod: config.minPeriod,
                                  maxPeriod: config.maxPeriod, out: buf.timeTable + k * e)
        }
        guard case let .pi05(timeMlpIn, timeMlpOut) = heads else { return }
        let rows = steps * b
        backend.copy(buf.timeTable.ref, sourceStride: e, to: buf.timeEmbedding.ref, destinationStride: b * e, rows: steps, width: e)
        for r in 1..<max(b, 1) {
            backend.copy(buf.timeTable.ref, sourceStride: e, to: buf.timeEmbedding + r * e, destinationStride: b * e, rows: steps, width: e)
        }
        timeMlpIn(buf.timeEmbedding.ref, rows: rows, into: buf.hidden.ref)
        backend.silu(buf.hidden.ref, count: rows * e)
        timeMlpOut(buf.hidden.ref, rows: rows, into: buf.conditioning.ref)
        backend.silu(buf.conditioning.ref, count: rows * e)
        expert.modulations(cond: buf.conditioning.ref, rows: rows, into: buf.modulations.ref)
    }

    /// π0's state token, the same for every step: state_proj(state) into row 0 of each batch row's suffix.
    func embedState(_ state: TensorRef, _ buf: SuffixBuffers) {
        guard case let .pi0(stateProj, _, _) = heads else { return }
        let s = buf.embeddings.shape[1], e = dims.expert.width
        for r in 0..<buf.batch {
            stateProj(state + r * config.maxStateDim, rows: 1, into: buf.embeddings + r * s * e)
        }
    }

    /// embed_suffix into `buf` (float32 in both modes). x: [B, H, A]. π0: [state token (`embedState`),
    /// action/time tokens]. π0.5: the action tokens (the time enters through the conditioning made by
    /// `prepareConditioning`; docs/SPEC_PI05.md §3).
    func embedSuffix(x: TensorRef, step k: Int, _ buf: SuffixBuffers, trace: SamplingObserver?) {
        let b = buf.batch, h = config.chunkSize, e = dims.expert.width
        let suffix = buf.embeddings, s = suffix.shape[1]
        switch heads {
        case let .pi0(_, actionTimeMlpIn, actionTimeMlpOut):
            let actionTime = buf.actionTime.ref, hidden = buf.hidden.ref
            actionInProj(x, rows: b * h, into: actionTime, ldy: 2 * e)
            backend.copy(buf.timeTable + k * e, sourceStride: 0, to: actionTime + e, destinationStride: 2 * e, rows: b * h, width: e)
            trace?.observe("suffix_action_time_in_step0", shape: [b, h, 2 * e], actionTime, backend: backend)
            actionTimeMlpIn(actionTime, rows: b * h, into: hidden)
            backend.silu(hidden, count: b * h * e)
            for r in 0..<b {
                actionTimeMlpOut(hidden + r * h * e, rows: h, into: suffix + (r * s + 1) * e)
            }
        case .pi05:
            actionInProj(x, rows: b * h, into: suffix.ref)
            if let trace {
                let m = buf.modulationsOfStep(k), stride = buf.modulationNormStride
                trace.observe("adarms_mod_layer0_input_step\(k)", shape: [b, 3 * e], m, backend: backend)
                trace.observe("adarms_mod_layer0_post_attn_step\(k)", shape: [b, 3 * e], m + stride, backend: backend)
                trace.observe("adarms_mod_final_norm_step\(k)", shape: [b, 3 * e], m + 2 * dims.expert.depth * stride, backend: backend)
            }
        }
        trace?.observe("suffix_embs_step0", shape: [b, s, e], suffix.ref, backend: backend)
    }

    /// One denoise step: v_t = action_out_proj(expert(embed_suffix(x_t, t))[:, −H:]) into v [B, H, A].
    /// `step` k picks its time conditioning (`prepareConditioning`).
    func denoiseStep(_ pass: PaliGemmaWithExpert, _ buf: SuffixBuffers, x: TensorRef, step k: Int, into v: TensorRef,
                     trace: SamplingObserver?) {
        let b = buf.batch, h = config.chunkSize, s = pass.suffixTokens, e = dims.expert.width, a = config.maxActionDim
        embedSuffix(x: x, step: k, buf, trace: trace)
        if kind == .pi05 {
            pass.runExpert(buf.embeddings.ref, modulations: buf.modulationsOfStep(k), normStride: buf.modulationNormStride, trace: trace)
        } else {
            pass.runExpert(buf.embeddings.ref, trace: trace)
        }
        for r in 0..<b {
            actionOutProj(pass.normed + (r * s + s - h) * e, rows: h, into: v + r * h * a)
        }
        trace?.observe("v_t_step0", shape: [b, h, a], v, backend: backend)
    }
}

/// The suffix embeddings and the buffers embed_suffix works in, allocated once per plan.
final class SuffixBuffers: @unchecked Sendable {
    let batch: Int, steps: Int
    let embeddings: DeviceTensor           // [B, S, E]
    let timeTable: DeviceTensor            // [steps, E] the sinusoidal embedding of each t_k
    let actionTime: DeviceTensor           // π0: [B·H, 2E] (action embedding | time embedding)
    let hidden: DeviceTensor               // π0: [B·H, E]; π0.5: [steps·B, E] (swish(time_mlp_in(·)))
    let timeEmbedding: DeviceTensor        // π0.5: [steps·B, E]
    let conditioning: DeviceTensor         // π0.5: [steps·B, E] adarms_cond of every step
    let modulations: DeviceTensor          // π0.5: [2·depth + 1, steps·B, 3E] (Gemma.modulations)

    init(model m: PI0Model, batch b: Int, steps: Int) {
        let h = m.config.chunkSize, e = m.dims.expert.width, be = m.backend
        batch = b; self.steps = steps
        timeTable = DeviceTensor(shape: [steps, e], backend: be)
        switch m.kind {
        case .pi0:
            embeddings = DeviceTensor(shape: [b, h + 1, e], backend: be)
            actionTime = DeviceTensor(shape: [b * h, 2 * e], backend: be)
            hidden = DeviceTensor(shape: [b * h, e], backend: be)
            timeEmbedding = DeviceTensor(shape: [0], backend: be); conditioning = DeviceTensor(shape: [0], backend: be)
            modulations = DeviceTensor(shape: [0, 0, 0], backend: be)
        case .pi05:
            embeddings = DeviceTensor(shape: [b, h, e], backend: be)
            actionTime = DeviceTensor(shape: [0], backend: be)
            hidden = DeviceTensor(shape: [steps * b, e], backend: be)
            timeEmbedding = DeviceTensor(shape: [steps * b, e], backend: be)
            conditioning = DeviceTensor(shape: [steps * b, e], backend: be)
            modulations = DeviceTensor(shape: [m.expert.normCount, steps * b, 3 * e], backend: be)
        }
    }

    /// π0.5: norm j's modulation [B, 3E] of step k is at `modulationsOfStep(k) + j·modulationNormStride`.
    func modulationsOfStep(_ k: Int) -> TensorRef { modulations + k * batch * modulations.shape[2] }
    var modulationNormStride: Int { steps * batch * modulations.shape[2] }
}
