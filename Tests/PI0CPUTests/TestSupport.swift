// Shared helpers for the PI0CPU tests: seeded random inputs (seed printed on failure) and error metrics.
import XCTest
@testable import PI0CPU

/// SplitMix64, seeded from the system generator so every run sees fresh inputs; failures print the seed.
struct TestRNG {
    var state: UInt64
    let seed: UInt64
    init(seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        self.seed = seed
        state = seed
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
}

/// A value that must never be written (gaps between strided rows).
let sentinel: Float = 12345.5

/// Checks |got - want| <= tol * scale elementwise over an [m, n] block with row stride ld and that the
/// gap columns [n, ld) still hold `sentinel`. Reports the first bad index and the worst normalised error.
func assertClose(_ got: [Float], _ want: [Float], scale: [Float], m: Int, n: Int, ld: Int, tol: Float,
                 _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
    var worst: Float = 0
    for i in 0..<m {
        for j in 0..<n {
            let idx = i * ld + j
            let err = abs(got[idx] - want[idx]) / max(scale[idx], Float.leastNormalMagnitude)
            worst = max(worst, err.isNaN ? .infinity : err)
            if !(err <= tol) {
                XCTFail("\(what()): [\(i), \(j)] got \(got[idx]) want \(want[idx]) (err/scale \(err) > \(tol))", file: file, line: line)
                return
            }
        }
        for j in n..<ld where got[i * ld + j] != sentinel {
            XCTFail("\(what()): wrote outside the row at [\(i), \(j)]", file: file, line: line)
            return
        }
    }
}
