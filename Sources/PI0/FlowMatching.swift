// Flow matching (docs/SPEC.md §5.1, §6). π0's convention: t = 1 is pure noise and t = 0 the actions;
// x_t = t·noise + (1 − t)·actions, the network predicts u = noise − actions, and sampling integrates
// dx/dt = v from t = 1 to t = 0 with Euler steps of dt = −1/steps.
import Foundation

public enum FlowMatching {
    /// Sinusoidal time embedding of width `dim`, computed in float64 as LeRobot's
    /// `create_sinusoidal_pos_embedding`, then cast to float32: [sin(a_0…a_{h−1}), cos(a_0…a_{h−1})] with
    /// a_j = t·2π/period_j, period_j = min·(max/min)^(j/(h−1)), h = dim/2.
    public static func timeEmbeddingF64(t: Float, dim: Int, minPeriod: Double, maxPeriod: Double) -> [Double] {
        var out = [Double](repeating: 0, count: 2 * (dim / 2))
        angles(t: t, dim: dim, minPeriod: minPeriod, maxPeriod: maxPeriod) { j, half, a in
            out[j] = Foundation.sin(a); out[half + j] = Foundation.cos(a)
        }
        return out
    }

    public static func timeEmbedding(t: Float, dim: Int, minPeriod: Double, maxPeriod: Double) -> [Float] {
        if dim < 2 { return [] }
        return [Float](unsafeUninitializedCapacity: 2 * (dim / 2)) { buffer, count in
            timeEmbedding(t: t, dim: dim, minPeriod: minPeriod, maxPeriod: maxPeriod, into: buffer.baseAddress!)
            count = 2 * (dim / 2)
        }
    }

    /// `timeEmbedding` written into out[0..<dim] (no allocation; the denoise loop uses this one).
    public static func timeEmbedding(t: Float, dim: Int, minPeriod: Double, maxPeriod: Double, into out: UnsafeMutablePointer<Float>) {
        angles(t: t, dim: dim, minPeriod: minPeriod, maxPeriod: maxPeriod) { j, half, a in
            out[j] = Float(Foundation.sin(a)); out[half + j] = Float(Foundation.cos(a))
        }
    }

    /// body(j, h, a_j) for j < h = dim/2, a_j = t·2π/period_j in float64.
    private static func angles(t: Float, dim: Int, minPeriod: Double, maxPeriod: Double, _ body: (Int, Int, Double) -> Void) {
        let half = dim / 2
        let time = Double(t)   // the float32 tensor is promoted, e.g. 0.3 enters as 0.30000001192…
        for j in 0..<half {
            let fraction = half > 1 ? Double(j) / Double(half - 1) : 0   // torch.linspace(0, 1, half)
            let period = minPeriod * Foundation.pow(maxPeriod / minPeriod, fraction)
            let scaling = 1.0 / period * 2 * Double.pi
            body(j, half, scaling * time)
        }
    }

    /// The time of Euler step k: 1 + k·dt in double, then float32 (LeRobot builds a float32 tensor).
    public static func time(step k: Int, steps: Int) -> Float {
        Float(timeF64(step: k, steps: steps))
    }

    /// The same time as LeRobot's Python double (what RTC's guidance sees before any rounding).
    public static func timeF64(step k: Int, steps: Int) -> Double {
        let dt = -1.0 / Double(steps)
        return 1.0 + Double(k) * dt
    }

    /// x ← x + dt·v in float32 (dt rounded to float32 as PyTorch does for a Python scalar).
    public static func eulerUpdate(_ x: UnsafeMutablePointer<Float>, velocity v: UnsafePointer<Float>, count: Int, steps: Int) {
        let dt = Float(-1.0 / Double(steps))
        for i in 0..<count {
            let d = dt * v[i]
            x[i] = x[i] + d
        }
    }
}
