// The reference implementation of the remaining model operations of `ComputeBackend` (adaptive
// RMSNorm, copies and gathers, patching, the time embedding, the Euler step, RTC guidance, the finite
// check), on host pointers, in PyTorch's float32 evaluation order (one rounding per PyTorch op).
// The reference and cpu backends run these; the cuda kernels are tested against them.
import Foundation

extension ReferenceOps {
    /// In place on x̂ [B·T, W]: x̂·(1 + scale) + shift (bf16-rounded when asked); modulation [B, 3W].
    public static func adaptiveModulate(_ x: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, width w: Int,
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

    /// x ← x + y·gate, gate = modulation[b, 2W..<3W] (gate, product and sum each rounded in bf16 mode).
    public static func gatedAdd(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, batch: Int, tokens: Int,
                                width w: Int, modulation m: UnsafePointer<Float>, roundToBF16: Bool) {
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

    public static func addPeriodic(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, period: Int) {
        precondition(period > 0 || count == 0, "addPeriodic: period \(period)")
        var j = 0
        for i in 0..<count {
            x[i] = x[i] + y[j]
            j += 1
            if j == period { j = 0 }
        }
    }

    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by s: Float, roundToBF16: Bool) {
        for i in 0..<count {
            let y = x[i] * s
            x[i] = roundToBF16 ? BFloat16.round(y) : y
        }
    }

    public static func roundToBF16(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int) {
        for r in 0..<rows { BFloat16.round(x + r * ld, count: width) }
    }

    /// Row copy with strides; `sourceStride` 0 repeats one row. Rows may not overlap.
    public static func copy(_ src: UnsafePointer<Float>, sourceStride: Int, to dst: UnsafeMutablePointer<Float>,
                            destinationStride: Int, rows: Int, width: Int) {
        for r in 0..<rows { (dst + r * destinationStride).update(from: src + r * sourceStride, count: width) }
    }

    /// out[j] = table[ids[j]]·scale (rounded when asked); ids are float32 integers. A bad id is a
    /// programming error (the model checks token ids against the vocabulary before uploading them).
    public static func embed(_ table: WeightTensor, ids: UnsafePointer<Float>, count: Int, scale: Float, roundToBF16: Bool,
                             out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let rows = table.shape[0], w = table.shape[1]
        for j in 0..<count {
            let id = Int(ids[j])
            precondition(id >= 0 && id < rows && Float(id) == ids[j], "token id \(ids[j]) outside the table of \(rows) rows")
            let dst = out + j * ldOut
            for i in 0..<w {
                let y = table.float(at: id * w + i) * scale
                dst[i] = roundToBF16 ? BFloat16.round(y) : y
            }
        }
    }

    /// im2col: patch (gy, gx) of image i → row i·G² + gy·G + gx, vector ordered (c, ky, kx).
    public static func patchify(_ images: UnsafePointer<Float>, count: Int, side: Int, patch ps: Int,
                                out: UnsafeMutablePointer<Float>) {
        let g = side / ps, t = g * g, width = 3 * ps * ps
        for i in 0..<count {
            let image = images + i * 3 * side * side
            for gy in 0..<g { for gx in 0..<g {
                let dst = out + (i * t + gy * g + gx) * width
                for c in 0..<3 { for ky in 0..<ps {
                    let src = image + c * side * side + (gy * ps + ky) * side + gx * ps
                    for kx in 0..<ps { dst[(c * ps + ky) * ps + kx] = src[kx] }
                } }
            } }
        }
    }

    /// LeRobot's `create_sinusoidal_pos_embedding` for one t, in float64 then cast to float32:
    /// [sin(a_0…a_{h−1}), cos(a_0…a_{h−1})], a_j = t·2π/period_j, period_j = min·(max/min)^(j/(h−1)),
    /// h = width/2 (t enters as the float32 value promoted to double).
    public static func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: UnsafeMutablePointer<Float>) {
        let half = width / 2, time = Double(t)
        for j in 0..<half {
            let fraction = half > 1 ? Double(j) / Double(half - 1) : 0   // torch.linspace(0, 1, half)
            let period = minPeriod * Foundation.pow(maxPeriod / minPeriod, fraction)
            let scaling = 1.0 / period * 2 * Double.pi
            let a = scaling * time
            out[j] = Float(Foundation.sin(a)); out[half + j] = Float(Foundation.cos(a))
        }
    }

    /// x ← x + dt·v (two float32 roundings, as PyTorch's `x + dt * v`).
    public static func eulerStep(_ x: UnsafeMutablePointer<Float>, velocity v: UnsafePointer<Float>, count: Int, dt: Float) {
        for i in 0..<count {
            let d = dt * v[i]
            x[i] = x[i] + d
        }
    }

    /// RTC guidance (docs/RTC.md), LeRobot's operation order; rows of weight 0 are skipped exactly.
    public static func guideVelocity(x: UnsafePointer<Float>, velocity v: UnsafeMutablePointer<Float>, target y: UnsafePointer<Float>,
                                     weights w: UnsafePointer<Float>, rows: Int, width: Int, t: Float, guidance g: Float) {
        for row in 0..<rows {
            let wr = w[row]
            if wr == 0 { continue }          // (Y − x1)·0 = 0 and v − g·0 = v: skip exactly
            for i in (row * width)..<((row + 1) * width) {
                let x1 = x[i] - t * v[i]
                let err = (y[i] - x1) * wr
                v[i] = v[i] - g * err
            }
        }
    }

    /// status[0..<3] = [1, first index, value] at the first NaN or ±inf, else [0, 0, 0].
    public static func checkFinite(_ x: UnsafePointer<Float>, count: Int, status: UnsafeMutablePointer<Float>) {
        status[0] = 0; status[1] = 0; status[2] = 0
        // Σ x·0 is 0 for finite x and NaN as soon as one x is NaN or ±inf: one branch-free pass first.
        var acc: Float = 0
        for i in 0..<count { acc += x[i] * 0 }
        if acc == 0 { return }
        for i in 0..<count where !x[i].isFinite {
            status[0] = 1; status[1] = Float(i); status[2] = x[i]
            return
        }
    }
}
