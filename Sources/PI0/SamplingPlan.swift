// One `sampleActions` shape made concrete: every backend buffer the sample needs, allocated once, and
// the sample split into what a runtime may record and replay (docs/ARCHITECTURE.md, "Life of one
// observation"):
//   upload        the observation's transfers: images, token ids, state, noise, masks and RoPE tables
//                 (from the pad flags), RTC targets — the only host→backend traffic of a call
//   enqueuePrefix vision tower, token embeddings, padding dropped, VLM → KV cache (no transfer)
//   enqueueLoop   the state token, the denoise steps with their finite checks (no transfer, no allocation)
//   finish        one download: the actions and the status of every finite check
// A backend that records work (`GraphCapturing`) can capture `enqueuePrefix` + `enqueueLoop` once and
// replay them for every observation of the same shape. Letters as in PI0.swift.
import PI0Tensor

/// What fixes a plan's buffers and operation sequence.
public struct SamplingShape: Hashable, Sendable {
    public let batch: Int
    /// Cameras that go through the vision tower (a camera masked in every row is skipped).
    public let cameras: [Int]
    public let cameraCount: Int
    public let languageTokens: Int
    /// Prefix positions the VLM runs over: those valid in at least one row (all when observed).
    public let kept: [Int]
    public let steps: Int
    /// Real-time chunking guidance on.
    public let guided: Bool

    /// `dropPadding` false keeps every camera and prefix position (observed runs, and plans that must
    /// serve any prompt length and camera mask of their size, e.g. a captured denoise loop).
    init(model m: PI0Model, inputs: PI0Inputs, steps: Int, guided: Bool, dropPadding: Bool) {
        let n = m.dims.vision.tokensPerImage, cams = inputs.images.count
        batch = inputs.batch; cameraCount = cams; languageTokens = inputs.langTokens[0].count
        cameras = (0..<cams).filter { !dropPadding || inputs.imageMasks[$0].contains(true) }
        // Prefix positions that are padding in every row (unused language slots, cameras masked in every
        // row) cannot reach the actions: the VLM skips them. Exact: a padded position is masked as a key
        // for every query, the prefix's attention flags are all 0 (no block boundary moves), the kept
        // tokens keep their RoPE positions (computed on the full pad mask), and the suffix positions count
        // valid prefix tokens only; what changes is the length of softmax sums that had exact zeros in them.
        // Observed runs keep LeRobot's full prefix shape.
        let p = cams * n + languageTokens
        let valid = (0..<p).filter { j in
            j < cams * n ? inputs.imageMasks[j / n].contains(true) : inputs.langMasks.contains { $0[j - cams * n] }
        }
        kept = !dropPadding || valid.isEmpty ? Array(0..<p) : valid
        self.steps = steps; self.guided = guided
    }

    /// Full prefix length C·N + L.
    func prefixTokens(_ n: Int) -> Int { cameraCount * n + languageTokens }
}

public final class SamplingPlan: @unchecked Sendable {
    public let shape: SamplingShape
    let model: PI0Model
    let images: DeviceTensor               // [cameras·B, 3, side, side], camera-major
    let ids: DeviceTensor                  // [B, L] token ids as float32 integers
    let state: DeviceTensor                // π0: [B, max_state_dim]
    let vision: SigLIPBuffers?
    let prefix: DeviceTensor               // [B, P, W] full prefix
    let keptPrefix: DeviceTensor?          // [B, P', W] when positions are dropped
    let pass: PaliGemmaWithExpert
    let suffix: SuffixBuffers
    let velocity: DeviceTensor             // [B, H, A]
    /// x [B, H, A] (noise in, actions out) followed by the finite-check statuses, 3 floats each:
    /// one download returns both.
    let result: DeviceTensor
    let rtcTarget: DeviceTensor?, rtcWeights: DeviceTensor?
    private(set) var rtcConfig = RTCConfig()
    /// Statuses: prefix embeddings, the cache's last layer (keys, values per row), each step.
    let statusNames: [String]
    /// The last uploaded observation's pad flags and positions (host metadata, for observers).
    private var pad: [[Bool]] = [], positions: [[Int]] = []

    var backend: ComputeBackend { model.backend }
    /// What the one download of a call reads: the actions, then the finite checks' statuses.
    public var outputs: TensorRef { result.ref }
    public var outputCount: Int { result.count }
    /// The most floats one `upload` writes: the capacity of every tensor it writes (staging size).
    public var uploadCapacity: Int {
        [images, ids, state, result, pass.prefixMask, pass.suffixMask, pass.prefixCos, pass.prefixSin, pass.suffixCos,
         pass.suffixSin].reduce(0) { $0 + $1.count } + (rtcTarget?.count ?? 0) + (rtcWeights?.count ?? 0)
    }
    var actionCount: Int { shape.batch * model.config.chunkSize * model.config.maxActionDim }
    var x: TensorRef { result.ref }
    func status(_ i: Int) -> TensorRef { result + actionCount + 3 * i }

    /// Allocates every buffer of `shape` and computes the time conditioning of its steps.
    public init(model m: PI0Model, shape: SamplingShape) {
        model = m; self.shape = shape
        let be = m.backend, b = shape.batch, d = m.dims, n = d.vision.tokensPerImage, side = d.vision.imageSize
        let w = d.vlm.width, p = shape.prefixTokens(n), kept = shape.kept.count
        images = DeviceTensor(shape: [shape.cameras.count * b, 3, side, side], backend: be)
        ids = DeviceTensor(shape: [b, shape.languageTokens], backend: be)
        state = DeviceTensor(shape: [b, m.kind == .pi0 ? m.config.maxStateDim : 0], backend: be)
        vision = shape.cameras.isEmpty ? nil : SigLIPBuffers(m.vision, images: shape.cameras.count * b)
        prefix = DeviceTensor(shape: [b, p, w], backend: be)
        keptPrefix = kept == p ? nil : DeviceTensor(shape: [b, kept, w], backend: be)
        pass = PaliGemmaWithExpert(vlm: m.vlm, expert: m.expert, batch: b, prefixTokens: kept, suffixAtt: m.suffixAttention)
        suffix = SuffixBuffers(model: m, batch: b, steps: shape.steps)
        velocity = DeviceTensor(shape: [b, m.config.chunkSize, m.config.maxActionDim], backend: be)
        statusNames = ["the prefix embeddings (vision tower, token embeddings)"]
            + (0..<b).map { _ in "the prefix pass (VLM KV cache keys, last layer)" }
            + (0..<b).map { _ in "the prefix pass (VLM KV cache values, last layer)" }
            + (0..<shape.steps).map { "denoise step \($0)" }
        result = DeviceTensor(shape: [b * m.config.chunkSize * m.config.maxActionDim + 3 * statusNames.count], backend: be)
        if shape.guided {
            rtcTarget = DeviceTensor(shape: [b, m.config.chunkSize, m.config.maxActionDim], backend: be)
            rtcWeights = DeviceTensor(shape: [b, m.config.chunkSize], backend: be)
        } else {
            rtcTarget = nil; rtcWeights = nil
        }
        m.prepareConditioning(suffix)
    }

    // MARK: Upload

    /// The observation's transfers (inputs already validated against the model and this shape), through
    /// `uploader` (default: the backend's own `upload`; a pipelined engine stages them on a transfer queue).
    /// Together they write at most `uploadCapacity` floats.
    public func upload(_ inputs: PI0Inputs, noise: [Float], guide: RTCGuide?, observer: SamplingObserver? = nil,
                       via uploader: TensorUploading? = nil) throws {
        let backend = uploader ?? self.backend
        let b = shape.batch, n = model.dims.vision.tokensPerImage, cams = shape.cameraCount
        precondition(inputs.batch == b && inputs.images.count == cams, "observation does not match the plan's shape")
        guard noise.count == actionCount else {
            throw PI0InputError.invalid(input: "noise", reason: "expected \(actionCount) values, got \(noise.count)")
        }
        let imageSize = 3 * model.dims.vision.imageSize * model.dims.vision.imageSize
        for (j, c) in shape.cameras.enumerated() { backend.upload(inputs.images[c], to: images + j * b * imageSize) }
        backend.upload(inputs.langTokens.flatMap { $0.map(Float.init) }, to: ids.ref)
        if model.kind == .pi0 { backend.upload(inputs.state, to: state.ref) }
        backend.upload(noise, to: x)
        var fullPad: [[Bool]] = []
        pad = []; positions = []
        for r in 0..<b {
            var row: [Bool] = []
            for c in 0..<cams { row += [Bool](repeating: inputs.imageMasks[c][r], count: n) }
            row += inputs.langMasks[r]
            let pos = AttentionMasks.positions(pad: row)
            fullPad.append(row)
            pad.append(shape.kept.map { row[$0] }); positions.append(shape.kept.map { pos[$0] })
        }
        if let observer {
            observer.observe("prefix_pad_masks", shape: [b, fullPad[0].count], values: .bool(fullPad.flatMap { $0 }))
            observer.observe("prefix_position_ids", shape: [b, fullPad[0].count], values: .int64(positions.flatMap { $0 }.map(Int64.init)))
            let s = pass.suffixTokens
            observer.observe("suffix_position_ids", shape: [b, s], values: .int64((0..<b).flatMap {
                PaliGemmaWithExpert.suffixPositions(prefixPad: pad[$0], count: s).map(Int64.init) }))
        }
        pass.upload(pad: pad, positions: positions, via: backend)
        if let guide, let rtcTarget, let rtcWeights {
            backend.upload(guide.target, to: rtcTarget.ref); backend.upload(guide.weights, to: rtcWeights.ref)
            rtcConfig = guide.config
        }
    }

    // MARK: Enqueue

    /// Prefix, then the denoise loop.
    public func enqueue(observer: SamplingObserver? = nil) {
        enqueuePrefix(observer: observer, lap: nil)
        enqueueLoop(observer: observer, lap: nil)
    }

    /// embed_prefix (docs/SPEC.md §3) and the VLM pass over the kept positions. `lap(stage)` is called
    /// after the "vision" and "prefix" stages when timing.
    public func enqueuePrefix(observer: SamplingObserver?, lap: ((String) -> Void)?) {
        let m = model, b = shape.batch, n = m.dims.vision.tokensPerImage, w = m.dims.vlm.width
        let l = shape.languageTokens, cams = shape.cameraCount, p = shape.prefixTokens(n)
        if let vision {
            let count = shape.cameras.count * b, hidden = m.dims.vision.hidden, cameras = shape.cameras
            m.vision.embedImages(images.ref, count: count, buffers: vision, trace: observer.map { o in { name, ref in
                for (j, c) in cameras.enumerated() {
                    if name.hasPrefix("siglip") && c != 0 { continue }   // siglip_layer0_* for camera 0 only, as the fixtures
                    let key = name.hasPrefix("siglip") ? name : "\(name)_cam\(c)"
                    o.observe(key, shape: [b, n, hidden], segments: (0..<b).map { r in (ref + (j * b + r) * n * hidden, n * hidden) },
                              backend: m.backend)
                }
            } })
            for (j, c) in shape.cameras.enumerated() {
                for r in 0..<b {
                    backend.copy(vision.out + (j * b + r) * n * w, sourceStride: 0, to: prefix + (r * p + c * n) * w,
                                 destinationStride: 0, rows: 1, width: n * w)
                }
                observer?.observe("img_emb_cam\(c)", shape: [b, n, w], vision.out + j * b * n * w, backend: backend)
            }
        }
        lap?("vision")
        // Language: embedding row × embed_scale, the scale cast to the weight dtype (45.25 in bf16).
        var scale = Float(Double(w).squareRoot())
        if m.bf16 { scale = BFloat16.round(scale) }
        for r in 0..<b {
            backend.embed(m.embedTokens, ids: ids + r * l, count: l, scale: scale, roundToBF16: m.bf16,
                          out: prefix + (r * p + cams * n) * w, ldOut: w)
        }
        if let observer {
            observer.observe("lang_emb", shape: [b, l, w], segments: (0..<b).map { (prefix + ($0 * p + cams * n) * w, l * w) }, backend: backend)
            observer.observe("prefix_embs", shape: [b, p, w], prefix.ref, backend: backend)
        }
        var embeddings = prefix.ref
        if let keptPrefix {
            // Contiguous runs of kept positions, copied for every row at once.
            let k = shape.kept.count
            var i = 0
            while i < k {
                var j = i
                while j + 1 < k && shape.kept[j + 1] == shape.kept[j] + 1 { j += 1 }
                for r in 0..<b {
                    backend.copy(prefix + (r * p + shape.kept[i]) * w, sourceStride: 0, to: keptPrefix + (r * k + i) * w,
                                 destinationStride: 0, rows: 1, width: (j - i + 1) * w)
                }
                i = j + 1
            }
            embeddings = keptPrefix.ref
        }
        backend.checkFinite(embeddings, count: b * shape.kept.count * w, status: status(0))
        pass.runPrefix(embeddings: embeddings, trace: observer)
        pass.checkCacheFinite(status: status(1))
        lap?("prefix")
    }

    /// The denoise loop: x ← x + dt·v_t for t = 1, 1 + dt, …; each step's x is checked for finiteness.
    public func enqueueLoop(observer: SamplingObserver?, lap: ((String) -> Void)?) {
        let m = model, steps = shape.steps, b = shape.batch, h = m.config.chunkSize, a = m.config.maxActionDim
        let v = velocity.ref, dt = Float(-1.0 / Double(steps))
        m.embedState(state.ref, suffix)
        for k in 0..<steps {
            m.denoiseStep(pass, suffix, x: x, step: k, into: v, trace: k == 0 ? observer : nil)
            if let rtcTarget, let rtcWeights {
                // Names as the RTC fixtures store them: x at the start of step k, raw and guided velocity.
                observer?.observe("x_t_\(k)", shape: [b, h, a], x, backend: backend)
                observer?.observe("v_t_\(k)", shape: [b, h, a], v, backend: backend)
                let t = FlowMatching.timeF64(step: k, steps: steps)
                let g = RealTimeChunking.guidanceWeight(tau: Float(1 - t), maxGuidanceWeight: rtcConfig.maxGuidanceWeight)
                backend.guideVelocity(x: x, velocity: v, target: rtcTarget.ref, weights: rtcWeights.ref, rows: b * h, width: a,
                                      t: Float(t), guidance: g)
                observer?.observe("v_t_guided_\(k)", shape: [b, h, a], v, backend: backend)
            }
            backend.eulerStep(x, velocity: v, count: actionCount, dt: dt)
            backend.checkFinite(x, count: actionCount, status: status(1 + 2 * b + k))
            if let observer {
                observer.observeStep("v_t_all", step: k, of: steps, itemShape: [b, h, a], v, backend: backend)
                observer.observeStep("x_t_all", step: k, of: steps, itemShape: [b, h, a], x, backend: backend)
                observer.observeStep("suffix_out_all", step: k, of: steps, itemShape: pass.normed.shape, pass.normed.ref, backend: backend)
            }
            lap?(StageTimings.stepName(k))
        }
        if let observer {
            observer.observe("timesteps", shape: [steps], values: .float32((0..<steps).map { FlowMatching.time(step: $0, steps: steps) }))
            if m.kind == .pi05 {
                let shape = [steps, b, m.dims.expert.width]
                observer.observe("time_emb_all", shape: shape, suffix.timeEmbedding.ref, backend: backend)
                observer.observe("time_mlp_hidden_all", shape: shape, suffix.hidden.ref, backend: backend)
                observer.observe("adarms_cond_all", shape: shape, suffix.conditioning.ref, backend: backend)
            }
        }
    }

    // MARK: Finish

    /// The one download of a call: the actions [B, H, A] and the finite checks; throws
    /// `NonFiniteError` naming the first stage that produced a NaN or ±inf.
    public func finish(observer: SamplingObserver? = nil) throws -> Tensor {
        try finish(downloaded: backend.download(result.ref, count: result.count), observer: observer)
    }

    /// `finish` on the `outputCount` floats of `outputs` downloaded by the caller (e.g. asynchronously).
    public func finish(downloaded all: [Float], observer: SamplingObserver? = nil) throws -> Tensor {
        precondition(all.count == result.count, "\(all.count) downloaded floats, expected \(result.count)")
        for (i, name) in statusNames.enumerated() where all[actionCount + 3 * i] != 0 {
            throw NonFiniteError(stage: name, index: Int(all[actionCount + 3 * i + 1]), value: all[actionCount + 3 * i + 2])
        }
        let b = shape.batch, h = model.config.chunkSize, a = model.config.maxActionDim
        observer?.observe("actions", shape: [b, h, a], values: .float32(Array(all[0..<actionCount])))
        return Tensor(shape: [b, h, a], values: Array(all[0..<actionCount]))
    }
}
