// The reference implementation of the operations π0 uses (elementwise, normalisation, RoPE, softmax,
// attention): plain loops that `ReferenceBackend` runs, that every fast backend (PI0CPU, PI0CUDA) is
// tested against, and whose elementwise ops CPU backends share. Written to follow PyTorch's float32
// evaluation order (one rounding per PyTorch op, no fused multiply-adds) so that
// float32 results agree with LeRobot to a few ulps. Shapes: x is [rows, width] row-major.
import Foundation

public enum ReferenceOps {
    /// LayerNorm (SigLIP): (x − mean)/sqrt(var + eps)·w + b, biased variance. Statistics in Double.
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float],
                                 eps: Float, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            layerNorm(x, rows: rows, width: width, weight: w.baseAddress!, bias: b.baseAddress!, eps: eps, out: out)
        } }
    }

    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>, eps: Float, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * width, yr = out + r * width
            var sum = 0.0
            for i in 0..<width { sum += Double(xr[i]) }
            let mean = sum / Double(width)
            var sq = 0.0
            for i in 0..<width { let d = Double(xr[i]) - mean; sq += d * d }
            let rstd = Float(1.0 / (sq / Double(width) + Double(eps)).squareRoot())
            let meanF = Float(mean)
            for i in 0..<width { yr[i] = (xr[i] - meanF) * rstd * weight[i] + bias[i] }
        }
    }

    /// Gemma RMSNorm (PiGemmaRMSNorm): float32(x)·rsqrt(mean(x²) + eps)·(1 + w), optionally rounded
    /// to bf16 at the end (the cast back to a bf16 input's dtype).
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float,
                               roundToBF16: Bool, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            rmsNorm(x, rows: rows, width: width, weight: w.baseAddress, eps: eps, roundToBF16: roundToBF16, out: out)
        }
    }

    /// `weight` nil: w = 0 (the normalised rows alone).
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>?, eps: Float,
                               roundToBF16: Bool, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * width, yr = out + r * width
            var sq = 0.0
            for i in 0..<width { sq += Double(xr[i]) * Double(xr[i]) }
            let variance = Float(sq / Double(width))
            let rs = 1 / (variance + eps).squareRoot()
            for i in 0..<width {
                let n = xr[i] * rs
                let y = n * (1 + (weight?[i] ?? 0))
                yr[i] = roundToBF16 ? BFloat16.round(y) : y
            }
        }
    }

    /// tanh-approximated GELU (PyTorch `gelu(approximate="tanh")`, HF "gelu_pytorch_tanh").
    @inline(__always) public static func geluTanh(_ x: Float) -> Float {
        let kBeta: Float = 0.7978845608028654   // sqrt(2/π)
        let kKappa: Float = 0.044715
        let inner = kBeta * (x + kKappa * x * x * x)
        return 0.5 * x * (1 + tanhf(inner))
    }

    /// In place: x = gelu_tanh(x).
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = geluTanh(x[i]) }
    }

    /// Gemma MLP middle: out[i] = gelu_tanh(gate[i]) · up[i]; in bf16 mode gelu's output and the
    /// product are each rounded (two bf16 PyTorch ops). `gate` and `up` rows have stride `ld`.
    public static func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int,
                                   ldIn: Int, roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        for r in 0..<rows {
            let g = gate + r * ldIn, u = up + r * ldIn, o = out + r * ldOut
            for i in 0..<width {
                if roundToBF16 {
                    o[i] = BFloat16.round(BFloat16.round(geluTanh(g[i])) * u[i])
                } else {
                    o[i] = geluTanh(g[i]) * u[i]
                }
            }
        }
    }

    /// In place SiLU: x·sigmoid(x), computed as PyTorch does, x / (1 + exp(−x)).
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = x[i] / (1 + expf(-x[i])) }
    }

    /// In place residual add: x += y (rounded to bf16 when asked).
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        if roundToBF16 {
            for i in 0..<count { x[i] = BFloat16.round(x[i] + y[i]) }
        } else {
            for i in 0..<count { x[i] += y[i] }
        }
    }

    /// Rotary embedding, half-split ("rotate_half") convention, in place on `tokens` rows of
    /// `heads × headDim` values at stride `stride`: x·cos + rotate_half(x)·sin with
    /// rotate_half([x1, x2]) = [−x2, x1]. cos/sin: [tokens, headDim]. In bf16 mode each product
    /// and the sum are rounded, as three bf16 PyTorch ops would.
    public static func applyRoPE(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, stride: Int,
                                 cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, roundToBF16: Bool) {
        precondition(headDim % 2 == 0, "applyRoPE: odd head dim \(headDim)")
        let half = headDim / 2
        // rotate_half pairs element i with i + half: both outputs of a pair are computed from the old pair,
        // so no temporary row is needed. rot = (−v[i + half], v[i]); out = v·cos + rot·sin, per element.
        for t in 0..<tokens {
            let c = cos + t * headDim, s = sin + t * headDim
            for h in 0..<heads {
                let v = x + t * stride + h * headDim
                for i in 0..<half {
                    let lo = v[i], hi = v[i + half]
                    if roundToBF16 {
                        v[i] = BFloat16.round(BFloat16.round(lo * c[i]) + BFloat16.round(-hi * s[i]))
                        v[i + half] = BFloat16.round(BFloat16.round(hi * c[i + half]) + BFloat16.round(lo * s[i + half]))
                    } else {
                        let a = lo * c[i], b = -hi * s[i]
                        v[i] = a + b
                        let a2 = hi * c[i + half], b2 = lo * s[i + half]
                        v[i + half] = a2 + b2
                    }
                }
            }
        }
    }

    /// Softmax of one row in place, float32 (max-subtracted, as PyTorch).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var m = -Float.infinity
        for i in 0..<count { m = Swift.max(m, x[i]) }
        var sum: Float = 0
        for i in 0..<count { let e = expf(x[i] - m); x[i] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<count { x[i] *= inv }
    }

    /// Plain attention: for every head, scores = (q·kᵀ)·scale + mask, softmax, probs·v.
    public static func referenceAttention(_ a: AttentionArgs) {
        let group = a.heads / a.kvHeads
        var scores = [Float](repeating: 0, count: a.keys)
        scores.withUnsafeMutableBufferPointer { sp in
            let s = sp.baseAddress!
            for t in 0..<a.queries {
                for h in 0..<a.heads {
                    let qv = a.q + t * a.qStride + h * a.headDim
                    let kvh = h / group
                    for j in 0..<a.keys {
                        let kv = a.k + j * a.kStride + kvh * a.headDim
                        var acc: Float = 0
                        for d in 0..<a.headDim { acc += qv[d] * kv[d] }
                        if a.roundToBF16 { acc = BFloat16.round(acc) }
                        var x = acc * a.scale
                        if a.roundToBF16 { x = BFloat16.round(x) }
                        if let mask = a.mask { x += mask[t * a.maskStride + j] }
                        s[j] = x
                    }
                    softmax(s, count: a.keys)
                    if a.roundToBF16 { BFloat16.round(s, count: a.keys) }
                    let o = a.out + t * a.outStride + h * a.headDim
                    for d in 0..<a.headDim {
                        var acc: Float = 0
                        for j in 0..<a.keys { acc += s[j] * a.v[j * a.vStride + kvh * a.headDim + d] }
                        o[d] = a.roundToBF16 ? BFloat16.round(acc) : acc
                    }
                }
            }
        }
    }
}
