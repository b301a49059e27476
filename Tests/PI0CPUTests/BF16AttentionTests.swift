// bfloat16-mode attention on the vdpbf16ps path (CPUBackend.attention with `KernelPath.bf16Products`):
// K and V packed from float32 into bf16 pairs (Sources/CPI0Kernels/pi0_pack_bf16.c) must equal the
// existing bf16 packer fed the RNE-rounded bits (so packing bf16 values is exact), on every path's layout;
// the attention must match the plain reference (ReferenceOps.referenceAttention, float32 products with
// bf16 roundings) on odd shapes — keys not a multiple of 2 or 64, head dims 17, 72, 256, several query
// heads per KV head, strided rows, masks with fully masked rows — and give the same bits for 1, 2, 3 threads.
import CPI0Kernels
import PI0Tensor
import PI0TestSupport
import XCTest
@testable import PI0CPU

final class BF16AttentionTests: XCTestCase {
    /// Values that are bf16 except for the listed specials and a few that need rounding (ties included).
    func values(_ n: Int, rng: inout SplitMix64, exact: Bool) -> [Float] {
        var v = rng.floats(n).map { BFloat16.round($0 * 3) }
        guard !exact else { return v }
        let specials: [Float] = [.nan, .infinity, -.infinity, -0.0, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                                 Float(bitPattern: 0x0000_0001), 1.0001, -2.7182817, .greatestFiniteMagnitude]
        for (i, s) in specials.enumerated() where i < n { v[(i * 37) % n] = s }
        return v
    }

    func testFloat32ToBF16PackingEqualsTheBF16Packer() {
        var rng = SplitMix64(seed: 11)
        for path in KernelPath.usable {
            for (n, k) in [(1, 1), (5, 2), (63, 7), (64, 72), (65, 255), (130, 256), (3, 301), (67, 33)] {
                for exact in [true, false] {
                    let ld = k + 3
                    let w = values(n * ld, rng: &rng, exact: exact)
                    let bits = w.map { BFloat16.bits($0) }
                    // W [n, k] (K for q·Kᵀ)
                    let want = bits.withUnsafeBufferPointer { PackedWeight(bfloat16: $0.baseAddress!, n: n, k: k, ldw: ld, path: path) }
                    let ws = AttentionWorkspace()
                    let got = w.withUnsafeBufferPointer { ws.packTransposedBF16(0, $0.baseAddress!, n: n, k: k, ldb: ld, path: path) }
                    let count = want.byteCount / 2
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: got.assumingMemoryBound(to: UInt16.self), count: count)),
                                   Array(UnsafeBufferPointer(start: UnsafeRawPointer(want.buffer).assumingMemoryBound(to: UInt16.self), count: count)),
                                   "\(path) W [\(n), \(k)] exact \(exact)")
                    // B [k, n] = Wᵀ (V for P·V): element (kk, j) of B is W[j, kk]
                    let ldb = n + 2
                    var b = [Float](repeating: 0, count: k * ldb)
                    for j in 0..<n { for kk in 0..<k { b[kk * ldb + j] = w[j * ld + kk] } }
                    let gotKN = b.withUnsafeBufferPointer { ws.packBF16(1, $0.baseAddress!, k: k, n: n, ldb: ldb, path: path) }
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: gotKN.assumingMemoryBound(to: UInt16.self), count: count)),
                                   Array(UnsafeBufferPointer(start: UnsafeRawPointer(want.buffer).assumingMemoryBound(to: UInt16.self), count: count)),
                                   "\(path) B [\(k), \(n)] exact \(exact)")
                }
            }
        }
    }

    /// K and V packed together with their panels split across threads: the same bytes as the two packers.
    func testThreadedKVPackingEqualsTheSinglePackers() {
        var rng = SplitMix64(seed: 12)
        for path in KernelPath.usable {
            for (keys, d) in [(357, 256), (65, 72), (129, 17), (1, 2), (300, 256)] {
                let ldk = d + 1, ldv = d + 3
                let k = values(keys * ldk, rng: &rng, exact: true), v = values(keys * ldv, rng: &rng, exact: false)
                let one = AttentionWorkspace()
                let kc = Int(pi0k_packed_count(path.c, 1, keys, d)), vc = Int(pi0k_packed_count(path.c, 1, d, keys))
                let wantK = Array(UnsafeBufferPointer(start: one.packTransposedBF16(0, k, n: keys, k: d, ldb: ldk, path: path)
                    .assumingMemoryBound(to: UInt16.self), count: kc))
                let wantV = Array(UnsafeBufferPointer(start: one.packBF16(1, v, k: keys, n: d, ldb: ldv, path: path)
                    .assumingMemoryBound(to: UInt16.self), count: vc))
                for threads in [1, 2, 3] {
                    let ws = AttentionWorkspace()
                    let (pk, pv) = ws.packKVBF16(k: k, ldk: ldk, v: v, ldv: ldv, keys: keys, d: d, path: path, threads: threads)
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: pk.assumingMemoryBound(to: UInt16.self), count: kc)), wantK,
                                   "\(path) K [\(keys), \(d)] threads \(threads)")
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: pv.assumingMemoryBound(to: UInt16.self), count: vc)), wantV,
                                   "\(path) V [\(keys), \(d)] threads \(threads)")
                }
            }
        }
    }

    struct Case { let t, s, heads, kvHeads, d: Int; let masked, strided: Bool }

    /// The model's shapes scaled down and odd variants: MQA with contiguous heads (one product for all
    /// heads), GQA and MHA (per head), strided rows.
    static let cases = [
        Case(t: 50, s: 357, heads: 8, kvHeads: 1, d: 256, masked: true, strided: false),   // the expert, odd keys
        Case(t: 31, s: 65, heads: 8, kvHeads: 1, d: 256, masked: true, strided: false),
        Case(t: 7, s: 129, heads: 4, kvHeads: 1, d: 72, masked: false, strided: false),
        Case(t: 13, s: 67, heads: 6, kvHeads: 2, d: 72, masked: true, strided: true),      // 3 query heads per KV head
        Case(t: 9, s: 63, heads: 3, kvHeads: 3, d: 256, masked: true, strided: true),
        Case(t: 5, s: 1, heads: 2, kvHeads: 1, d: 17, masked: false, strided: true),
        Case(t: 17, s: 33, heads: 4, kvHeads: 2, d: 17, masked: false, strided: false),
    ]

    func run(_ c: Case, backend: (AttentionArgs) -> Void, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let gap = c.strided ? 3 : 0
        let qs = c.heads * c.d + gap, ks = c.kvHeads * c.d + gap + 1, vs = c.kvHeads * c.d + gap, os = c.heads * c.d + gap
        let q = rng.floats(c.t * qs).map { BFloat16.round($0 * 2) }, k = rng.floats(c.s * ks).map { BFloat16.round($0 * 2) }
        let v = rng.floats(c.s * vs).map { BFloat16.round($0) }
        var mask = [Float](repeating: 0, count: c.t * c.s)
        for i in 0..<c.t { for j in 0..<c.s where i == 2 % c.t || rng.float() < -0.4 { mask[i * c.s + j] = Attention.maskedValue } }
        var out = [Float](repeating: sentinel, count: c.t * os)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in mask.withUnsafeBufferPointer { mp in
            out.withUnsafeMutableBufferPointer { op in
                backend(AttentionArgs(q: qp.baseAddress!, qStride: qs, k: kp.baseAddress!, kStride: ks, v: vp.baseAddress!, vStride: vs,
                                      mask: c.masked ? mp.baseAddress! : nil, maskStride: c.s, out: op.baseAddress!, outStride: os,
                                      queries: c.t, keys: c.s, heads: c.heads, kvHeads: c.kvHeads, headDim: c.d,
                                      scale: 1 / Float(c.d).squareRoot(), roundToBF16: true))
            }
        } } } }
        return out
    }

    func testMatchesTheReferenceOnOddShapes() {
        let cpu = CPUBackend(threads: 2)
        for c in Self.cases {
            let got = run(c, backend: cpu.attention, seed: 3), want = run(c, backend: ReferenceOps.referenceAttention, seed: 3)
            var d = 0.0, r = 0.0, gp = 0.0, wp = 0.0, gg = 0.0, ww = 0.0, gw = 0.0, n = 0.0
            for i in got.indices {
                if want[i] == sentinel { XCTAssertEqual(got[i], sentinel, "\(c): wrote a gap at \(i)"); continue }
                let (a, b) = (Double(got[i]), Double(want[i]))
                XCTAssertEqual(got[i], BFloat16.round(got[i]), "\(c): output \(i) is not a bf16 value")
                d += (a - b) * (a - b); r += b * b
                gp += a; wp += b; gg += a * a; ww += b * b; gw += a * b; n += 1
            }
            let rel = (d / r).squareRoot()
            let pcc = (gw - gp * wp / n) / ((gg - gp * gp / n) * (ww - wp * wp / n)).squareRoot()
            // a score or probability that rounds the other way moves an output by one bf16 ulp (2⁻⁸ relative)
            XCTAssertLessThan(rel, 1e-3, "\(c) bf16Products \(KernelPath.bf16Products)")
            XCTAssertGreaterThan(pcc, 0.9999, "\(c)")
        }
    }

    /// MQA with contiguous heads runs in blocks of query rows (BlockedBF16Attention.swift); strided rows take
    /// the whole-matrix products per query head. The same values in both layouts give the same bits: several
    /// blocks per task (97 queries), odd keys, a head dim of 17 and 72, with and without a mask, 1/2/3 threads.
    func testBlockedMatchesWholeMatrixBitForBit() throws {
        guard KernelPath.bf16Products else { throw XCTSkip("no AVX512-BF16 on this CPU (\(CPUFeatures.summary)): no blocked form") }
        var rng = SplitMix64(seed: 21)
        for c in [Case(t: 50, s: 357, heads: 8, kvHeads: 1, d: 256, masked: true, strided: false),
                  Case(t: 97, s: 130, heads: 8, kvHeads: 1, d: 256, masked: true, strided: false),
                  Case(t: 7, s: 129, heads: 4, kvHeads: 1, d: 72, masked: false, strided: false),
                  Case(t: 3, s: 1, heads: 2, kvHeads: 1, d: 17, masked: true, strided: false)] {
            let w = c.heads * c.d
            let q = rng.floats(c.t * w).map { BFloat16.round($0 * 2) }, k = rng.floats(c.s * c.d).map { BFloat16.round($0 * 2) }
            let v = rng.floats(c.s * c.d).map { BFloat16.round($0) }
            var mask = [Float](repeating: 0, count: c.t * c.s)
            for i in 0..<c.t { for j in 0..<c.s where i == 1 || rng.float() < -0.4 { mask[i * c.s + j] = Attention.maskedValue } }
            func attend(_ threads: Int, gap: Int) -> [Float] {
                let ld = w + gap
                var qs = [Float](repeating: 0, count: c.t * ld), out = [Float](repeating: sentinel, count: c.t * ld)
                for i in 0..<c.t { for j in 0..<w { qs[i * ld + j] = q[i * w + j] } }
                qs.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                    mask.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { op in
                        CPUBackend(threads: threads).attention(AttentionArgs(
                            q: qp.baseAddress!, qStride: ld, k: kp.baseAddress!, kStride: c.d, v: vp.baseAddress!, vStride: c.d,
                            mask: c.masked ? mp.baseAddress! : nil, maskStride: c.s, out: op.baseAddress!, outStride: ld,
                            queries: c.t, keys: c.s, heads: c.heads, kvHeads: 1, headDim: c.d,
                            scale: 1 / Float(c.d).squareRoot(), roundToBF16: true))
                    } }
                } } }
                return (0..<c.t).flatMap { i in out[i * ld..<i * ld + w] }
            }
            let whole = attend(2, gap: 3).map(\.bitPattern)
            XCTAssertFalse(whole.contains(sentinel.bitPattern), "\(c): output not written")
            for threads in [1, 2, 3] {
                let blocked = attend(threads, gap: 0).map(\.bitPattern)
                let first = blocked.indices.first { blocked[$0] != whole[$0] }
                XCTAssertNil(first, "\(c): blocked on \(threads) threads differs from whole-matrix first at \(first ?? -1): "
                             + "\(first.map { "\(Float(bitPattern: blocked[$0])) vs \(Float(bitPattern: whole[$0]))" } ?? "")")
            }
        }
    }

    func testThreadCountDoesNotChangeBits() {
        for c in Self.cases {
            let outs = [1, 2, 3].map { run(c, backend: CPUBackend(threads: $0).attention, seed: 5).map(\.bitPattern) }
            XCTAssertEqual(outs[0], outs[1], "\(c): 1 vs 2 threads")
            XCTAssertEqual(outs[0], outs[2], "\(c): 1 vs 3 threads")
        }
    }
}
