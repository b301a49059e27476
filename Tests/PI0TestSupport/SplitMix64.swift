// The one seeded random generator of the test targets: SplitMix64 (Steele, Lea & Flood 2014), the same
// sequence on every platform, so a failing fuzz or random-shape test reproduces from its seed.

/// SplitMix64. `init(seed:)` for reproducible inputs; `init()` draws a fresh seed each run (print `seed`
/// in failure messages so the case can be replayed).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    /// The seed this generator started from.
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    public init() { self.init(seed: UInt64.random(in: 0...UInt64.max)) }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1), on a grid of 2⁻²³.
    public mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }

    /// `count` values uniform in [-1, 1).
    public mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
}
