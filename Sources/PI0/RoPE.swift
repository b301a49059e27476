// Rotary position embeddings as transformers' Gemma computes them.
import Foundation
import PI0Tensor

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
