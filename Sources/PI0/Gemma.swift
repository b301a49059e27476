// Gemma decoder weights and the per-layer math (docs/SPEC.md §4, docs/SPEC_PI05.md §5). The same type
// serves PaliGemma's Gemma-2B (VLM) and the Gemma-300M action expert; only the dimensions differ, and in
// π0.5 the expert's norms are adaptive (AdaptiveRMSNorm.swift):
//   h  = x + o_proj(Attn(RMSNorm_in(x)))                         π0.5 expert: x + o_proj(…)·gate_in
//   x' = h + down_proj(gelu_tanh(gate_proj(n)) · up_proj(n)),  n = RMSNorm_post(h)      … ·gate_post
// No biases. RMSNorm weights are used as (1 + w) and are float32 in both precision modes. k|v and
// gate|up each run as one product (`Linear(fusing:)`): exact, each output is the same dot product. q stays
// its own product: the attention kernels fold MQA heads into rows only when a token's queries are
// contiguous, and a fused q|k|v cost ~90 ms a sample on the CPU (docs/PERFORMANCE.md). A plain norm and
// the products that read it (k|v and q; gate|up) are one backend call, `rmsNormLinear`: the composition
// on the host, fused on cuda (docs/CUDA.md, "Fusion"); the same values either way.
// Letters: R = B·T rows, W width, F mlp, H heads, KV kv heads, D head dim.
import PI0Tensor

struct GemmaLayer {
    let inputNorm: GemmaNorm
    let q: Linear, o: Linear
    /// k_proj | v_proj as one product [R, 2·KV·D] (exact; the checkpoint keys stay separate).
    let kv: Linear
    let postNorm: GemmaNorm
    /// gate_proj | up_proj as one product [R, 2F].
    let gateUp: Linear
    let down: Linear

    init(_ s: WeightScope, _ d: GemmaDims, adaptiveNorms: Bool, backend: ComputeBackend, bf16: Bool) throws {
        let a = s.scoped("self_attn"), m = s.scoped("mlp")
        inputNorm = try GemmaNorm(s.scoped("input_layernorm"), width: d.width, adaptive: adaptiveNorms, backend: backend)
        q = try Linear(a, "q_proj", out: d.heads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16,
                       hint: "num_heads × head_dim by width")
        kv = try Linear(a, fusing: [("k_proj", d.kvHeads * d.headDim, "num_kv_heads × head_dim by width"),
                                    ("v_proj", d.kvHeads * d.headDim, "")], in: d.width, bias: false, backend: backend, bf16: bf16)
        o = try Linear(a, "o_proj", out: d.width, in: d.heads * d.headDim, bias: false, backend: backend, bf16: bf16)
        postNorm = try GemmaNorm(s.scoped("post_attention_layernorm"), width: d.width, adaptive: adaptiveNorms, backend: backend)
        gateUp = try Linear(m, fusing: [("gate_proj", d.mlpDim, "mlp_dim by width"), ("up_proj", d.mlpDim, "")], in: d.width,
                            bias: false, backend: backend, bf16: bf16)
        down = try Linear(m, "down_proj", out: d.width, in: d.mlpDim, bias: false, backend: backend, bf16: bf16)
    }
}

final class Gemma: @unchecked Sendable {
    let dims: GemmaDims
    let layers: [GemmaLayer]
    let finalNorm: GemmaNorm
    /// π0.5's expert: every norm is adaptive (conditioned on a vector of this stack's width).
    let adaptiveNorms: Bool
    let bf16: Bool
    let backend: ComputeBackend
    /// RoPE inverse frequencies; bf16-rounded in bf16 mode (LeRobot casts the buffer, docs/SPEC.md §7).
    let invFreq: [Float]

    /// `scope` holds `layers.{i}.…` and `norm.…`.
    init(_ scope: WeightScope, dims: GemmaDims, adaptiveNorms: Bool = false, backend: ComputeBackend, bf16: Bool) throws {
        self.dims = dims; self.bf16 = bf16; self.backend = backend; self.adaptiveNorms = adaptiveNorms
        layers = try (0..<dims.depth).map {
            try GemmaLayer(scope.scoped("layers.\($0)"), dims, adaptiveNorms: adaptiveNorms, backend: backend, bf16: bf16)
        }
        finalNorm = try GemmaNorm(scope.scoped("norm"), width: dims.width, adaptive: adaptiveNorms, backend: backend)
        invFreq = RoPE.inverseFrequencies(headDim: dims.headDim, theta: dims.ropeTheta, roundToBF16: bf16)
    }

    /// Number of adaptive norms (two per layer and the final one): rows of `modulations`.
    var normCount: Int { 2 * dims.depth + 1 }

    /// The adaRMS modulations of every norm for `rows` conditioning vectors `cond` [rows, W]:
    /// out [normCount, rows, 3W]; norm 2l = layer l's input norm, 2l+1 its post-attention norm, 2·depth
    /// the final norm. One product per norm over all rows (e.g. every denoise step's conditioning at once).
    func modulations(cond: TensorRef, rows batch: Int, into out: TensorRef) {
        let stride = batch * 3 * dims.width
        func dense(_ n: GemmaNorm, _ j: Int) {
            if case .adaptive(let d) = n { d(cond, rows: batch, into: out + j * stride) }
        }
        for (l, layer) in layers.enumerated() { dense(layer.inputNorm, 2 * l); dense(layer.postNorm, 2 * l + 1) }
        dense(finalNorm, 2 * dims.depth)
    }

    /// RMSNorm of x [B·T, W] into `out`, then `first` (and `second`) on it, each output y at row stride
    /// = its out features. A plain norm is one backend call, `rmsNormLinear` (fused where the backend can:
    /// cuda); an adaptive norm runs `norm`, then the products. The same values either way.
    func normLinear(_ n: GemmaNorm, _ x: TensorRef, batch: Int, tokens: Int, modulation: TensorRef?, out: TensorRef,
                    _ first: Linear, into y1: TensorRef, _ second: Linear? = nil, into y2: TensorRef? = nil) {
        let rows = batch * tokens
        if case .plain(let w) = n {
            backend.rmsNormLinear(x, rows: rows, width: dims.width, weight: w.ref, eps: dims.rmsNormEps, roundToBF16: bf16, normed: out,
                                  first.product(into: y1), y2.flatMap { y in second.map { $0.product(into: y) } })
            first.roundOutput(y1, rows: rows)
            if let second, let y2 { second.roundOutput(y2, rows: rows) }
        } else {
            norm(n, x, batch: batch, tokens: tokens, modulation: modulation, out: out)
            first(out, rows: rows, into: y1)
            if let second, let y2 { second(out, rows: rows, into: y2) }
        }
    }

    /// RMSNorm of x [B·T, W] into out. Adaptive norms need that norm's `modulation` [B, 3W].
    func norm(_ n: GemmaNorm, _ x: TensorRef, batch: Int, tokens: Int, modulation: TensorRef?, out: TensorRef) {
        switch n {
        case .plain(let w):
            backend.rmsNorm(x, rows: batch * tokens, width: dims.width, weight: w.ref, eps: dims.rmsNormEps, roundToBF16: bf16, out: out)
        case .adaptive:
            guard let modulation else { preconditionFailure("adaptive RMSNorm without a modulation") }
            backend.rmsNorm(x, rows: batch * tokens, width: dims.width, weight: nil, eps: dims.rmsNormEps, roundToBF16: false, out: out)
            backend.adaptiveModulate(out, batch: batch, tokens: tokens, width: dims.width, modulation: modulation, roundToBF16: bf16)
        }
    }
}

/// One pass of a Gemma stack over T tokens per batch row, attending to cache rows [0, offset + T).
struct GemmaPass {
    let model: Gemma
    let batch: Int, tokens: Int, offset: Int
    let cache: KVCache
    /// Additive mask [B, T, offset + T].
    let mask: TensorRef
    /// RoPE tables [B, T, D].
    let cos: TensorRef, sin: TensorRef
    let scratch: GemmaScratch
    /// Adaptive norms only: this pass's modulations, norm j's [B, 3W] at `modulations + j·modulationNormStride`.
    var modulations: TensorRef? = nil
    var modulationNormStride = 0
    /// Announces layer 0's internals as `"\(traceName)_<what>"` (the π0.5 expert's step 0).
    var trace: SamplingObserver? = nil
    var traceName = ""

    var keyCount: Int { offset + tokens }
    private var backend: ComputeBackend { model.backend }

    /// Norm `j`'s modulation [B, 3W] (see `Gemma.modulations`), nil for a plain stack.
    private func modulation(_ j: Int) -> TensorRef? {
        modulations.map { $0 + j * modulationNormStride }
    }

    private func record(_ li: Int, _ what: String, _ p: TensorRef) {
        guard li == 0, let trace else { return }
        trace.observe("\(traceName)_\(what)", shape: [batch, tokens, model.dims.width], p, backend: backend)
    }

    /// The gate [B, 1, W] of adaptive norm j as the norm returns it (in the hidden dtype).
    private func recordGate(_ li: Int, _ what: String, norm j: Int) {
        guard li == 0, let trace, let m = modulation(j) else { return }
        let w = model.dims.width
        var gate = (0..<batch).flatMap { b in backend.download(m + b * 3 * w + 2 * w, count: w) }
        if model.bf16 { gate = gate.map(BFloat16.round) }
        trace.observe("\(traceName)_\(what)", shape: [batch, 1, w], values: .float32(gate))
    }

    /// x += y, or the gated residual x += y·gate of adaptive norm `j`.
    private func residual(_ x: TensorRef, _ y: TensorRef, norm j: Int) {
        if let m = modulation(j) {
            backend.gatedAdd(x, y, batch: batch, tokens: tokens, width: model.dims.width, modulation: m, roundToBF16: model.bf16)
        } else {
            backend.add(x, y, count: batch * tokens * model.dims.width, roundToBF16: model.bf16)
        }
    }

    /// Attention half of layer `li`, in place on x [B·T, W]. With `kvOnly` only this layer's K/V are
    /// written to the cache (enough for the VLM's last layer, whose output never reaches the actions).
    func attentionBlock(_ li: Int, x: TensorRef, kvOnly: Bool = false) {
        let d = model.dims, l = model.layers[li], rows = batch * tokens
        let qDim = d.heads * d.headDim, kvDim = d.kvHeads * d.headDim
        let n = scratch.normed.ref, q = scratch.q.ref, kv = scratch.kv.ref, attn = scratch.attn.ref
        // One product for K and V: row r holds K (RoPE'd in place) then V, stride 2·KV·D; Q beside it
        // from the same normalised rows (the norm fused into both where the backend can).
        model.normLinear(l.inputNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * li), out: n,
                         l.kv, into: kv, kvOnly ? nil : l.q, into: kvOnly ? nil : q)
        record(li, "input_norm_out", n); recordGate(li, "input_norm_gate", norm: 2 * li)
        backend.applyRoPE(kv, rows: rows, heads: d.kvHeads, headDim: d.headDim, stride: 2 * kvDim, cos: cos, sin: sin, roundToBF16: model.bf16)
        for b in 0..<batch {
            let row = kv + b * tokens * 2 * kvDim
            backend.copy(row, sourceStride: 2 * kvDim, to: cache.keyRow(li, b, offset), destinationStride: kvDim, rows: tokens, width: kvDim)
            backend.copy(row + kvDim, sourceStride: 2 * kvDim, to: cache.valueRow(li, b, offset), destinationStride: kvDim,
                         rows: tokens, width: kvDim)
        }
        if kvOnly { return }
        backend.applyRoPE(q, rows: rows, heads: d.heads, headDim: d.headDim, stride: qDim, cos: cos, sin: sin, roundToBF16: model.bf16)
        for b in 0..<batch {
            // transformers' eager attention: (q·kᵀ)·D^-0.5 + mask, softmax in float32.
            backend.attention(AttentionCall(
                q: q + b * tokens * qDim, qStride: qDim, k: cache.keyRow(li, b, 0), kStride: kvDim, v: cache.valueRow(li, b, 0), vStride: kvDim,
                mask: mask + b * tokens * keyCount, maskStride: keyCount, out: attn + b * tokens * qDim, outStride: qDim,
                queries: tokens, keys: keyCount, heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim,
                scale: 1 / Float(d.headDim).squareRoot(), roundToBF16: model.bf16))
        }
        l.o(attn, rows: rows, into: n)
        record(li, "attn_out", n)
        residual(x, n, norm: 2 * li)
    }

    /// The MLP half of layer `li`, in place on the residual stream x: [R, W].
    func mlpBlock(_ li: Int, x: TensorRef) {
        let l = model.layers[li], rows = batch * tokens, f = model.dims.mlpDim
        let n = scratch.normed.ref, gu = scratch.gateUp.ref
        // One product for gate and up (row r: gate then up, stride 2F); gelu(gate)·up overwrites the gate half.
        model.normLinear(l.postNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * li + 1), out: n, l.gateUp, into: gu)
        record(li, "post_attn_norm_out", n); recordGate(li, "post_attn_norm_gate", norm: 2 * li + 1)
        backend.geluTanhMul(gate: gu, up: gu + f, rows: rows, width: f, ldIn: 2 * f, roundToBF16: model.bf16, out: gu, ldOut: 2 * f)
        l.down(gu, rows: rows, ldx: 2 * f, into: n)
        record(li, "mlp_out", n)
        residual(x, n, norm: 2 * li + 1)
    }

    func layer(_ li: Int, x: TensorRef) {
        attentionBlock(li, x: x)
        mlpBlock(li, x: x)
    }

    /// The final norm of x [B·T, W] into out.
    func finalNorm(_ x: TensorRef, out: TensorRef) {
        model.norm(model.finalNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * model.dims.depth), out: out)
    }
}
