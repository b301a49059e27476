// Shared helpers for the PI0CPU tests: seeded random inputs (seed printed on failure) and error metrics.
import XCTest
@testable import PI0CPU

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
