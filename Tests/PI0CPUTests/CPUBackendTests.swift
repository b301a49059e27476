// The fast CPU backend against the plain reference backend on fresh random inputs of odd shapes,
// both precisions' attention variants, and end to end on every fixture case.
import XCTest
import PI0CPU
import PI0Tensor

final class CPUBackendTests: XCTestCase {
    func random(_ n: Int, seed: inout UInt64, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return (Float(seed >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    func relL2(_ a: [Float], _ b: [Float]) -> Double {
        var d = 0.0, r = 0.0
        for i in 0..<a.count { d += Double(a[i] - b[i]) * Double(a[i] - b[i]); r += Double(b[i]) * Double(b[i]) }
        return (d / max(r, 1e-30)).squareRoot()
    }

    func testLinearMatchesReferenceOnOddShapes() throws {
        var seed: UInt64 = 42
        let fast = CPUBackend(threads: 2), plain = ReferenceBackend()
        for (m, k, n) in [(1, 7, 3), (5, 129, 17), (51, 64, 255), (67, 1000, 33), (3, 1, 1)] {
            for dtype in [WeightDType.float32, .bfloat16] {
                let w = WeightTensor(name: "w", shape: [n, k], floats: random(n * k, seed: &seed, scale: 0.1), dtype: dtype)
                let b = WeightTensor(name: "b", shape: [n], floats: random(n, seed: &seed))
                let x = random(m * k, seed: &seed)
                var y1 = [Float](repeating: 0, count: m * n), y2 = y1
                let pf = try fast.prepareLinear(w, bias: b), pr = try plain.prepareLinear(w, bias: b)
                fast.linear(pf, x: x, rows: m, ldx: k, y: &y1, ldy: n)
                plain.linear(pr, x: x, rows: m, ldx: k, y: &y2, ldy: n)
                XCTAssertLessThan(relL2(y1, y2), 2e-6, "m \(m) k \(k) n \(n) \(dtype)")
            }
        }
    }

    /// Many KV heads (SigLIP's layout: 16 heads of 72) run whole heads per thread: the same bits for 1, 2, 3
    /// and 5 threads (3 threads split 7 heads 3/2/2), and close to the reference.
    func testManyHeadAttentionIsTheSameForEveryThreadCount() {
        var seed: UInt64 = 11
        let (t, s, h, d) = (37, 37, 7, 72)
        let q = random(t * h * d, seed: &seed), k = random(s * h * d, seed: &seed), v = random(s * h * d, seed: &seed)
        var first: [UInt32]?
        for threads in [1, 2, 3, 5] {
            var out = [Float](repeating: .nan, count: t * h * d)
            q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                out.withUnsafeMutableBufferPointer { op in
                    CPUBackend(threads: threads).attention(AttentionArgs(
                        q: qp.baseAddress!, qStride: h * d, k: kp.baseAddress!, kStride: h * d, v: vp.baseAddress!, vStride: h * d,
                        mask: nil, maskStride: s, out: op.baseAddress!, outStride: h * d, queries: t, keys: s,
                        heads: h, kvHeads: h, headDim: d, scale: 1 / Float(d).squareRoot(), roundToBF16: false))
                }
            } } }
            if let first { XCTAssertEqual(out.map(\.bitPattern), first, "\(threads) threads vs 1") } else {
                first = out.map(\.bitPattern)
                var ref = [Float](repeating: 0, count: t * h * d)
                ReferenceOps.referenceAttention(AttentionArgs(
                    q: q, qStride: h * d, k: k, kStride: h * d, v: v, vStride: h * d, mask: nil, maskStride: s, out: &ref,
                    outStride: h * d, queries: t, keys: s, heads: h, kvHeads: h, headDim: d, scale: 1 / Float(d).squareRoot(),
                    roundToBF16: false))
                XCTAssertLessThan(relL2(out, ref), 2e-6)
            }
        }
    }

    func testAttentionMatchesReferenceMQAAndMHA() {
        var seed: UInt64 = 7
        let fast = CPUBackend(threads: 2)
        // (queries, keys, heads, kvHeads, headDim, masked?)
        for (t, s, h, kvh, d, masked) in [(5, 9, 8, 1, 16, true), (51, 71, 8, 1, 16, true), (7, 7, 3, 3, 12, false), (1, 13, 4, 2, 8, true)] {
            for bf16 in [false, true] {
                var q = random(t * h * d, seed: &seed), k = random(s * kvh * d, seed: &seed), v = random(s * kvh * d, seed: &seed)
                if bf16 { for i in q.indices { q[i] = BFloat16.round(q[i]) }; for i in k.indices { k[i] = BFloat16.round(k[i]) }; for i in v.indices { v[i] = BFloat16.round(v[i]) } }
                var mask = [Float](repeating: 0, count: t * s)
                if masked { for i in 0..<(t * s) where (i * 7) % 5 == 0 { mask[i] = -2.3819763e38 } }
                var o1 = [Float](repeating: 0, count: t * h * d), o2 = o1
                func args(_ out: UnsafeMutablePointer<Float>, _ qp: UnsafePointer<Float>, _ kp: UnsafePointer<Float>,
                          _ vp: UnsafePointer<Float>, _ mp: UnsafePointer<Float>) -> AttentionArgs {
                    AttentionArgs(q: qp, qStride: h * d, k: kp, kStride: kvh * d, v: vp, vStride: kvh * d,
                                  mask: masked ? mp : nil, maskStride: s, out: out, outStride: h * d, queries: t, keys: s,
                                  heads: h, kvHeads: kvh, headDim: d, scale: 1 / Float(d).squareRoot(), roundToBF16: bf16)
                }
                fast.attention(args(&o1, q, k, v, mask))
                ReferenceOps.referenceAttention(args(&o2, q, k, v, mask))
                // bf16 outputs may differ by one bf16 ulp where float32 sums round differently.
                XCTAssertLessThan(relL2(o1, o2), bf16 ? 1e-2 : 2e-6, "t \(t) s \(s) h \(h) kv \(kvh) bf16 \(bf16)")
            }
        }
    }

    /// bf16 rounding of layer outputs (strided rows, only `width` columns touched) is bit-identical to
    /// `BFloat16.round`, including ties, NaN (stays a quiet NaN), infinities and values that round up to inf.
    func testRoundToBF16RowsMatchesScalarRounding() {
        var seed: UInt64 = 5
        let fast = CPUBackend(threads: 2)
        let specials: [Float] = [.nan, .infinity, -.infinity, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                                 Float(bitPattern: 0x7F7F_FFFF), -0.0, Float(bitPattern: 0x0000_0001)]
        for (rows, width, ld) in [(1, 3, 3), (7, 13, 16), (64, 1031, 1040), (300, 9, 9)] {
            var x = random(rows * ld, seed: &seed, scale: 100)
            for (i, v) in specials.enumerated() where i < x.count { x[(i * 37) % x.count] = v }
            var a = x
            fast.roundToBF16(&a, rows: rows, width: width, ld: ld)
            for r in 0..<rows {
                for c in 0..<ld {
                    let i = r * ld + c
                    let want = c < width ? BFloat16.round(x[i]) : x[i]
                    XCTAssertEqual(a[i].bitPattern, want.bitPattern, "\(rows)x\(width) ld \(ld) at (\(r), \(c)) from \(x[i])")
                }
            }
        }
    }

    func testElementwiseOpsMatchThePlainVersions() {
        var seed: UInt64 = 99
        let fast = CPUBackend(threads: 2)
        for (rows, width) in [(1, 1), (3, 7), (17, 33), (51, 1024), (5, 4099)] {
            let n = rows * width
            let x = random(n, seed: &seed, scale: 4), y = random(n, seed: &seed, scale: 2)
            let w = random(width, seed: &seed, scale: 0.5), b = random(width, seed: &seed)
            for bf16 in [false, true] {
                var a = [Float](repeating: 0, count: n), r = a
                fast.rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: bf16, out: &a)
                ReferenceOps.rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: bf16, out: &r)
                XCTAssertLessThan(relL2(a, r), bf16 ? 4e-3 : 1e-6, "rmsnorm \(rows)x\(width)")
                fast.geluTanhMul(gate: x, up: y, rows: rows, width: width, ldIn: width, roundToBF16: bf16, out: &a, ldOut: width)
                ReferenceOps.geluTanhMul(gate: x, up: y, rows: rows, width: width, ldIn: width, roundToBF16: bf16, out: &r, ldOut: width)
                XCTAssertLessThan(relL2(a, r), bf16 ? 4e-3 : 1e-6, "gelu·up \(rows)x\(width)")
                a = x; r = x
                fast.add(&a, y, count: n, roundToBF16: bf16); ReferenceOps.add(&r, y, count: n, roundToBF16: bf16)
                XCTAssertEqual(a, r)
            }
            var a = [Float](repeating: 0, count: n), r = a
            fast.layerNorm(x, rows: rows, width: width, weight: w, bias: b, eps: 1e-6, out: &a)
            ReferenceOps.layerNorm(x, rows: rows, width: width, weight: w, bias: b, eps: 1e-6, out: &r)
            XCTAssertLessThan(relL2(a, r), 1e-6, "layernorm \(rows)x\(width)")
            a = x; r = x
            fast.geluTanh(&a, count: n); ReferenceOps.geluTanh(&r, count: n)
            XCTAssertLessThan(relL2(a, r), 1e-6, "gelu \(rows)x\(width)")
            a = x; r = x
            fast.silu(&a, count: n); ReferenceOps.silu(&r, count: n)
            XCTAssertLessThan(relL2(a, r), 1e-6, "silu \(rows)x\(width)")
        }
    }
}
