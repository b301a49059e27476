// Attention.mqa against Attention.referenceMQA (Double loops) on odd shapes, additive masks with
// LeRobot's masked value (including fully masked rows, which give the uniform average like torch.where),
// strided layouts, the unmasked keys-as-rows kernel on every path, and thread-count independence.
// Bound: |out − ref| ≤ 2e-6 · max|v| + 2e-6 · |ref| — fp32 scores (~1e-7 relative), a ~2-ulp exp and
// fp32 sums over S ≤ 300 stay far below it; a wrong mask row or a dropped key moves outputs by ~1e-2.
import PI0TestSupport
import XCTest
@testable import PI0CPU

final class AttentionTests: XCTestCase {
    struct Case { let t, s, heads, headDim: Int; let strided: Bool }

    func run(_ c: Case, threads: Int, rng: inout SplitMix64, masked: Bool = true, path: KernelPath = .best) -> (got: [Float], want: [Float], ld: Int, v: [Float], ldv: Int) {
        let qH = c.strided ? c.headDim + 3 : c.headDim
        let qT = c.strided ? c.heads * qH + 5 : c.heads * qH
        let ldk = c.strided ? c.headDim + 1 : c.headDim, ldv = c.strided ? c.headDim + 2 : c.headDim
        let ldm = c.strided ? c.s + 4 : c.s
        let oH = c.strided ? c.headDim + 2 : c.headDim, oT = c.heads * oH + (c.strided ? 7 : 0)
        let q = rng.floats(c.t * qT).map { $0 * 2 }, k = rng.floats(c.s * ldk), v = rng.floats(c.s * ldv)
        var mask = [Float](repeating: 0, count: c.t * ldm)
        for i in 0..<c.t {
            for j in 0..<c.s {
                // about a third masked; the others get a small additive bias; row 2 is fully masked
                let u = rng.float()
                mask[i * ldm + j] = (i == 2 || u < -0.35) ? Attention.maskedValue : u * 0.5
            }
        }
        let scale = 1 / Float(c.headDim).squareRoot()
        var got = [Float](repeating: sentinel, count: c.t * oT), want = got
        mask.withUnsafeBufferPointer { m in
            let mp = masked ? m.baseAddress : nil
            Attention.mqa(q: q, k: k, v: v, mask: mp, out: &got, t: c.t, s: c.s, heads: c.heads, headDim: c.headDim,
                          scale: scale, qStrideT: qT, qStrideH: qH, ldk: ldk, ldv: ldv, ldMask: ldm,
                          outStrideT: oT, outStrideH: oH, threads: threads, path: path)
            Attention.referenceMQA(q: q, k: k, v: v, mask: mp, out: &want, t: c.t, s: c.s, heads: c.heads,
                                   headDim: c.headDim, scale: scale, qStrideT: qT, qStrideH: qH, ldk: ldk, ldv: ldv,
                                   ldMask: ldm, outStrideT: oT, outStrideH: oH)
        }
        return (got, want, oT, v, ldv)
    }

    func check(_ c: Case, masked: Bool = true, path: KernelPath = .best) {
        var rng = SplitMix64()
        let (got, want, _, _, _) = run(c, threads: 2, rng: &rng, masked: masked, path: path)
        let tol: Float = 2e-6
        for i in 0..<got.count {
            if want[i] == sentinel {
                if got[i] != sentinel { XCTFail("\(c) wrote a gap at \(i)"); return }
                continue
            }
            // outputs are convex combinations of v ∈ [-1, 1]
            if !(abs(got[i] - want[i]) <= tol + tol * abs(want[i])) {
                XCTFail("\(c) \(path) masked \(masked) seed \(rng.seed): out[\(i)] got \(got[i]) want \(want[i])")
                return
            }
        }
    }

    func testOddShapes() {
        for t in [1, 5, 51] {
            for s in [1, 7, 67, 300] {
                for (heads, headDim) in [(1, 1), (3, 72), (8, 256), (2, 17)] {
                    check(Case(t: t, s: s, heads: heads, headDim: headDim, strided: false))
                }
            }
        }
    }

    func testStridedLayouts() {
        // heads = 1 with rows wider than the head is SigLIP's layout (one call per head, q/out rows 1152
        // floats apart): the whole query block is one product with row stride qT.
        for (t, s, heads, headDim) in [(5, 67, 8, 72), (51, 300, 3, 256), (1, 7, 2, 17), (13, 33, 8, 256),
                                       (256, 256, 1, 72), (37, 67, 1, 17)] {
            check(Case(t: t, s: s, heads: heads, headDim: headDim, strided: true))
        }
    }

    /// The portable GEMM and libm expf (the path arm64 and old x86 take).
    func testPortablePath() {
        for (t, s, heads, headDim, strided) in [(5, 67, 8, 72, false), (3, 300, 3, 17, true)] {
            check(Case(t: t, s: s, heads: heads, headDim: headDim, strided: strided), path: .portable)
        }
    }

    func testNoMask() {
        check(Case(t: 7, s: 67, heads: 8, headDim: 72, strided: false), masked: false)
    }

    /// No mask: the keys-as-rows kernel (Sources/CPI0Kernels/pi0_attention.c) on every usable fp32 path, on
    /// shapes that leave partial query panels (T not a multiple of 16 or 64), partial row tiles (S and D not
    /// multiples of 6 or 4) and strided rows (SigLIP's layout is (256, 256, 1, 72) strided).
    func testUnmaskedKeyRowsOnEveryPath() {
        for path in KernelPath.usable where path != .avx512bf16 {
            for (t, s, heads, headDim, strided) in [(1, 1, 1, 1, false), (5, 7, 3, 72, true), (70, 67, 1, 72, true),
                                                    (129, 300, 2, 17, false), (256, 256, 1, 72, true), (33, 13, 8, 256, false),
                                                    (65, 5, 1, 7, true)] {
                check(Case(t: t, s: s, heads: heads, headDim: headDim, strided: strided), masked: false, path: path)
            }
        }
    }

    /// No keys at all: an empty weighted sum is 0 on both forms (the reference's 0/0 would be NaN).
    func testNoKeysGivesZeros() {
        for path in KernelPath.usable where path != .avx512bf16 {
            for masked in [true, false] {
                let (t, heads, d) = (5, 2, 7)
                let q = [Float](repeating: 1, count: t * heads * d), none = [Float](repeating: 1, count: 1)
                var out = [Float](repeating: .nan, count: t * heads * d)
                Attention.mqa(q: q, k: none, v: none, mask: masked ? none : nil, out: &out, t: t, s: 0, heads: heads,
                              headDim: d, scale: 1, threads: 2, path: path)
                XCTAssertEqual(out, [Float](repeating: 0, count: t * heads * d), "\(path) masked \(masked)")
            }
        }
    }

    /// The fully masked row 2 must be the plain average of v (uniform weights), as torch.where + softmax gives.
    func testFullyMaskedRowIsUniformAverage() {
        var rng = SplitMix64()
        let c = Case(t: 3, s: 9, heads: 2, headDim: 5, strided: false)
        let (got, _, ld, v, ldv) = run(c, threads: 1, rng: &rng)
        for h in 0..<c.heads {
            for d in 0..<c.headDim {
                let mean = (0..<c.s).map { Double(v[$0 * ldv + d]) }.reduce(0, +) / Double(c.s)
                XCTAssertEqual(Double(got[2 * ld + h * c.headDim + d]), mean, accuracy: 1e-6, "head \(h) d \(d)")
            }
        }
    }

    func testThreadCountDoesNotChangeBits() {
        for c in [Case(t: 51, s: 300, heads: 8, headDim: 72, strided: false), Case(t: 9, s: 67, heads: 3, headDim: 256, strided: true),
                  Case(t: 100, s: 67, heads: 1, headDim: 72, strided: true), Case(t: 200, s: 67, heads: 3, headDim: 72, strided: true)] {
            for masked in [true, false] { // unmasked: the keys-as-rows kernel splits (head, query panel) units
                var outs: [[UInt32]] = []
                for threads in [1, 2, 3] {
                    var rng = SplitMix64(seed: 42)
                    outs.append(run(c, threads: threads, rng: &rng, masked: masked).got.map(\.bitPattern))
                }
                XCTAssertEqual(outs[0], outs[1], "\(c) masked \(masked): 1 vs 2 threads")
                XCTAssertEqual(outs[0], outs[2], "\(c) masked \(masked): 1 vs 3 threads")
            }
        }
    }
}
