// CPUBackend.applyRoPE (Sources/CPI0Kernels/pi0_rope.c) against ReferenceOps.applyRoPE: bit-identical in
// float32 and bf16 mode on every instruction set the CPU has (AVX-512, AVX2, portable C), on odd shapes
// (half head dims not a multiple of 8 or 16, strided rows), with IEEE specials among the inputs, on 1 and
// 2 threads; the gaps between rows stay untouched.
import Foundation
import PI0Tensor
import PI0TestSupport
import XCTest
@testable import PI0CPU

final class RoPETests: XCTestCase {
    func testBitIdenticalToTheReference() {
        var rng = SplitMix64(seed: 9)
        let specials: [Float] = [.nan, .infinity, -.infinity, -0.0, Float(bitPattern: 0x0000_0001), Float(bitPattern: 0x3F80_8000),
                                 .greatestFiniteMagnitude, Float(bitPattern: 0xFFC0_1234)]
        for (rows, heads, headDim) in [(1, 1, 2), (3, 1, 6), (5, 8, 256), (7, 1, 256), (13, 3, 72), (4, 2, 34), (50, 8, 256), (9, 5, 66)] {
            for bf16 in [false, true] {
                let stride = heads * headDim + Int(rng.next() % 4)
                var x = rng.floats(rows * stride).map { bf16 ? BFloat16.round($0 * 4) : $0 * 4 }
                for (i, s) in specials.enumerated() { x[(i * 97) % x.count] = s }
                for r in 0..<rows { for j in heads * headDim..<stride { x[r * stride + j] = sentinel } }
                let angles = (0..<(rows * headDim)).map { _ in rng.float() * 40 }
                var cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
                if bf16 { cos = cos.map(BFloat16.round); sin = sin.map(BFloat16.round) }
                var want = x
                ReferenceOps.applyRoPE(&want, tokens: rows, heads: heads, headDim: headDim, stride: stride, cos: cos, sin: sin, roundToBF16: bf16)
                for threads in [1, 2] {
                    for simd in [0, 1, 2] {
                        var got = x
                        CPUBackend(threads: threads).applyRoPE(&got, rows: rows, heads: heads, headDim: headDim, stride: stride, cos: cos,
                                                               sin: sin, roundToBF16: bf16, maxSIMD: simd)
                        XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern),
                                       "\(rows)×\(heads)×\(headDim) stride \(stride) bf16 \(bf16) threads \(threads) simd \(simd)")
                    }
                }
            }
        }
    }
}
