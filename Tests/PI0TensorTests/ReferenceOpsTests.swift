// The reference operations (what every fast backend is tested against) checked against the formulas
// evaluated straightforwardly in Double (docs/SPEC.md §3.1, §4, §5.1): LayerNorm, RMSNorm, GELU-tanh,
// SiLU, residual add, RoPE, softmax, attention (MQA, additive mask, fully masked rows) and the
// reference backend's linear layer. Tolerances are a few float32 ulps of the values' scale.
import Foundation
import PI0TestSupport
import XCTest
@testable import PI0Tensor

final class ReferenceOpsTests: XCTestCase {
    private func assertClose(_ got: [Float], _ want: [Double], tol: Double, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        for i in 0..<min(got.count, want.count) {
            let err = abs(Double(got[i]) - want[i]) / max(1, abs(want[i]))
            if !(err <= tol) {
                XCTFail("\(what)[\(i)]: got \(got[i]), want \(want[i]) (error \(err) > \(tol))", file: file, line: line)
                return
            }
        }
    }

    private func geluTanh(_ x: Double) -> Double { 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }

    func testLayerNorm() {
        var rng = SplitMix64(seed: 1)
        let rows = 3, width = 37
        let x = rng.floats(rows * width).map { $0 * 4 + 1 }, w = rng.floats(width), b = rng.floats(width)
        var out = [Float](repeating: 0, count: rows * width)
        ReferenceOps.layerNorm(x, rows: rows, width: width, weight: w, bias: b, eps: 1e-6, out: &out)
        var want: [Double] = []
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)   // biased
            want += (0..<width).map { (row[$0] - mean) / (variance + 1e-6).squareRoot() * Double(w[$0]) + Double(b[$0]) }
        }
        assertClose(out, want, tol: 2e-6, "layerNorm")
    }

    func testRMSNormUsesOnePlusWeight() {
        var rng = SplitMix64(seed: 2)
        let rows = 4, width = 64
        let x = rng.floats(rows * width).map { $0 * 3 }, w = rng.floats(width).map { $0 * 0.5 }
        var want: [Double] = []
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let rs = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(width) + 1e-6).squareRoot()
            want += (0..<width).map { row[$0] * rs * (1 + Double(w[$0])) }
        }
        var out = [Float](repeating: 0, count: rows * width)
        ReferenceOps.rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: false, out: &out)
        assertClose(out, want, tol: 2e-6, "rmsNorm")
        // bf16 output: one rounding at the end, so within half a bf16 ulp (2⁻⁹ relative) and representable.
        ReferenceOps.rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: true, out: &out)
        assertClose(out, want, tol: 1.0 / 256, "rmsNorm bf16")
        XCTAssertTrue(out.allSatisfy { BFloat16.round($0) == $0 })
    }

    func testGeluTanhAndSiLU() {
        let xs = stride(from: -8.0, through: 8.0, by: 0.0625).map { Float($0) }
        var g = xs
        ReferenceOps.geluTanh(&g, count: g.count)
        assertClose(g, xs.map { geluTanh(Double($0)) }, tol: 1e-6, "geluTanh")
        var s = xs
        ReferenceOps.silu(&s, count: s.count)
        assertClose(s, xs.map { Double($0) / (1 + exp(-Double($0))) }, tol: 1e-6, "silu")
    }

    func testGeluTanhMulWithStrides() {
        var rng = SplitMix64(seed: 3)
        let rows = 3, width = 10, ldIn = 13, ldOut = 11
        let gate = rng.floats(rows * ldIn).map { $0 * 3 }, up = rng.floats(rows * ldIn)
        var out = [Float](repeating: 99, count: rows * ldOut)
        ReferenceOps.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: false, out: &out, ldOut: ldOut)
        var got: [Float] = [], want: [Double] = []
        for r in 0..<rows {
            for i in 0..<width {
                got.append(out[r * ldOut + i])
                want.append(geluTanh(Double(gate[r * ldIn + i])) * Double(up[r * ldIn + i]))
            }
            XCTAssertEqual(out[r * ldOut + width], 99, "the gap after row \(r) must not be written")
        }
        assertClose(got, want, tol: 2e-6, "geluTanhMul")
    }

    func testAddIsOneCorrectlyRoundedOperation() {
        var rng = SplitMix64(seed: 4)
        let a = rng.floats(100).map { $0 * 1e3 }, b = rng.floats(100).map { $0 * 1e-2 }
        var x = a
        ReferenceOps.add(&x, b, count: 100, roundToBF16: false)
        XCTAssertEqual(x, (0..<100).map { Float(Double(a[$0]) + Double(b[$0])) })
        x = a
        ReferenceOps.add(&x, b, count: 100, roundToBF16: true)
        XCTAssertEqual(x, (0..<100).map { BFloat16.round(Float(Double(a[$0]) + Double(b[$0]))) })
    }

    func testSoftmax() {
        var rng = SplitMix64(seed: 5)
        var x = rng.floats(50).map { $0 * 20 }
        let xd = x.map(Double.init), m = xd.max()!
        let e = xd.map { exp($0 - m) }, sum = e.reduce(0, +)
        ReferenceOps.softmax(&x, count: x.count)
        assertClose(x, e.map { $0 / sum }, tol: 1e-6, "softmax")
        XCTAssertEqual(Double(x.reduce(0, +)), 1, accuracy: 1e-5)
    }

    /// Half-split RoPE on 2 heads of 8 values at a row stride of 20: x·cos + rotate_half(x)·sin with
    /// rotate_half([x1, x2]) = [−x2, x1]; values outside the heads stay untouched.
    func testRoPERotateHalf() {
        var rng = SplitMix64(seed: 6)
        let tokens = 3, heads = 2, d = 8, stride = 20, half = d / 2
        let x0 = rng.floats(tokens * stride)
        let angles = (0..<(tokens * d)).map { _ in Double(rng.float()) * 3 }
        let cos = angles.map { Float(Foundation.cos($0)) }, sin = angles.map { Float(Foundation.sin($0)) }
        var x = x0
        ReferenceOps.applyRoPE(&x, tokens: tokens, heads: heads, headDim: d, stride: stride, cos: cos, sin: sin, roundToBF16: false)
        var got: [Float] = [], want: [Double] = []
        for t in 0..<tokens {
            for h in 0..<heads {
                let v = (0..<d).map { Double(x0[t * stride + h * d + $0]) }
                for i in 0..<d {
                    let rot = i < half ? -v[i + half] : v[i - half]
                    want.append(v[i] * Double(cos[t * d + i]) + rot * Double(sin[t * d + i]))
                    got.append(x[t * stride + h * d + i])
                }
            }
            for j in (heads * d)..<stride { XCTAssertEqual(x[t * stride + j], x0[t * stride + j], "token \(t) gap \(j)") }
        }
        assertClose(got, want, tol: 1e-6, "applyRoPE")
    }

    /// Attention with 4 query heads sharing 2 KV heads, an additive mask with LeRobot's finite masked
    /// value, and one query whose keys are all masked (it must attend uniformly, as in PyTorch).
    func testAttentionMQAWithMask() {
        var rng = SplitMix64(seed: 7)
        let T = 3, S = 5, H = 4, KV = 2, D = 6, scale: Float = 1 / Float(D).squareRoot()
        let masked: Float = -2.3819763e38
        let q = rng.floats(T * H * D), k = rng.floats(S * KV * D), v = rng.floats(S * KV * D)
        var mask = [Float](repeating: 0, count: T * S)
        mask[0 * S + 4] = masked; mask[1 * S + 0] = masked
        for j in 0..<S { mask[2 * S + j] = masked }
        var out = [Float](repeating: 0, count: T * H * D)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            mask.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { op in
                ReferenceOps.referenceAttention(AttentionArgs(
                    q: qp.baseAddress!, qStride: H * D, k: kp.baseAddress!, kStride: KV * D, v: vp.baseAddress!, vStride: KV * D,
                    mask: mp.baseAddress!, maskStride: S, out: op.baseAddress!, outStride: H * D,
                    queries: T, keys: S, heads: H, kvHeads: KV, headDim: D, scale: scale, roundToBF16: false))
            } }
        } } }
        var want: [Double] = []
        for t in 0..<T {
            for h in 0..<H {
                let g = h / (H / KV)
                let allMasked = (0..<S).allSatisfy { mask[t * S + $0] == masked }
                var p = (0..<S).map { j -> Double in
                    if mask[t * S + j] == masked { return allMasked ? 0 : -.infinity }
                    return (0..<D).map { Double(q[t * H * D + h * D + $0]) * Double(k[j * KV * D + g * D + $0]) }.reduce(0, +) * Double(scale)
                }
                let m = p.max()!
                p = p.map { exp($0 - m) }
                let sum = p.reduce(0, +)
                for dd in 0..<D { want.append((0..<S).map { p[$0] / sum * Double(v[$0 * KV * D + g * D + dd]) }.reduce(0, +)) }
            }
        }
        assertClose(out, want, tol: 2e-6, "attention")
    }

    func testReferenceBackendLinearWithBF16Weights() throws {
        var rng = SplitMix64(seed: 8)
        let m = 3, n = 5, k = 9, ldx = 12, ldy = 7
        let wv = rng.floats(n * k), bv = rng.floats(n), x = rng.floats(m * ldx)
        let backend = ReferenceBackend()
        let prepared = try backend.prepareLinear(WeightTensor(name: "w", shape: [n, k], floats: wv, dtype: .bfloat16),
                                                 bias: WeightTensor(name: "b", shape: [n], floats: bv))
        XCTAssertEqual(prepared.outFeatures, n)
        XCTAssertEqual(prepared.inFeatures, k)
        var y = [Float](repeating: 99, count: m * ldy)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            backend.linear(prepared, x: xp.baseAddress!, rows: m, ldx: ldx, y: yp.baseAddress!, ldy: ldy)
        } }
        var got: [Float] = [], want: [Double] = []
        for r in 0..<m {
            for j in 0..<n {
                got.append(y[r * ldy + j])
                want.append((0..<k).map { Double(x[r * ldx + $0]) * Double(BFloat16.round(wv[j * k + $0])) }.reduce(0, +) + Double(bv[j]))
            }
            XCTAssertEqual(y[r * ldy + n], 99, "the gap after row \(r) must not be written")
        }
        assertClose(got, want, tol: 5e-6, "linear")
        XCTAssertThrowsError(try backend.prepareLinear(WeightTensor(name: "w", shape: [n, k], floats: wv),
                                                       bias: WeightTensor(name: "b", shape: [4], floats: [0, 0, 0, 0]))) {
            XCTAssertEqual($0 as? BackendError, .unsupportedWeight(name: "b", reason: "bias shape [4] for 5 outputs"))
        }
    }
}
