// The op table: every `ComputeBackend` operation on random odd shapes, strided and offset tensors and
// both precisions, run on a backend under test and on `ReferenceBackend`, compared after download.
// The tests run it on the CUDA backend over a CPU emulation of the kernels (exact checks must then be
// bit-identical) and on a GPU when there is one; `pi0 cuda-check` runs it on the device machine, which
// has no Swift toolchain or XCTest (tools/cuda/device_check.sh).
import Foundation
import PI0Tensor

public struct CUDACheck: Sendable, CustomStringConvertible {
    public var op: String
    public var relL2: Double
    /// Allowed on a GPU (its expf/tanhf/pow, cuBLAS's summation order, tree reductions).
    public var tolerance: Double
    /// The kernel performs the reference's operations in the reference's order: bit-identical wherever
    /// the math library is the same (the CPU emulation of the kernels).
    public var exact: Bool
    public var passed: Bool { relL2 <= tolerance }
    public var description: String {
        String(format: "%@ %-60@ relL2 %.3e (tolerance %.1e)", passed ? "ok  " : "FAIL", op as NSString, relL2, tolerance)
    }
}

public enum CUDASelfTest {
    /// Relative L2 distance of `a` from `b` (0 when both are zero; NaNs in the same places count as equal).
    public static func relL2(_ a: [Float], _ b: [Float]) -> Double {
        if a.count != b.count { return .infinity }
        var d = 0.0, r = 0.0
        for i in 0..<a.count {
            if a[i].isNaN || b[i].isNaN { if a[i].isNaN != b[i].isNaN { return .infinity }; continue }
            if a[i].isInfinite || b[i].isInfinite { if a[i] != b[i] { return .infinity }; continue }
            let e = Double(a[i]) - Double(b[i]); d += e * e; r += Double(b[i]) * Double(b[i])
        }
        return r == 0 ? d.squareRoot() : (d / r).squareRoot()
    }

    struct RNG {
        var state: UInt64
        mutating func next(_ scale: Float = 1) -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
        mutating func array(_ n: Int, _ scale: Float = 1, bf16: Bool = false) -> [Float] {
            (0..<n).map { _ in let v = next(scale); return bf16 ? BFloat16.round(v) : v }
        }
        mutating func int(_ below: Int) -> Int { Int((next() + 1) / 2 * Float(below)) % below }
    }

    /// Runs every op on `backend` and on the reference; one check per op and variant.
    public static func run(_ backend: ComputeBackend, seed: UInt64 = 11) throws -> [CUDACheck] {
        let t = OpTable(backend, seed: seed)
        try t.linearChecks()
        t.attentionChecks()
        t.normalisationChecks()
        try t.fusedNormChecks()
        t.elementwiseChecks()
        try t.gatherChecks()
        t.flowMatchingChecks()
        try t.graphChecks()
        return t.results
    }
}

/// A tensor on both backends (the same values uploaded to each, at an odd offset inside its storage).
struct TensorPair {
    let a: TensorRef, b: TensorRef, count: Int
}

final class OpTable {
    let be: ComputeBackend
    let ref = ReferenceBackend()
    var rng: CUDASelfTest.RNG
    var results: [CUDACheck] = []

    init(_ backend: ComputeBackend, seed: UInt64) { be = backend; rng = CUDASelfTest.RNG(state: seed) }

    /// `values` on both backends, 3 floats into a storage with 2 spare at the end.
    func pair(_ values: [Float]) -> TensorPair {
        let sa = be.allocate(count: values.count + 5), sb = ref.allocate(count: values.count + 5)
        let a = TensorRef(storage: sa, offset: 3), b = TensorRef(storage: sb, offset: 3)
        be.upload(values, to: a); ref.upload(values, to: b)
        return TensorPair(a: a, b: b, count: values.count)
    }

    func random(_ n: Int, _ scale: Float = 1, bf16: Bool = false) -> TensorPair { pair(rng.array(n, scale, bf16: bf16)) }

    /// Runs `op` on both backends (candidate first) and records the distance of `outputs`.
    func check(_ name: String, tolerance: Double, exact: Bool = true, _ outputs: [TensorPair], _ op: (ComputeBackend, KeyPath<TensorPair, TensorRef>) -> Void) {
        op(be, \.a); op(ref, \.b)
        var got: [Float] = [], want: [Float] = []
        for o in outputs { got += be.download(o.a, count: o.count); want += ref.download(o.b, count: o.count) }
        results.append(CUDACheck(op: name, relL2: CUDASelfTest.relL2(got, want), tolerance: tolerance, exact: exact))
    }

    func linearChecks() throws {
        for (m, k, n) in [(1, 7, 3), (5, 129, 17), (51, 64, 255), (67, 1000, 33), (3, 16, 5)] {
            for (dtype, bf16In) in [(WeightDType.float32, false), (.bfloat16, false), (.bfloat16, true)] {
                let w = WeightTensor(name: "w", shape: [n, k], floats: rng.array(n * k, 0.1), dtype: dtype)
                let b = k == 16 ? nil : WeightTensor(name: "b", shape: [n], floats: rng.array(n))
                let ldx = k + 3, ldy = n + 2
                let x = random(m * ldx, bf16: bf16In)
                let y = pair([Float](repeating: 7, count: m * ldy))
                let pa = try be.prepareLinear(w, bias: b, inputsAreBF16: bf16In), pb = try ref.prepareLinear(w, bias: b, inputsAreBF16: bf16In)
                // cuBLAS sums in its own order (float32: 5e-6); bf16 × bf16 runs on the tensor cores, whose fp32
                // accumulation is looser (2e-5; the model rounds these outputs to bf16, 2⁻⁹ relative, at once).
                check("linear m\(m) k\(k) n\(n) \(dtype)\(bf16In ? " bf16-in" : "")\(b == nil ? " no-bias" : "") (gaps kept)",
                      tolerance: bf16In ? 2e-5 : 5e-6, [y]) { be, s in
                    be.linear(be === self.be ? pa : pb, x: x[keyPath: s], rows: m, ldx: ldx, y: y[keyPath: s], ldy: ldy)
                }
            }
        }
    }

    func attentionChecks() {
        // MQA, grouped and full heads, masks, strided q/k/v/out, head dim up to 256, long key ranges.
        for (t, s, h, kvh, d, masked) in [(5, 9, 8, 1, 16, true), (51, 71, 8, 1, 32, true), (7, 7, 3, 3, 12, false),
                                          (1, 13, 4, 2, 8, true), (3, 300, 8, 1, 256, true), (37, 866, 2, 1, 64, true)] {
            for bf16 in [false, true] {
                let qs = h * d + 5, ks = kvh * d + 3, os = h * d + 4
                let q = random(t * qs, bf16: bf16), k = random(s * ks, bf16: bf16), v = random(s * ks, bf16: bf16)
                var maskValues = [Float](repeating: 0, count: t * (s + 1))
                for i in maskValues.indices where (i * 7) % 5 == 0 { maskValues[i] = -2.3819763e38 }
                let mask = pair(maskValues), out = pair([Float](repeating: 3, count: t * os))
                check("attention t\(t) s\(s) h\(h) kv\(kvh) d\(d)\(masked ? " mask" : "")\(bf16 ? " bf16" : "")",
                      tolerance: bf16 ? 1e-2 : 2e-6, [out]) { be, p in
                    be.attention(AttentionCall(q: q[keyPath: p], qStride: qs, k: k[keyPath: p], kStride: ks, v: v[keyPath: p], vStride: ks,
                                               mask: masked ? mask[keyPath: p] : nil, maskStride: s + 1, out: out[keyPath: p],
                                               outStride: os, queries: t, keys: s, heads: h, kvHeads: kvh, headDim: d,
                                               scale: 1 / Float(d).squareRoot(), roundToBF16: bf16))
                }
            }
        }
    }

    func normalisationChecks() {
        let rows = 7, width = 333
        let x = random(rows * width, 2), w = random(width, 0.5), b = random(width)
        for bf16 in [false, true] {
            for weighted in [true, false] {
                let out = pair([Float](repeating: 0, count: rows * width))
                check("rmsNorm \(rows)x\(width)\(weighted ? "" : " no-weight")\(bf16 ? " bf16" : "")",
                      tolerance: bf16 ? 4e-3 : 1e-6, exact: false, [out]) { be, p in
                    be.rmsNorm(x[keyPath: p], rows: rows, width: width, weight: weighted ? w[keyPath: p] : nil, eps: 1e-6,
                               roundToBF16: bf16, out: out[keyPath: p])
                }
            }
            let (batch, tokens, mw) = (2, 5, 37)
            let mod = random(batch * 3 * mw), y = random(batch * tokens * mw)
            let xm = random(batch * tokens * mw, bf16: bf16)
            check("adaptiveModulate b\(batch) t\(tokens) w\(mw)\(bf16 ? " bf16" : "")", tolerance: 0, [xm]) { be, p in
                be.adaptiveModulate(xm[keyPath: p], batch: batch, tokens: tokens, width: mw, modulation: mod[keyPath: p], roundToBF16: bf16)
            }
            check("gatedAdd b\(batch) t\(tokens) w\(mw)\(bf16 ? " bf16" : "")", tolerance: 0, [xm]) { be, p in
                be.gatedAdd(xm[keyPath: p], y[keyPath: p], batch: batch, tokens: tokens, width: mw, modulation: mod[keyPath: p],
                            roundToBF16: bf16)
            }
        }
        let out = pair([Float](repeating: 0, count: rows * width))
        check("layerNorm \(rows)x\(width)", tolerance: 1e-6, exact: false, [out]) { be, p in
            be.layerNorm(x[keyPath: p], rows: rows, width: width, weight: w[keyPath: p], bias: b[keyPath: p], eps: 1e-6, out: out[keyPath: p])
        }
    }

    func elementwiseChecks() {
        let rows = 7, width = 333, n = rows * width, ld = width + 3
        for bf16 in [false, true] {
            let x = random(n, 2), y = random(n)
            let tag = bf16 ? " bf16" : ""
            check("add \(n)\(tag)", tolerance: 0, [x]) { be, p in be.add(x[keyPath: p], y[keyPath: p], count: n, roundToBF16: bf16) }
            check("scale \(n)\(tag)", tolerance: 0, [x]) { be, p in be.scale(x[keyPath: p], count: n, by: 0.37, roundToBF16: bf16) }
            let gate = random(rows * ld, 3), up = random(rows * ld), out = pair([Float](repeating: 5, count: rows * (width + 1)))
            check("geluTanhMul \(rows)x\(width) strided\(tag)", tolerance: bf16 ? 4e-3 : 1e-6, [out]) { be, p in
                be.geluTanhMul(gate: gate[keyPath: p], up: up[keyPath: p], rows: rows, width: width, ldIn: ld, roundToBF16: bf16,
                               out: out[keyPath: p], ldOut: width + 1)
            }
            let (tokens, heads, hd) = (5, 3, 16)
            let stride = heads * hd + 2
            let cosT = random(tokens * hd, bf16: bf16), sinT = random(tokens * hd, bf16: bf16), r = random(tokens * stride, bf16: bf16)
            check("applyRoPE \(tokens)x\(heads)x\(hd) strided\(tag)", tolerance: 0, [r]) { be, p in
                be.applyRoPE(r[keyPath: p], rows: tokens, heads: heads, headDim: hd, stride: stride, cos: cosT[keyPath: p],
                             sin: sinT[keyPath: p], roundToBF16: bf16)
            }
        }
        let x = random(n, 3), y = random(19)
        check("geluTanh \(n)", tolerance: 1e-6, [x]) { be, p in be.geluTanh(x[keyPath: p], count: n) }
        check("silu \(n)", tolerance: 1e-6, [x]) { be, p in be.silu(x[keyPath: p], count: n) }
        check("addPeriodic \(n) period 19", tolerance: 0, [x]) { be, p in be.addPeriodic(x[keyPath: p], y[keyPath: p], count: n, period: 19) }
        let z = random(rows * ld)
        check("roundToBF16 \(rows)x\(width) ld \(ld)", tolerance: 0, [z]) { be, p in be.roundToBF16(z[keyPath: p], rows: rows, width: width, ld: ld) }
    }

    func gatherChecks() throws {
        let src = random(9 * 41), dst = pair([Float](repeating: 2, count: 9 * 50))
        check("copy 9x37 strides 41 -> 50", tolerance: 0, [dst]) { be, p in
            be.copy(src[keyPath: p], sourceStride: 41, to: dst[keyPath: p], destinationStride: 50, rows: 9, width: 37)
        }
        check("copy broadcast 1 row -> 9x37", tolerance: 0, [dst]) { be, p in
            be.copy(src[keyPath: p], sourceStride: 0, to: dst[keyPath: p], destinationStride: 50, rows: 9, width: 37)
        }
        for dtype in [WeightDType.float32, .bfloat16] {
            let table = WeightTensor(name: "embed", shape: [101, 23], floats: rng.array(101 * 23), dtype: dtype)
            let ea = try be.prepareEmbedding(table), eb = try ref.prepareEmbedding(table)
            let ids = pair((0..<13).map { _ in Float(rng.int(101)) } + [0, 100])
            for bf16 in [false, true] {
                let out = pair([Float](repeating: 1, count: 15 * 25))
                check("embed 15 of [101, 23] \(dtype) ld 25\(bf16 ? " bf16" : "")", tolerance: 0, [out]) { be, p in
                    be.embed(be === self.be ? ea : eb, ids: ids[keyPath: p], count: 15, scale: 4.795832, roundToBF16: bf16,
                             out: out[keyPath: p], ldOut: 25)
                }
            }
        }
        let images = random(2 * 3 * 15 * 15), patches = pair([Float](repeating: 0, count: 2 * 9 * 75))
        check("patchify 2 images 15x15 patch 5", tolerance: 0, [patches]) { be, p in
            be.patchify(images[keyPath: p], count: 2, side: 15, patch: 5, out: patches[keyPath: p])
        }
        // 17 is not a multiple of 5: the 3×3 grid leaves the last 2 rows/columns out (LeRobot's 'valid' convolution).
        let images17 = random(2 * 3 * 17 * 17), patches17 = pair([Float](repeating: 0, count: 2 * 9 * 75))
        check("patchify 2 images 17x17 patch 5", tolerance: 0, [patches17]) { be, p in
            be.patchify(images17[keyPath: p], count: 2, side: 17, patch: 5, out: patches17[keyPath: p])
        }
    }

    func flowMatchingChecks() {
        for (t, width) in [(Float(1.0), 48), (0.37, 1024), (0.1, 2)] {
            let out = pair([Float](repeating: 9, count: width))
            check("timeEmbedding t \(t) width \(width)", tolerance: 1e-7, [out]) { be, p in
                be.timeEmbedding(t: t, width: width, minPeriod: 4e-3, maxPeriod: 4.0, out: out[keyPath: p])
            }
        }
        let n = 50 * 32
        let x = random(n), v = random(n)
        check("eulerStep \(n)", tolerance: 0, [x]) { be, p in be.eulerStep(x[keyPath: p], velocity: v[keyPath: p], count: n, dt: -0.1) }
        let (rows, width) = (6, 13)
        let gx = random(rows * width), gv = random(rows * width), target = random(rows * width)
        let weights = pair([1, 0, 0.5, 0.25, 0, 0.75])
        check("guideVelocity \(rows)x\(width)", tolerance: 0, [gv]) { be, p in
            be.guideVelocity(x: gx[keyPath: p], velocity: gv[keyPath: p], target: target[keyPath: p], weights: weights[keyPath: p],
                             rows: rows, width: width, t: 0.7, guidance: 2.5)
        }
        var values = rng.array(3000)
        let clean = pair(values)
        values[2000] = .infinity; values[1234] = .nan; values[2500] = -.infinity
        let dirty = pair(values), status = pair([7, 7, 7])
        check("checkFinite 3000 finite", tolerance: 0, [status]) { be, p in
            be.checkFinite(clean[keyPath: p], count: 3000, status: status[keyPath: p])
        }
        check("checkFinite 3000 with NaN at 1234 and inf after", tolerance: 0, [status]) { be, p in
            be.checkFinite(dirty[keyPath: p], count: 3000, status: status[keyPath: p])
        }
    }
}
