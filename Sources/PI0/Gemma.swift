// Gemma decoder weights and the per-layer math (PI0_SPEC.md §4). The same type serves PaliGemma's
// Gemma-2B (VLM) and the Gemma-300M action expert; only the dimensions differ.
//   h  = x + o_proj(Attn(RMSNorm_in(x)))
//   x' = h + down_proj(gelu_tanh(gate_proj(n)) · up_proj(n)),  n = RMSNorm_post(h)
// No biases. RMSNorm weights are used as (1 + w) and are float32 in both precision modes.
// Letters: R = B·T rows, W width, F mlp, H heads, KV kv heads, D head dim.
import PI0Tensor

struct GemmaLayer {
    let inputNorm: [Float]
    let q: Linear, k: Linear, v: Linear, o: Linear
    let postNorm: [Float]
    let gate: Linear, up: Linear, down: Linear

    init(_ s: WeightScope, _ d: GemmaDims, backend: ComputeBackend, bf16: Bool) throws {
        let a = s.scoped("self_attn"), m = s.scoped("mlp")
        inputNorm = try s.floats("input_layernorm.weight", [d.width], hint: "width")
        q = try Linear(a, "q_proj", out: d.heads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16,
                       hint: "num_heads × head_dim by width")
        k = try Linear(a, "k_proj", out: d.kvHeads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16,
                       hint: "num_kv_heads × head_dim by width")
        v = try Linear(a, "v_proj", out: d.kvHeads * d.headDim, in: d.width, bias: false, backend: backend, bf16: bf16)
        o = try Linear(a, "o_proj", out: d.width, in: d.heads * d.headDim, bias: false, backend: backend, bf16: bf16)
        postNorm = try s.floats("post_attention_layernorm.weight", [d.width])
        gate = try Linear(m, "gate_proj", out: d.mlpDim, in: d.width, bias: false, backend: backend, bf16: bf16, hint: "mlp_dim by width")
        up = try Linear(m, "up_proj", out: d.mlpDim, in: d.width, bias: false, backend: backend, bf16: bf16)
        down = try Linear(m, "down_proj", out: d.width, in: d.mlpDim, bias: false, backend: backend, bf16: bf16)
    }
}

final class Gemma: @unchecked Sendable {
    let dims: GemmaDims
    let layers: [GemmaLayer]
    let finalNorm: [Float]
    let bf16: Bool
    let backend: ComputeBackend
    /// RoPE inverse frequencies; bf16-rounded in bf16 mode (LeRobot casts the buffer, PI0_SPEC.md §7).
    let invFreq: [Float]

    /// `scope` holds `layers.{i}.…` and `norm.weight`.
    init(_ scope: WeightScope, dims: GemmaDims, backend: ComputeBackend, bf16: Bool) throws {
        self.dims = dims; self.bf16 = bf16; self.backend = backend
        layers = try (0..<dims.depth).map { try GemmaLayer(scope.scoped("layers.\($0)"), dims, backend: backend, bf16: bf16) }
        finalNorm = try scope.floats("norm.weight", [dims.width])
        invFreq = RoPE.inverseFrequencies(headDim: dims.headDim, theta: dims.ropeTheta, roundToBF16: bf16)
    }

    func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, weight: [Float], out: UnsafeMutablePointer<Float>) {
        backend.rmsNorm(x, rows: rows, width: dims.width, weight: weight, eps: dims.rmsNormEps, roundToBF16: bf16, out: out)
    }

    /// The MLP half of layer `l`, in place on the residual stream x: [R, W].
    func mlpBlock(_ l: GemmaLayer, x: UnsafeMutablePointer<Float>, rows: Int, scratch: GemmaScratch) {
        let w = dims.width, f = dims.mlpDim
        let n = scratch.normed.get(rows * w), g = scratch.gate.get(rows * f), u = scratch.up.get(rows * f)
        rmsNorm(x, rows: rows, weight: l.postNorm, out: n)
        l.gate(n, rows: rows, into: g)
        l.up(n, rows: rows, into: u)
        backend.geluTanhMul(gate: g, up: u, rows: rows, width: f, ldIn: f, roundToBF16: bf16, out: g, ldOut: f)
        l.down(g, rows: rows, into: n)
        backend.add(x, n, count: rows * w, roundToBF16: bf16)
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

    var keyCount: Int { offset + tokens }

    /// Attention half of layer `li`, in place on x [B·T, W]. With `kvOnly` only this layer's K/V are
    /// written to the cache (enough for the VLM's last layer, whose output never reaches the actions).
    func attentionBlock(_ li: Int, x: UnsafeMutablePointer<Float>, kvOnly: Bool = false) {
        let d = model.dims, l = model.layers[li], rows = batch * tokens
        let w = d.width, qDim = d.heads * d.headDim, kvDim = d.kvHeads * d.headDim
        let n = scratch.normed.get(rows * w), q = scratch.q.get(rows * qDim)
        let k = scratch.k.get(rows * kvDim), v = scratch.v.get(rows * kvDim), attn = scratch.attn.get(rows * qDim)
        model.rmsNorm(x, rows: rows, weight: l.inputNorm, out: n)
        l.k(n, rows: rows, into: k)
        l.v(n, rows: rows, into: v)
        for b in 0..<batch {
            let kb = k + b * tokens * kvDim
            CPUOps.applyRoPE(kb, tokens: tokens, heads: d.kvHeads, headDim: d.headDim, stride: kvDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            cache.keyRow(li, b, offset).update(from: kb, count: tokens * kvDim)
            cache.valueRow(li, b, offset).update(from: v + b * tokens * kvDim, count: tokens * kvDim)
        }
        if kvOnly { return }
        l.q(n, rows: rows, into: q)
        for b in 0..<batch {
            let qb = q + b * tokens * qDim
            CPUOps.applyRoPE(qb, tokens: tokens, heads: d.heads, headDim: d.headDim, stride: qDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            // transformers' eager attention: (q·kᵀ)·D^-0.5 + mask, softmax in float32.
            model.backend.attention(AttentionArgs(
                q: qb, qStride: qDim, k: cache.keyRow(li, b, 0), kStride: kvDim, v: cache.valueRow(li, b, 0), vStride: kvDim,
                mask: mask + b * tokens * keyCount, maskStride: keyCount, out: attn + b * tokens * qDim, outStride: qDim,
                queries: tokens, keys: keyCount, heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim,
                scale: 1 / Float(d.headDim).squareRoot(), roundToBF16: model.bf16))
        }
        l.o(attn, rows: rows, into: n)
        model.backend.add(x, n, count: rows * w, roundToBF16: model.bf16)
    }

    func layer(_ li: Int, x: UnsafeMutablePointer<Float>) {
        attentionBlock(li, x: x)
        model.mlpBlock(model.layers[li], x: x, rows: batch * tokens, scratch: scratch)
    }
}

/// Scratch buffers for one Gemma pass, allocated once and reused by every layer and denoise step.
final class GemmaScratch: @unchecked Sendable {
    let normed = Scratch(), q = Scratch(), k = Scratch(), v = Scratch(), attn = Scratch()
    let gate = Scratch(), up = Scratch()
}
