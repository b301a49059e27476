// Gemma decoder weights and the per-layer math (docs/SPEC.md §4). The same type serves PaliGemma's
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
    /// RoPE inverse frequencies; bf16-rounded in bf16 mode (LeRobot casts the buffer, docs/SPEC.md §7).
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

/// Scratch buffers for one Gemma pass, allocated once and reused by every layer and denoise step.
final class GemmaScratch: @unchecked Sendable {
    let normed = Scratch(), q = Scratch(), k = Scratch(), v = Scratch(), attn = Scratch()
    let gate = Scratch(), up = Scratch()
}

/// Rotary position embedding tables (docs/SPEC.md §4, "RoPE").
enum RoPE {
    /// inv_freq[i] = 1 / θ^(2i/d), float32, as transformers computes it; rounded to bf16 when the
    /// module was cast to bf16.
    static func inverseFrequencies(headDim d: Int, theta: Float, roundToBF16: Bool) -> [Float] {
        (0..<(d / 2)).map { i in
            let exponent = Float(2 * i) / Float(d)
            let f = 1 / Foundation.pow(theta, exponent)
            return roundToBF16 ? BFloat16.round(f) : f
        }
    }

    /// cos/sin tables [tokens, d] for the given positions: angle = pos·inv_freq (float32),
    /// emb = [angle, angle], then cast to the hidden dtype (bf16 rounding in bf16 mode).
    static func tables(positions: [Int], invFreq: [Float], roundToBF16: Bool) -> (cos: [Float], sin: [Float]) {
        let half = invFreq.count, d = 2 * half
        var c = [Float](repeating: 0, count: positions.count * d), s = c
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                var cv = Foundation.cos(angle), sv = Foundation.sin(angle)
                if roundToBF16 { cv = BFloat16.round(cv); sv = BFloat16.round(sv) }
                c[t * d + i] = cv; c[t * d + half + i] = cv
                s[t * d + i] = sv; s[t * d + half + i] = sv
            }
        }
        return (c, s)
    }
}

import Foundation
