// The CUDA op table against the CPU definitions (ReferenceBackend, ReferenceOps) on random odd shapes, in
// both precisions' variants. Used by PI0CUDATests and meant for a `pi0` subcommand on the GPU machine
// (tools/cuda/device_check.sh), where no Swift toolchain or XCTest is installed.
import Foundation
import PI0Tensor

public struct CUDACheck: Sendable, CustomStringConvertible {
    public var op: String
    public var relL2: Double
    public var tolerance: Double
    public var passed: Bool { relL2 <= tolerance }
    public var description: String {
        String(format: "%@ %-52@ relL2 %.3e (tolerance %.1e)", passed ? "ok  " : "FAIL", op as NSString, relL2, tolerance)
    }
}

public enum CUDASelfTest {
    /// Relative L2 distance of `a` from `b` (0 when both are zero).
    public static func relL2(_ a: [Float], _ b: [Float]) -> Double {
        var d = 0.0, r = 0.0
        for i in 0..<min(a.count, b.count) {
            let e = Double(a[i]) - Double(b[i]); d += e * e; r += Double(b[i]) * Double(b[i])
        }
        if a.count != b.count { return .infinity }
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
    }

    /// Runs every op; float32 variants must agree to float32 rounding, bf16 variants to a few bf16 ulps
    /// (a float sum that lands on the other side of a bf16 rounding boundary moves one ulp = 2⁻⁸).
    public static func run(_ gpu: CUDABackend, seed: UInt64 = 11) throws -> [CUDACheck] {
        var rng = RNG(state: seed)
        var out: [CUDACheck] = []
        let ref = ReferenceBackend()
        // Linear: odd shapes, float32 and bf16 weights, bf16 inputs for the cuBLAS bf16 path.
        for (m, k, n) in [(1, 7, 3), (5, 129, 17), (51, 64, 255), (67, 1000, 33)] {
            for (dtype, bf16In) in [(WeightDType.float32, false), (.bfloat16, false), (.bfloat16, true)] {
                let w = WeightTensor(name: "w", shape: [n, k], floats: rng.array(n * k, 0.1), dtype: dtype)
                let b = WeightTensor(name: "b", shape: [n], floats: rng.array(n))
                let ldx = k + 3, ldy = n + 2
                let x = rng.array(m * ldx, bf16: bf16In)
                var y1 = [Float](repeating: 7, count: m * ldy), y2 = y1
                let pg = try gpu.prepareLinear(w, bias: b, inputsAreBF16: bf16In), pr = try ref.prepareLinear(w, bias: b)
                gpu.linear(pg, x: x, rows: m, ldx: ldx, y: &y1, ldy: ldy)
                ref.linear(pr, x: x, rows: m, ldx: ldx, y: &y2, ldy: ldy)
                out.append(CUDACheck(op: "linear m\(m) k\(k) n\(n) \(dtype)\(bf16In ? " bf16-in" : "") (gaps kept)",
                                     relL2: relL2(y1, y2), tolerance: 5e-6))
            }
        }
        // Attention: MQA and grouped heads, masks, strided q/k/v/out, both rounding modes.
        for (t, s, h, kvh, d, masked) in [(5, 9, 8, 1, 16, true), (51, 71, 8, 1, 32, true), (7, 7, 3, 3, 12, false),
                                          (1, 13, 4, 2, 8, true), (3, 300, 8, 1, 256, true)] {
            for bf16 in [false, true] {
                let qs = h * d + 5, ks = kvh * d + 3, os = h * d + 4
                let q = rng.array(t * qs, bf16: bf16), k = rng.array(s * ks, bf16: bf16), v = rng.array(s * ks, bf16: bf16)
                var mask = [Float](repeating: 0, count: t * s)
                if masked { for i in 0..<(t * s) where (i * 7) % 5 == 0 { mask[i] = -2.3819763e38 } }
                var o1 = [Float](repeating: 3, count: t * os), o2 = o1
                func call(_ be: ComputeBackend, _ o: UnsafeMutablePointer<Float>) {
                    be.attention(AttentionArgs(q: q, qStride: qs, k: k, kStride: ks, v: v, vStride: ks,
                                               mask: masked ? mask : nil, maskStride: s, out: o, outStride: os,
                                               queries: t, keys: s, heads: h, kvHeads: kvh, headDim: d,
                                               scale: 1 / Float(d).squareRoot(), roundToBF16: bf16))
                }
                call(gpu, &o1); call(ref, &o2)
                out.append(CUDACheck(op: "attention t\(t) s\(s) h\(h) kv\(kvh) d\(d)\(masked ? " mask" : "")\(bf16 ? " bf16" : "")",
                                     relL2: relL2(o1, o2), tolerance: bf16 ? 1e-2 : 2e-6))
            }
        }
        // Elementwise and normalisation ops against ReferenceOps.
        let rows = 7, width = 333, n = rows * width
        let x = rng.array(n, 2), y = rng.array(n), wv = rng.array(width, 0.5), bv = rng.array(width)
        for bf16 in [false, true] {
            var a = [Float](repeating: 0, count: n), b = a
            gpu.rmsNorm(x, rows: rows, width: width, weight: wv, eps: 1e-6, roundToBF16: bf16, out: &a)
            ReferenceOps.rmsNorm(x, rows: rows, width: width, weight: wv, eps: 1e-6, roundToBF16: bf16, out: &b)
            out.append(CUDACheck(op: "rmsNorm \(rows)x\(width)\(bf16 ? " bf16" : "")", relL2: relL2(a, b), tolerance: bf16 ? 4e-3 : 1e-6))
            a = x; b = x
            gpu.add(&a, y, count: n, roundToBF16: bf16); ReferenceOps.add(&b, y, count: n, roundToBF16: bf16)
            out.append(CUDACheck(op: "add \(n)\(bf16 ? " bf16" : "")", relL2: relL2(a, b), tolerance: 0))
            gpu.geluTanhMul(gate: x, up: y, rows: rows, width: width, roundToBF16: bf16, out: &a)
            ReferenceOps.geluTanhMul(gate: x, up: y, rows: rows, width: width, ldIn: width, roundToBF16: bf16, out: &b, ldOut: width)
            out.append(CUDACheck(op: "geluTanhMul \(rows)x\(width)\(bf16 ? " bf16" : "")", relL2: relL2(a, b), tolerance: bf16 ? 4e-3 : 1e-6))
            let tokens = 5, heads = 3, hd = 16, stride = heads * hd + 2
            let cosT = rng.array(tokens * hd, bf16: bf16), sinT = rng.array(tokens * hd, bf16: bf16)
            a = rng.array(tokens * stride, bf16: bf16); b = a
            gpu.applyRoPE(&a, tokens: tokens, heads: heads, headDim: hd, stride: stride, cos: cosT, sin: sinT, roundToBF16: bf16)
            ReferenceOps.applyRoPE(&b, tokens: tokens, heads: heads, headDim: hd, stride: stride, cos: cosT, sin: sinT, roundToBF16: bf16)
            out.append(CUDACheck(op: "applyRoPE \(tokens)x\(heads)x\(hd)\(bf16 ? " bf16" : "")", relL2: relL2(a, b), tolerance: 0))
        }
        var a = [Float](repeating: 0, count: n), b = a
        gpu.layerNorm(x, rows: rows, width: width, weight: wv, bias: bv, eps: 1e-6, out: &a)
        ReferenceOps.layerNorm(x, rows: rows, width: width, weight: wv, bias: bv, eps: 1e-6, out: &b)
        out.append(CUDACheck(op: "layerNorm \(rows)x\(width)", relL2: relL2(a, b), tolerance: 1e-6))
        a = x; b = x
        gpu.geluTanh(&a, count: n); ReferenceOps.geluTanh(&b, count: n)
        out.append(CUDACheck(op: "geluTanh \(n)", relL2: relL2(a, b), tolerance: 1e-6))
        a = x; b = x
        gpu.silu(&a, count: n); ReferenceOps.silu(&b, count: n)
        out.append(CUDACheck(op: "silu \(n)", relL2: relL2(a, b), tolerance: 1e-6))
        a = x; b = x
        let dt = Float(-1.0 / 10.0)
        gpu.eulerUpdate(&a, velocity: y, dt: dt, count: n)
        for i in 0..<n { let d = dt * y[i]; b[i] += d }
        out.append(CUDACheck(op: "eulerUpdate \(n)", relL2: relL2(a, b), tolerance: 0))
        a = x; b = x
        gpu.roundToBF16(&a, count: n); BFloat16.round(&b, count: n)
        out.append(CUDACheck(op: "bf16 round \(n)", relL2: relL2(a, b), tolerance: 0))
        return out
    }
}
