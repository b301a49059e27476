// The seeded noise source for the initial x_1 of flow-matching sampling.
import Foundation

/// Standard normal noise from a seed: SplitMix64 + Box–Muller. Deterministic across platforms; it does
/// not reproduce torch.normal's stream (pass `noise` explicitly for bit-comparisons with LeRobot).
public enum GaussianNoise {
    public static func sample(count: Int, seed: UInt64) -> [Float] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0 }   // (0, 1)
        var out = [Float](); out.reserveCapacity(count)
        while out.count < count {
            let u1 = uniform(), u2 = uniform()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            out.append(Float(r * Foundation.cos(2 * .pi * u2)))
            if out.count < count { out.append(Float(r * Foundation.sin(2 * .pi * u2))) }
        }
        return out
    }
}
