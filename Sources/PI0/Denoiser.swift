// The prefix pass (VLM → KV cache, once per observation) and the denoise steps (action expert
// attending to the cached prefix), docs/SPEC.md §4.1 and §5. All buffers, masks, positions and RoPE
// tables are built once per observation; the loop over steps allocates nothing.
import PI0Tensor

final class PrefixState: @unchecked Sendable {
    let model: PI0Model
    let prefix: Prefix
    let suffixTokens: Int
    let cache: KVCache
    let scratch = GemmaScratch()
    // Prefix pass inputs.
    let prefixMask: Tensor                 // [B, P, P] additive
    let prefixCos: [Float], prefixSin: [Float]
    // Suffix (denoise) inputs, identical for every step.
    let suffixMask: Tensor                 // [B, S, P+S] additive
    let suffixCos: [Float], suffixSin: [Float]
    let suffix: Tensor                     // [B, S, E]
    let actionTime: Tensor                 // [B·H, 2E]
    let hidden: Tensor                     // [B·H, E]
    let stream: Tensor                     // [B, S, E] the expert's residual stream
    let normed: Tensor                     // [B, S, E] after the final norm

    init(model: PI0Model, prefix: Prefix, suffixTokens s: Int) {
        self.model = model; self.prefix = prefix; self.suffixTokens = s
        let b = prefix.batch, p = prefix.tokens, d = model.dims.vlm.headDim, e = model.dims.expert.width
        cache = KVCache(layers: model.dims.vlm.depth, batch: b, capacity: p + s, kvDim: model.dims.vlm.kvHeads * d)
        prefixMask = Tensor(shape: [b, p, p])
        suffixMask = Tensor(shape: [b, s, p + s])
        var pc: [Float] = [], ps: [Float] = [], sc: [Float] = [], ss: [Float] = []
        let suffixAtt = [1, 1] + [Int](repeating: 0, count: max(s - 2, 0))   // state token, first action token
        for r in 0..<b {
            let allowed = AttentionMasks.make2D(pad: prefix.pad[r], att: [Int](repeating: 0, count: p))
            AttentionMasks.additive(allowed, into: prefixMask.data + r * p * p)
            let sAllowed = AttentionMasks.suffix(prefixPad: prefix.pad[r], suffixPad: [Bool](repeating: true, count: s), suffixAtt: suffixAtt)
            AttentionMasks.additive(sAllowed, into: suffixMask.data + r * s * (p + s))
            let (c1, s1) = RoPE.tables(positions: prefix.positions[r], invFreq: model.vlm.invFreq, roundToBF16: model.bf16)
            pc += c1; ps += s1
            // Suffix positions: number of valid prefix tokens + 0, 1, …, S−1.
            let valid = prefix.pad[r].filter { $0 }.count
            let (c2, s2) = RoPE.tables(positions: (0..<s).map { valid + $0 }, invFreq: model.expert.invFreq, roundToBF16: model.bf16)
            sc += c2; ss += s2
        }
        prefixCos = pc; prefixSin = ps; suffixCos = sc; suffixSin = ss
        suffix = Tensor(shape: [b, s, e])
        actionTime = Tensor(shape: [b * (s - 1), 2 * e])
        hidden = Tensor(shape: [b * (s - 1), e])
        stream = Tensor(shape: [b, s, e])
        normed = Tensor(shape: [b, s, e])
    }

    /// The VLM over the prefix, filling the cache rows [0, P). The last layer's attention output and
    /// MLP and the final norm cannot reach the actions; they run only when recording intermediates.
    func runPrefix(trace: IntermediateRecorder?) {
        let b = prefix.batch, p = prefix.tokens, w = model.dims.vlm.width, depth = model.vlm.dims.depth
        let x = prefix.embeddings.copy()
        if model.bf16 { BFloat16.round(x.data, count: x.count) }   // cast to the layer dtype
        prefixCos.withUnsafeBufferPointer { cosp in prefixSin.withUnsafeBufferPointer { sinp in
            let pass = GemmaPass(model: model.vlm, batch: b, tokens: p, offset: 0, cache: cache, mask: prefixMask.data,
                                 cos: cosp.baseAddress!, sin: sinp.baseAddress!, scratch: scratch)
            for li in 0..<depth {
                if li == 0 { trace?.record("vlm_layer0_in", shape: [b, p, w], floats: x.data) }
                if li == depth - 1 && trace == nil {
                    pass.attentionBlock(li, x: x.data, kvOnly: true)
                } else {
                    pass.layer(li, x: x.data)
                }
                if li == 0 { trace?.record("vlm_layer0_out", shape: [b, p, w], floats: x.data) }
            }
            if let trace {
                let d = model.dims.vlm.headDim
                trace.record("vlm_layer0_rope_cos", shape: [b, p, d], .float32(prefixCos))
                trace.record("vlm_layer0_rope_sin", shape: [b, p, d], .float32(prefixSin))
                let out = Tensor(shape: [b, p, w])
                model.vlm.rmsNorm(x.data, rows: b * p, weight: model.vlm.finalNorm, out: out.data)
                trace.record("prefix_out", shape: [b, p, w], floats: out.data)
                recordCache(trace)
            }
        } }
    }

    /// Cache rows [0, P) as the fixtures store them: [depth, B, KV, P, D].
    private func recordCache(_ trace: IntermediateRecorder) {
        let b = prefix.batch, p = prefix.tokens, d = model.dims.vlm.headDim, kvh = model.dims.vlm.kvHeads
        for (name, tensors) in [("keys", cache.keys), ("values", cache.values)] {
            var all: [Float] = []
            for t in tensors { for r in 0..<b { for h in 0..<kvh { for i in 0..<p {
                let row = t.data + (r * cache.capacity + i) * cache.kvDim + h * d
                all += UnsafeBufferPointer(start: row, count: d)
            } } } }
            let layer = b * kvh * p * d
            trace.record("kv_all_\(name)", shape: [tensors.count, b, kvh, p, d], .float32(all))
            trace.record("kv_layer0_\(name)", shape: [b, kvh, p, d], .float32(Array(all[0..<layer])))
            trace.record("kv_last_\(name)", shape: [b, kvh, p, d], .float32(Array(all[(all.count - layer)...])))
        }
    }

    /// One denoise step: v_t = action_out_proj(expert(embed_suffix(state, x_t, t))[:, −H:]).
    /// x: [B, H, A]; state: [B, max_state_dim]; v: [B, H, A].
    func denoiseStep(x: Tensor, t: Float, state: [Float], into v: Tensor, trace: IntermediateRecorder?) {
        let m = model, b = prefix.batch, p = prefix.tokens, s = suffixTokens, h = s - 1, e = m.dims.expert.width
        // embed_suffix (float32 in both modes): [state token, action/time tokens].
        m.actionInProj(x.data, rows: b * h, into: actionTime.data, ldy: 2 * e)
        FlowMatching.timeEmbedding(t: t, dim: e, minPeriod: m.config.minPeriod, maxPeriod: m.config.maxPeriod, into: actionTime.row(0) + e)
        for r in 1..<max(b * h, 1) { (actionTime.row(r) + e).update(from: actionTime.row(0) + e, count: e) }
        trace?.record("suffix_action_time_in_step0", shape: [b, h, 2 * e], floats: actionTime.data)
        m.actionTimeMlpIn(actionTime.data, rows: b * h, into: hidden.data)
        m.backend.silu(hidden.data, count: b * h * e)
        state.withUnsafeBufferPointer { st in
            for r in 0..<b {
                m.stateProj(st.baseAddress! + r * m.config.maxStateDim, rows: 1, into: suffix.data + r * s * e)
                m.actionTimeMlpOut(hidden.data + r * h * e, rows: h, into: suffix.data + (r * s + 1) * e)
            }
        }
        trace?.record("suffix_embs_step0", shape: [b, s, e], floats: suffix.data)
        let xs = stream
        xs.data.update(from: suffix.data, count: suffix.count)
        if m.bf16 { BFloat16.round(xs.data, count: xs.count) }   // cast to the expert's dtype
        trace?.record("expert_layer0_step0_in", shape: [b, s, e], floats: xs.data)
        suffixCos.withUnsafeBufferPointer { cosp in suffixSin.withUnsafeBufferPointer { sinp in
            let pass = GemmaPass(model: m.expert, batch: b, tokens: s, offset: p, cache: cache, mask: suffixMask.data,
                                 cos: cosp.baseAddress!, sin: sinp.baseAddress!, scratch: scratch)
            for li in 0..<m.expert.dims.depth {
                pass.layer(li, x: xs.data)
                if li == 0 { trace?.record("expert_layer0_step0_out", shape: [b, s, e], floats: xs.data) }
            }
        } }
        let out = normed
        m.expert.rmsNorm(xs.data, rows: b * s, weight: m.expert.finalNorm, out: out.data)
        for r in 0..<b {
            m.actionOutProj(out.data + (r * s + 1) * e, rows: h, into: v.data + r * h * m.config.maxActionDim)
        }
        if let trace {
            trace.record("suffix_out_step0", shape: [b, s, e], floats: out.data)
            trace.record("v_t_step0", shape: [b, h, m.config.maxActionDim], floats: v.data)
            trace.record("suffix_position_ids", shape: [b, s], .int64((0..<b).flatMap { r in
                (0..<s).map { Int64(prefix.pad[r].filter { $0 }.count + $0) } }))
            trace.record("expert_layer0_step0_rope_cos", shape: [b, s, m.dims.expert.headDim], .float32(suffixCos))
            trace.record("expert_layer0_step0_rope_sin", shape: [b, s, m.dims.expert.headDim], .float32(suffixSin))
        }
    }
}
