// bfloat16 helpers: the top 16 bits of an IEEE float32, rounded to nearest-even as PyTorch's
// `.to(torch.bfloat16)` does (c10::BFloat16 round_to_nearest_even; NaN stays NaN).

public enum BFloat16 {
    /// Widens bf16 bits to float32 (exact).
    @inline(__always) public static func float(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Rounds a float32 to the nearest bf16 (ties to even) and returns its bits.
    @inline(__always) public static func bits(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        let rounding = UInt32(0x7FFF) &+ ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    /// Rounds a float32 to the nearest bf16 value, kept as float32.
    @inline(__always) public static func round(_ x: Float) -> Float { float(bits(x)) }

    /// Rounds every element in place.
    public static func round(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { p[i] = round(p[i]) }
    }
}
