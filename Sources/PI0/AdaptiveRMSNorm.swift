// Gemma's RMSNorm parameters, and π0.5's adaptive RMSNorm (docs/SPEC_PI05.md §4, LeRobot
// policies/pi_gemma.py:85-128). A plain norm scales by (1 + w). An adaptive norm (the π0.5 expert's
// input, post-attention and final norms) has no weight; its `dense` layer maps the conditioning vector
// c [B, E] to m = dense(c) = [scale | shift | gate], each [B, W], and
//   out  = x̂·(1 + scale) + shift          x̂ = float32(x)·rsqrt(mean(x²) + eps)   (float32, then the hidden dtype)
//   x   ← x + y·gate                       the gated residual (pi_gemma.py:54-66), gate in the hidden dtype
// The modulation is the same for every token of a batch row. `dense` stays float32 in bf16 mode.
import PI0Tensor

/// The parameters of one Gemma RMSNorm.
enum GemmaNorm {
    /// `weight` [W], used as (1 + w).
    case plain([Float])
    /// `dense`: [3W, E] + bias [3W], float32 in both precision modes.
    case adaptive(Linear)

    /// `scope` is the norm's module (e.g. `layers.0.input_layernorm`); its keys are declared here.
    init(_ scope: WeightScope, width: Int, adaptive: Bool, backend: ComputeBackend) throws {
        if adaptive {
            self = .adaptive(try Linear(scope, "dense", out: 3 * width, in: width, bias: true, backend: backend, bf16: false,
                                        hint: "adaRMS dense: 3 × expert width by expert width (the conditioning width)"))
        } else {
            self = .plain(try scope.floats("weight", [width], hint: "width"))
        }
    }
}

enum AdaptiveRMSNorm {
    /// In place on x̂ [B·T, W] (float32 normalised rows): out = x̂·(1 + scale) + shift, rounded to bf16
    /// when asked. `modulation`: [B, 3W] (scale | shift | gate); row r uses batch row r / T.
    static func modulate(_ x: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, width w: Int,
                         modulation m: UnsafePointer<Float>, roundToBF16: Bool) {
        for b in 0..<batch {
            let scale = m + b * 3 * w, shift = scale + w
            for t in 0..<tokens {
                let row = x + (b * tokens + t) * w
                for i in 0..<w {
                    let g = 1 + scale[i]               // torch: (1 + scale), then ·normed, then + shift
                    let p = row[i] * g
                    let y = p + shift[i]
                    row[i] = roundToBF16 ? BFloat16.round(y) : y
                }
            }
        }
    }

    /// The gated residual x ← x + y·gate for x, y [B·T, W], gate = modulation[b, 2W..<3W] (cast to the
    /// hidden dtype: each of gate, product and sum rounded to bf16 in bf16 mode).
    static func gatedAdd(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, batch: Int, tokens: Int, width w: Int,
                         modulation m: UnsafePointer<Float>, roundToBF16: Bool) {
        for b in 0..<batch {
            let gate = m + b * 3 * w + 2 * w
            for t in 0..<tokens {
                let xr = x + (b * tokens + t) * w, yr = y + (b * tokens + t) * w
                if roundToBF16 {
                    for i in 0..<w { xr[i] = BFloat16.round(xr[i] + BFloat16.round(yr[i] * BFloat16.round(gate[i]))) }
                } else {
                    for i in 0..<w {
                        let p = yr[i] * gate[i]
                        xr[i] = xr[i] + p
                    }
                }
            }
        }
    }

    /// The gate [B, W] as the norm returns it (in the hidden dtype), for recording.
    static func gate(modulation m: UnsafePointer<Float>, batch: Int, width w: Int, roundToBF16: Bool) -> [Float] {
        (0..<batch).flatMap { b in (0..<w).map { i in
            let g = m[b * 3 * w + 2 * w + i]
            return roundToBF16 ? BFloat16.round(g) : g
        } }
    }
}
