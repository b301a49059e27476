// Gemma decoder weights and the per-layer math (docs/SPEC.md §4, docs/SPEC_PI05.md §5). The same type
// serves PaliGemma's Gemma-2B (VLM) and the Gemma-300M action expert; only the dimensions differ, and in
// π0.5 the expert's norms are adaptive (AdaptiveRMSNorm.swift):
//   h  = x + o_proj(Attn(RMSNorm_in(x)))                         π0.5 expert: x + o_proj(…)·gate_in
//   x' = h + down_proj(gelu_tanh(gate_proj(n)) · up_proj(n)),  n = RMSNorm_post(h)      … ·gate_post
// No biases. RMSNorm weights are used as (1 + w) and are float32 in both precision modes.
// Letters: R = B·T rows, W width, F mlp, H heads, KV kv heads, D head dim.
import PI0Tensor

struct GemmaLayer {
    let inputNorm: GemmaNorm
    let q: Linear, k: Linear, v: Linear, o: Linear
    let postNorm: GemmaNorm
    let gate: Linear, up: Linear, down: Linear

    init(_ s: WeightScope, _ d: GemmaDims, adaptiveNorms: Bool, backend: ComputeBackend, bf16: Bool) throws {
        let a = s.scoped("self_attn"), m = s.scoped("mlp")
        inputNorm = try GemmaNorm(s.scoped("input_layernorm"), width: d.width, adaptive: adaptiveNorms, backend: backend)
        q = try Linear(a, "q_proj", out: d.heads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16,
                       hint: "num_heads × head_dim by width")
        k = try Linear(a, "k_proj", out: d.kvHeads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16,
                       hint: "num_kv_heads × head_dim by width")
        v = try Linear(a, "v_proj", out: d.kvHeads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16)
        o = try Linear(a, "o_proj", out: d.width, in: d.heads * d.headDim, bias: false, backend: backend, bf16: bf16)
        postNorm = try GemmaNorm(s.scoped("post_attention_layernorm"), width: d.width, adaptive: adaptiveNorms, backend: backend)
        gate = try Linear(m, "gate_proj", out: d.mlpDim, in: d.width, bias: false, backend: backend, bf16: bf16, hint: "mlp_dim by width")
        up = try Linear(m, "up_proj", out: d.mlpDim, in: d.width, bias: false, backend: backend, bf16: bf16)
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
    /// (1 + 0): an adaptive norm's x̂ comes from the backend's RMSNorm with this weight.
    private let zeroWeight: [Float]

    /// `scope` holds `layers.{i}.…` and `norm.…`.
    init(_ scope: WeightScope, dims: GemmaDims, adaptiveNorms: Bool = false, backend: ComputeBackend, bf16: Bool) throws {
        self.dims = dims; self.bf16 = bf16; self.backend = backend; self.adaptiveNorms = adaptiveNorms
        layers = try (0..<dims.depth).map {
            try GemmaLayer(scope.scoped("layers.\($0)"), dims, adaptiveNorms: adaptiveNorms, backend: backend, bf16: bf16)
        }
        finalNorm = try GemmaNorm(scope.scoped("norm"), width: dims.width, adaptive: adaptiveNorms, backend: backend)
        invFreq = RoPE.inverseFrequencies(headDim: dims.headDim, theta: dims.ropeTheta, roundToBF16: bf16)
        zeroWeight = [Float](repeating: 0, count: dims.width)
    }

    /// Number of adaptive norms (two per layer and the final one): rows of `modulations`.
    var normCount: Int { 2 * dims.depth + 1 }

    /// The adaRMS modulations of every norm for `rows` conditioning vectors `cond` [rows, W]:
    /// out [normCount, rows, 3W]; norm 2l = layer l's input norm, 2l+1 its post-attention norm, 2·depth
    /// the final norm. One product per norm over all rows (e.g. every denoise step's conditioning at once).
    func modulations(cond: UnsafePointer<Float>, rows batch: Int, into out: UnsafeMutablePointer<Float>) {
        let stride = batch * 3 * dims.width
        func dense(_ n: GemmaNorm, _ j: Int) {
            if case .adaptive(let d) = n { d(cond, rows: batch, into: out + j * stride) }
        }
        for (l, layer) in layers.enumerated() { dense(layer.inputNorm, 2 * l); dense(layer.postNorm, 2 * l + 1) }
        dense(finalNorm, 2 * dims.depth)
    }

    /// RMSNorm of x [B·T, W] into out. Adaptive norms need that norm's `modulation` [B, 3W].
    func norm(_ n: GemmaNorm, _ x: UnsafePointer<Float>, batch: Int, tokens: Int, modulation: UnsafePointer<Float>?,
              out: UnsafeMutablePointer<Float>) {
        switch n {
        case .plain(let w):
            backend.rmsNorm(x, rows: batch * tokens, width: dims.width, weight: w, eps: dims.rmsNormEps, roundToBF16: bf16, out: out)
        case .adaptive:
            guard let modulation else { preconditionFailure("adaptive RMSNorm without a modulation") }
            backend.rmsNorm(x, rows: batch * tokens, width: dims.width, weight: zeroWeight, eps: dims.rmsNormEps, roundToBF16: false, out: out)
            AdaptiveRMSNorm.modulate(out, batch: batch, tokens: tokens, width: dims.width, modulation: modulation, roundToBF16: bf16)
        }
    }
}

/// One pass of a Gemma stack over T tokens per batch row, attending to cache rows [0, offset + T).
struct GemmaPass {
    let model: Gemma
    let batch: Int, tokens: Int, offset: Int
    let cache: KVCache
    /// Additive mask [B, T, offset + T].
    let mask: UnsafePointer<Float>
    /// RoPE tables [B, T, D].
    let cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    let scratch: GemmaScratch
    /// Adaptive norms only: this pass's modulations, norm j's [B, 3W] at `modulations + j·modulationNormStride`.
    var modulations: UnsafePointer<Float>? = nil
    var modulationNormStride = 0
    /// Records layer 0's internals under `"\(traceName)_<what>"` (the π0.5 expert's step 0).
    var trace: IntermediateRecorder? = nil
    var traceName = ""

    var keyCount: Int { offset + tokens }

    /// Norm `j`'s modulation [B, 3W] (see `Gemma.modulations`), nil for a plain stack.
    private func modulation(_ j: Int) -> UnsafePointer<Float>? {
        modulations.map { $0 + j * modulationNormStride }
    }

    private func record(_ li: Int, _ what: String, _ p: UnsafePointer<Float>) {
        guard li == 0, let trace else { return }
        trace.record("\(traceName)_\(what)", shape: [batch, tokens, model.dims.width], floats: p)
    }

    private func recordGate(_ li: Int, _ what: String, norm j: Int) {
        guard li == 0, let trace, let m = modulation(j) else { return }
        trace.record("\(traceName)_\(what)", shape: [batch, 1, model.dims.width],
                     .float32(AdaptiveRMSNorm.gate(modulation: m, batch: batch, width: model.dims.width, roundToBF16: model.bf16)))
    }

    /// x += y, or the gated residual x += y·gate of adaptive norm `j`.
    private func residual(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, norm j: Int) {
        if let m = modulation(j) {
            AdaptiveRMSNorm.gatedAdd(x, y, batch: batch, tokens: tokens, width: model.dims.width, modulation: m, roundToBF16: model.bf16)
        } else {
            model.backend.add(x, y, count: batch * tokens * model.dims.width, roundToBF16: model.bf16)
        }
    }

    /// Attention half of layer `li`, in place on x [B·T, W]. With `kvOnly` only this layer's K/V are
    /// written to the cache (enough for the VLM's last layer, whose output never reaches the actions).
    func attentionBlock(_ li: Int, x: UnsafeMutablePointer<Float>, kvOnly: Bool = false) {
        let d = model.dims, l = model.layers[li], rows = batch * tokens
        let w = d.width, qDim = d.heads * d.headDim, kvDim = d.kvHeads * d.headDim
        let n = scratch.normed.get(rows * w), q = scratch.q.get(rows * qDim)
        let k = scratch.k.get(rows * kvDim), v = scratch.v.get(rows * kvDim), attn = scratch.attn.get(rows * qDim)
        model.norm(l.inputNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * li), out: n)
        record(li, "input_norm_out", n); recordGate(li, "input_norm_gate", norm: 2 * li)
        l.k(n, rows: rows, into: k)
        l.v(n, rows: rows, into: v)
        for b in 0..<batch {
            let kb = k + b * tokens * kvDim
            ReferenceOps.applyRoPE(kb, tokens: tokens, heads: d.kvHeads, headDim: d.headDim, stride: kvDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            cache.keyRow(li, b, offset).update(from: kb, count: tokens * kvDim)
            cache.valueRow(li, b, offset).update(from: v + b * tokens * kvDim, count: tokens * kvDim)
        }
        if kvOnly { return }
        l.q(n, rows: rows, into: q)
        for b in 0..<batch {
            let qb = q + b * tokens * qDim
            ReferenceOps.applyRoPE(qb, tokens: tokens, heads: d.heads, headDim: d.headDim, stride: qDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            // transformers' eager attention: (q·kᵀ)·D^-0.5 + mask, softmax in float32.
            model.backend.attention(AttentionArgs(
                q: qb, qStride: qDim, k: cache.keyRow(li, b, 0), kStride: kvDim, v: cache.valueRow(li, b, 0), vStride: kvDim,
                mask: mask + b * tokens * keyCount, maskStride: keyCount, out: attn + b * tokens * qDim, outStride: qDim,
                queries: tokens, keys: keyCount, heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim,
                scale: 1 / Float(d.headDim).squareRoot(), roundToBF16: model.bf16))
        }
        l.o(attn, rows: rows, into: n)
        record(li, "attn_out", n)
        residual(x, n, norm: 2 * li)
    }

    /// The MLP half of layer `li`, in place on the residual stream x: [R, W].
    func mlpBlock(_ li: Int, x: UnsafeMutablePointer<Float>) {
        let l = model.layers[li], rows = batch * tokens, w = model.dims.width, f = model.dims.mlpDim
        let n = scratch.normed.get(rows * w), g = scratch.gate.get(rows * f), u = scratch.up.get(rows * f)
        model.norm(l.postNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * li + 1), out: n)
        record(li, "post_attn_norm_out", n); recordGate(li, "post_attn_norm_gate", norm: 2 * li + 1)
        l.gate(n, rows: rows, into: g)
        l.up(n, rows: rows, into: u)
        model.backend.geluTanhMul(gate: g, up: u, rows: rows, width: f, ldIn: f, roundToBF16: model.bf16, out: g, ldOut: f)
        l.down(g, rows: rows, into: n)
        record(li, "mlp_out", n)
        residual(x, n, norm: 2 * li + 1)
    }

    func layer(_ li: Int, x: UnsafeMutablePointer<Float>) {
        attentionBlock(li, x: x)
        mlpBlock(li, x: x)
    }

    /// The final norm of x [B·T, W] into out.
    func finalNorm(_ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        model.norm(model.finalNorm, x, batch: batch, tokens: tokens, modulation: modulation(2 * model.dims.depth), out: out)
    }
}

/// Scratch buffers for one Gemma pass, allocated once and reused by every layer and denoise step.
final class GemmaScratch: @unchecked Sendable {
    let normed = Scratch(), q = Scratch(), k = Scratch(), v = Scratch(), attn = Scratch()
    let gate = Scratch(), up = Scratch()
}
