// Gemma's RMSNorm parameters, and π0.5's adaptive RMSNorm (docs/SPEC_PI05.md §4, LeRobot
// policies/pi_gemma.py:85-128). A plain norm scales by (1 + w). An adaptive norm (the π0.5 expert's
// input, post-attention and final norms) has no weight; its `dense` layer maps the conditioning vector
// c [B, E] to m = dense(c) = [scale | shift | gate], each [B, W], and
//   out  = x̂·(1 + scale) + shift          x̂ = float32(x)·rsqrt(mean(x²) + eps)   (float32, then the hidden dtype)
//   x   ← x + y·gate                       the gated residual (pi_gemma.py:54-66), gate in the hidden dtype
// The modulation is the same for every token of a batch row. `dense` stays float32 in bf16 mode. The
// arithmetic is the backend's (`adaptiveModulate`, `gatedAdd`; ReferenceOps+Model.swift in PI0Tensor).
import PI0Tensor

/// The parameters of one Gemma RMSNorm.
enum GemmaNorm {
    /// `weight` [W], used as (1 + w), uploaded to the backend at load.
    case plain(DeviceTensor)
    /// `dense`: [3W, E] + bias [3W], float32 in both precision modes.
    case adaptive(Linear)

    /// `scope` is the norm's module (e.g. `layers.0.input_layernorm`); its keys are declared here.
    init(_ scope: WeightScope, width: Int, adaptive: Bool, backend: ComputeBackend) throws {
        if adaptive {
            self = .adaptive(try Linear(scope, "dense", out: 3 * width, in: width, bias: true, backend: backend, bf16: false,
                                        role: .adaptiveNorm(fanIn: width), hint: "adaRMS dense: 3 × expert width by expert width (the conditioning width)"))
        } else {
            self = .plain(DeviceTensor(shape: [width], uploading: try scope.floats("weight", [width], role: .norm, hint: "width"), backend: backend))
        }
    }
}

