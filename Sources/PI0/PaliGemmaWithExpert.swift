// PaliGemma's language model and the action expert sharing attention (docs/SPEC.md §4.1, §5.2):
// the KV cache and the two-stack pass of one observation.
//
// The VLM runs once over the prefix and leaves, per layer, K (after RoPE) and V in a cache whose rows
// [0, P) hold the prefix. Every denoise step the expert writes its own suffix K/V into rows [P, P+S)
// of the same buffers and attends over all P+S rows: the prefix cache is reused in place, never copied
// (LeRobot clones it every step). Masks, positions and RoPE tables are built once per observation; the
// expert pass allocates nothing. Letters: B batch, P prefix, S suffix, T tokens of the current pass,
// W width, E expert width, H heads, KV kv heads, D head dim.
import PI0Tensor

/// Per-layer keys and values, each [B, capacity, KV·D].
final class KVCache: @unchecked Sendable {
    let batch: Int, capacity: Int, kvDim: Int
    let keys: [Tensor], values: [Tensor]

    init(layers: Int, batch: Int, capacity: Int, kvDim: Int) {
        self.batch = batch; self.capacity = capacity; self.kvDim = kvDim
        keys = (0..<layers).map { _ in Tensor(shape: [batch, capacity, kvDim]) }
        values = (0..<layers).map { _ in Tensor(shape: [batch, capacity, kvDim]) }
    }

    func keyRow(_ layer: Int, _ b: Int, _ t: Int) -> UnsafeMutablePointer<Float> { keys[layer].data + (b * capacity + t) * kvDim }
    func valueRow(_ layer: Int, _ b: Int, _ t: Int) -> UnsafeMutablePointer<Float> { values[layer].data + (b * capacity + t) * kvDim }
}

/// The VLM and the expert over one observation: `runPrefix` fills the cache, `runExpert` runs a suffix over it.
final class PaliGemmaWithExpert: @unchecked Sendable {
    let vlm: Gemma, expert: Gemma
    let prefix: Prefix
    let suffixTokens: Int
    let cache: KVCache
    let scratch = GemmaScratch()
    // Prefix pass inputs.
    let prefixMask: Tensor                 // [B, P, P] additive
    let prefixCos: [Float], prefixSin: [Float]
    // Expert pass inputs, identical for every step.
    let suffixMask: Tensor                 // [B, S, P+S] additive
    let suffixCos: [Float], suffixSin: [Float]
    let stream: Tensor                     // [B, S, E] the expert's residual stream
    let normed: Tensor                     // [B, S, E] after the final norm

    /// `suffixAtt`: the suffix tokens' attention flags (a 1 starts a new block, `AttentionMasks`).
    init(vlm: Gemma, expert: Gemma, prefix: Prefix, suffixAtt: [Int]) {
        self.vlm = vlm; self.expert = expert; self.prefix = prefix
        let s = suffixAtt.count
        suffixTokens = s
        let b = prefix.batch, p = prefix.tokens, d = vlm.dims.headDim, e = expert.dims.width
        cache = KVCache(layers: vlm.dims.depth, batch: b, capacity: p + s, kvDim: vlm.dims.kvHeads * d)
        prefixMask = Tensor(shape: [b, p, p])
        suffixMask = Tensor(shape: [b, s, p + s])
        var pc: [Float] = [], ps: [Float] = [], sc: [Float] = [], ss: [Float] = []
        for r in 0..<b {
            let allowed = AttentionMasks.make2D(pad: prefix.pad[r], att: [Int](repeating: 0, count: p))
            AttentionMasks.additive(allowed, into: prefixMask.data + r * p * p)
            let sAllowed = AttentionMasks.suffix(prefixPad: prefix.pad[r], suffixPad: [Bool](repeating: true, count: s), suffixAtt: suffixAtt)
            AttentionMasks.additive(sAllowed, into: suffixMask.data + r * s * (p + s))
            let (c1, s1) = RoPE.tables(positions: prefix.positions[r], invFreq: vlm.invFreq, roundToBF16: vlm.bf16)
            pc += c1; ps += s1
            let (c2, s2) = RoPE.tables(positions: Self.suffixPositions(prefixPad: prefix.pad[r], count: s), invFreq: expert.invFreq, roundToBF16: expert.bf16)
            sc += c2; ss += s2
        }
        prefixCos = pc; prefixSin = ps; suffixCos = sc; suffixSin = ss
        stream = Tensor(shape: [b, s, e])
        normed = Tensor(shape: [b, s, e])
    }

    /// Suffix positions: number of valid prefix tokens + 0, 1, …, S−1.
    static func suffixPositions(prefixPad: [Bool], count: Int) -> [Int] {
        let valid = prefixPad.filter { $0 }.count
        return (0..<count).map { valid + $0 }
    }

    /// The VLM over the prefix, filling the cache rows [0, P). The last layer's attention output and
    /// MLP and the final norm cannot reach the actions; they run only when recording intermediates.
    func runPrefix(trace: IntermediateRecorder?) {
        let b = prefix.batch, p = prefix.tokens, w = vlm.dims.width, depth = vlm.dims.depth
        let x = prefix.embeddings.copy()
        if vlm.bf16 { BFloat16.round(x.data, count: x.count) }   // cast to the layer dtype
        prefixCos.withUnsafeBufferPointer { cosp in prefixSin.withUnsafeBufferPointer { sinp in
            let pass = GemmaPass(model: vlm, batch: b, tokens: p, offset: 0, cache: cache, mask: prefixMask.data,
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
                let d = vlm.dims.headDim
                trace.record("vlm_layer0_rope_cos", shape: [b, p, d], .float32(prefixCos))
                trace.record("vlm_layer0_rope_sin", shape: [b, p, d], .float32(prefixSin))
                let out = Tensor(shape: [b, p, w])
                pass.finalNorm(x.data, out: out.data)
                trace.record("prefix_out", shape: [b, p, w], floats: out.data)
                recordCache(trace)
            }
        } }
    }

    /// Cache rows [0, P) as the fixtures store them: [depth, B, KV, P, D].
    private func recordCache(_ trace: IntermediateRecorder) {
        let b = prefix.batch, p = prefix.tokens, d = vlm.dims.headDim, kvh = vlm.dims.kvHeads
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

    /// The expert over the suffix embeddings [B, S, E] (float32), attending to the cached prefix; the
    /// final-norm output lands in `normed`. π0.5: `modulations` are the adaRMS modulations of this
    /// step's conditioning, norm j's [B, 3E] at `modulations + j·normStride` (`Gemma.modulations`,
    /// docs/SPEC_PI05.md §4-§6).
    func runExpert(_ suffix: Tensor, modulations: UnsafePointer<Float>? = nil, normStride: Int = 0, trace: IntermediateRecorder?) {
        let b = prefix.batch, p = prefix.tokens, s = suffixTokens, e = expert.dims.width
        let xs = stream
        xs.data.update(from: suffix.data, count: suffix.count)
        if expert.bf16 { BFloat16.round(xs.data, count: xs.count) }   // cast to the expert's dtype
        trace?.record("expert_layer0_step0_in", shape: [b, s, e], floats: xs.data)
        suffixCos.withUnsafeBufferPointer { cosp in suffixSin.withUnsafeBufferPointer { sinp in
            var pass = GemmaPass(model: expert, batch: b, tokens: s, offset: p, cache: cache, mask: suffixMask.data,
                                 cos: cosp.baseAddress!, sin: sinp.baseAddress!, scratch: scratch)
            pass.modulations = modulations; pass.modulationNormStride = normStride
            pass.trace = trace; pass.traceName = "expert_layer0_step0"
            for li in 0..<expert.dims.depth {
                pass.layer(li, x: xs.data)
                if li == 0 { trace?.record("expert_layer0_step0_out", shape: [b, s, e], floats: xs.data) }
            }
            pass.finalNorm(xs.data, out: normed.data)
        } }
        if let trace {
            trace.record("suffix_out_step0", shape: [b, s, e], floats: normed.data)
            trace.record("suffix_position_ids", shape: [b, s], .int64((0..<b).flatMap { Self.suffixPositions(prefixPad: prefix.pad[$0], count: s).map(Int64.init) }))
            trace.record("expert_layer0_step0_rope_cos", shape: [b, s, expert.dims.headDim], .float32(suffixCos))
            trace.record("expert_layer0_step0_rope_sin", shape: [b, s, expert.dims.headDim], .float32(suffixSin))
        }
    }
}
