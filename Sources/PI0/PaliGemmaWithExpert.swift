// PaliGemma's language model and the action expert sharing attention (docs/SPEC.md §4.1, §5.2):
// the KV cache and the two-stack pass of one observation.
//
// The VLM runs once over the prefix and leaves, per layer, K (after RoPE) and V in a cache whose rows
// [0, P) hold the prefix. Every denoise step the expert writes its own suffix K/V into rows [P, P+S)
// of the same buffers and attends over all P+S rows: the prefix cache is reused in place, never copied
// (LeRobot clones it every step). All buffers belong to the backend and are allocated here, once per
// plan; `upload` writes the observation's masks and RoPE tables; the passes allocate nothing.
// Letters: B batch, P prefix, S suffix, T tokens of the current pass, W width, E expert width,
// H heads, KV kv heads, D head dim.
import PI0Tensor

/// Per-layer keys and values, each [B, capacity, KV·D].
final class KVCache: @unchecked Sendable {
    let batch: Int, capacity: Int, kvDim: Int
    let keys: [DeviceTensor], values: [DeviceTensor]

    init(layers: Int, batch: Int, capacity: Int, kvDim: Int, backend: ComputeBackend) {
        self.batch = batch; self.capacity = capacity; self.kvDim = kvDim
        keys = (0..<layers).map { _ in DeviceTensor(shape: [batch, capacity, kvDim], backend: backend) }
        values = (0..<layers).map { _ in DeviceTensor(shape: [batch, capacity, kvDim], backend: backend) }
    }

    func keyRow(_ layer: Int, _ b: Int, _ t: Int) -> TensorRef { keys[layer] + (b * capacity + t) * kvDim }
    func valueRow(_ layer: Int, _ b: Int, _ t: Int) -> TensorRef { values[layer] + (b * capacity + t) * kvDim }
}

/// The VLM and the expert over one observation shape: `runPrefix` fills the cache, `runExpert` runs a suffix over it.
final class PaliGemmaWithExpert: @unchecked Sendable {
    let vlm: Gemma, expert: Gemma
    let batch: Int, prefixTokens: Int, suffixTokens: Int
    let suffixAtt: [Int]
    let cache: KVCache
    let scratch: GemmaScratch
    let prefixMask: DeviceTensor           // [B, P, P] additive
    let prefixCos: DeviceTensor, prefixSin: DeviceTensor        // [B, P, D]
    let suffixMask: DeviceTensor           // [B, S, P+S] additive
    let suffixCos: DeviceTensor, suffixSin: DeviceTensor        // [B, S, D]
    let prefixStream: DeviceTensor         // [B, P, W] the VLM's residual stream
    let stream: DeviceTensor               // [B, S, E] the expert's residual stream
    let normed: DeviceTensor               // [B, S, E] after the final norm
    private var backend: ComputeBackend { vlm.backend }

    /// `suffixAtt`: the suffix tokens' attention flags (a 1 starts a new block, `AttentionMasks`).
    init(vlm: Gemma, expert: Gemma, batch b: Int, prefixTokens p: Int, suffixAtt: [Int]) {
        self.vlm = vlm; self.expert = expert; self.suffixAtt = suffixAtt
        let s = suffixAtt.count, c = p + s, d = vlm.dims.headDim, be = vlm.backend
        batch = b; prefixTokens = p; suffixTokens = s
        cache = KVCache(layers: vlm.dims.depth, batch: b, capacity: c, kvDim: vlm.dims.kvHeads * d, backend: be)
        scratch = GemmaScratch(backend: be, passes: [(b * p, vlm.dims), (b * s, expert.dims)])
        prefixMask = DeviceTensor(shape: [b, p, p], backend: be)
        prefixCos = DeviceTensor(shape: [b, p, d], backend: be); prefixSin = DeviceTensor(shape: [b, p, d], backend: be)
        suffixMask = DeviceTensor(shape: [b, s, c], backend: be)
        let de = expert.dims.headDim
        suffixCos = DeviceTensor(shape: [b, s, de], backend: be); suffixSin = DeviceTensor(shape: [b, s, de], backend: be)
        prefixStream = DeviceTensor(shape: [b, p, vlm.dims.width], backend: be)
        stream = DeviceTensor(shape: [b, s, expert.dims.width], backend: be)
        normed = DeviceTensor(shape: [b, s, expert.dims.width], backend: be)
    }

    /// Suffix positions: number of valid prefix tokens + 0, 1, …, S−1.
    static func suffixPositions(prefixPad: [Bool], count: Int) -> [Int] {
        let valid = prefixPad.filter { $0 }.count
        return (0..<count).map { valid + $0 }
    }

    /// The observation's masks and RoPE tables (from its pad flags [B][P] and positions [B][P]): the
    /// only uploads of this stage. Returns the host tables for observers.
    @discardableResult
    func upload(pad: [[Bool]], positions: [[Int]], via backend: TensorUploading) -> (prefixCos: [Float], prefixSin: [Float], suffixCos: [Float], suffixSin: [Float]) {
        let p = prefixTokens, s = suffixTokens, c = cache.capacity
        var pm = [Float](repeating: 0, count: batch * p * p), sm = [Float](repeating: 0, count: batch * s * c)
        var pc: [Float] = [], ps: [Float] = [], sc: [Float] = [], ss: [Float] = []
        pm.withUnsafeMutableBufferPointer { pmp in sm.withUnsafeMutableBufferPointer { smp in
            for r in 0..<batch {
                AttentionMasks.additive(AttentionMasks.make2D(pad: pad[r], att: [Int](repeating: 0, count: p)), into: pmp.baseAddress! + r * p * p)
                let allowed = AttentionMasks.suffix(prefixPad: pad[r], suffixPad: [Bool](repeating: true, count: s), suffixAtt: suffixAtt)
                AttentionMasks.additive(allowed, into: smp.baseAddress! + r * s * c)
            }
        } }
        for r in 0..<batch {
            let (c1, s1) = RoPE.tables(positions: positions[r], invFreq: vlm.invFreq, roundToBF16: vlm.bf16)
            pc += c1; ps += s1
            let (c2, s2) = RoPE.tables(positions: Self.suffixPositions(prefixPad: pad[r], count: s), invFreq: expert.invFreq, roundToBF16: expert.bf16)
            sc += c2; ss += s2
        }
        backend.upload(pm, to: prefixMask.ref); backend.upload(sm, to: suffixMask.ref)
        backend.upload(pc, to: prefixCos.ref); backend.upload(ps, to: prefixSin.ref)
        backend.upload(sc, to: suffixCos.ref); backend.upload(ss, to: suffixSin.ref)
        return (pc, ps, sc, ss)
    }

    /// The VLM over the prefix embeddings [B, P, W], filling the cache rows [0, P). The last layer's
    /// attention output and MLP and the final norm cannot reach the actions; they run only when
    /// intermediates are observed.
    func runPrefix(embeddings: TensorRef, trace: SamplingObserver?) {
        let b = batch, p = prefixTokens, w = vlm.dims.width, depth = vlm.dims.depth
        let x = prefixStream.ref
        backend.copy(embeddings, sourceStride: 0, to: x, destinationStride: 0, rows: 1, width: b * p * w)
        if vlm.bf16 { backend.roundToBF16(x, rows: 1, width: b * p * w, ld: 0) }   // cast to the layer dtype
        let pass = GemmaPass(model: vlm, batch: b, tokens: p, offset: 0, cache: cache, mask: prefixMask.ref,
                             cos: prefixCos.ref, sin: prefixSin.ref, scratch: scratch)
        for li in 0..<depth {
            if li == 0 { trace?.observe("vlm_layer0_in", shape: [b, p, w], x, backend: backend) }
            if li == depth - 1 && trace == nil {
                pass.attentionBlock(li, x: x, kvOnly: true)
            } else {
                pass.layer(li, x: x)
            }
            if li == 0 { trace?.observe("vlm_layer0_out", shape: [b, p, w], x, backend: backend) }
        }
        if let trace {
            let d = vlm.dims.headDim
            trace.observe("vlm_layer0_rope_cos", shape: [b, p, d], prefixCos.ref, backend: backend)
            trace.observe("vlm_layer0_rope_sin", shape: [b, p, d], prefixSin.ref, backend: backend)
            pass.finalNorm(x, out: scratch.normed.ref)
            trace.observe("prefix_out", shape: [b, p, w], scratch.normed.ref, backend: backend)
            observeCache(trace)
        }
    }

    /// Cache rows [0, P) as the fixtures store them: [depth, B, KV, P, D].
    private func observeCache(_ trace: SamplingObserver) {
        let b = batch, p = prefixTokens, d = vlm.dims.headDim, kvh = vlm.dims.kvHeads
        for (name, tensors) in [("keys", cache.keys), ("values", cache.values)] {
            func segments(_ layers: ArraySlice<DeviceTensor>) -> [(TensorRef, Int)] {
                layers.flatMap { t in (0..<b).flatMap { r in (0..<kvh).flatMap { h in (0..<p).map { i in
                    (t + (r * cache.capacity + i) * cache.kvDim + h * d, d)
                } } } }
            }
            trace.observe("kv_all_\(name)", shape: [tensors.count, b, kvh, p, d], segments: segments(tensors[...]), backend: backend)
            trace.observe("kv_layer0_\(name)", shape: [b, kvh, p, d], segments: segments(tensors.prefix(1)), backend: backend)
            trace.observe("kv_last_\(name)", shape: [b, kvh, p, d], segments: segments(tensors.suffix(1)), backend: backend)
        }
    }

    /// The expert over the suffix embeddings [B, S, E] (float32), attending to the cached prefix; the
    /// final-norm output lands in `normed`. π0.5: `modulations` are the adaRMS modulations of this
    /// step's conditioning, norm j's [B, 3E] at `modulations + j·normStride` (`Gemma.modulations`,
    /// docs/SPEC_PI05.md §4-§6).
    func runExpert(_ suffix: TensorRef, modulations: TensorRef? = nil, normStride: Int = 0, trace: SamplingObserver?) {
        let b = batch, s = suffixTokens, e = expert.dims.width
        let xs = stream.ref
        backend.copy(suffix, sourceStride: 0, to: xs, destinationStride: 0, rows: 1, width: b * s * e)
        if expert.bf16 { backend.roundToBF16(xs, rows: 1, width: b * s * e, ld: 0) }   // cast to the expert's dtype
        trace?.observe("expert_layer0_step0_in", shape: [b, s, e], xs, backend: backend)
        var pass = GemmaPass(model: expert, batch: b, tokens: s, offset: prefixTokens, cache: cache, mask: suffixMask.ref,
                             cos: suffixCos.ref, sin: suffixSin.ref, scratch: scratch)
        pass.modulations = modulations; pass.modulationNormStride = normStride
        pass.trace = trace; pass.traceName = "expert_layer0_step0"
        for li in 0..<expert.dims.depth {
            pass.layer(li, x: xs)
            if li == 0 { trace?.observe("expert_layer0_step0_out", shape: [b, s, e], xs, backend: backend) }
        }
        pass.finalNorm(xs, out: normed.ref)
        if let trace {
            trace.observe("suffix_out_step0", shape: [b, s, e], normed.ref, backend: backend)
            trace.observe("expert_layer0_step0_rope_cos", shape: [b, s, expert.dims.headDim], suffixCos.ref, backend: backend)
            trace.observe("expert_layer0_step0_rope_sin", shape: [b, s, expert.dims.headDim], suffixSin.ref, backend: backend)
        }
    }

    /// Status checks of the cache's last layer, keys then values, each [B] rows of P·KV·D: every
    /// denoise step reads them, and a non-finite value anywhere in the prefix pass reaches them.
    func checkCacheFinite(status: TensorRef) {
        let p = prefixTokens, kv = cache.kvDim
        for (i, layers) in [cache.keys, cache.values].enumerated() {
            guard let t = layers.last else { continue }
            for r in 0..<batch {
                backend.checkFinite(t + r * cache.capacity * kv, count: p * kv, status: status + 3 * (i * batch + r))
            }
        }
    }
}
