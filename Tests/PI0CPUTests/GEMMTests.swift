// Every kernel path available on this CPU against GEMM.referenceLinear (Double accumulation) on fresh
// random inputs of odd shapes (not multiples of any tile), fp32 and bf16 weights, with/without bias,
// strided x and y. Error bound: |y − ref| ≤ 1e-6 · (Σ_k |x·w|·|alpha| + |bias|) — fp32 accumulation over K
// ≤ 1000 rounds at ~sqrt(K)·2^-24 of that scale; one missing or doubled term would be ~1e-3 of it.
import CPI0Kernels
import PI0TestSupport
import XCTest
@testable import PI0CPU
import PI0Tensor

final class GEMMTests: XCTestCase {
    static let ms = [1, 2, 5, 7, 51, 67]
    static let ns = [1, 3, 17, 33, 255]
    static let ks = [1, 7, 64, 129, 1000]

    /// Runs the shape table on one path; `bf16Activations` mirrors the `.avx512bf16` rounding in the reference.
    func checkPath(_ path: KernelPath, elements: [WeightElement], bf16Activations: Bool = false, tol: Float = 1e-6) throws {
        guard path.isSupported else { throw XCTSkip("\(path) not supported on this CPU (\(CPUFeatures.summary))") }
        var rng = SplitMix64()
        var combo = 0
        for m in Self.ms { for n in Self.ns { for k in Self.ks {
            combo += 1
            let withBias = combo % 2 == 0, strided = combo % 3 != 0
            let ldx = strided ? k + 3 : k, ldy = strided ? n + 5 : n
            let alpha: Float = combo % 5 == 0 ? 0.125 : 1
            var x = rng.floats(m * ldx)
            if bf16Activations { x = x.map { BFloat16.round($0) } }
            let wRaw = rng.floats(n * k)
            let bias = withBias ? rng.floats(n) : []
            for element in elements {
                let wBits = wRaw.map { UInt16($0.bitPattern >> 16) } // arbitrary bf16 values
                let w = element == .float32 ? wRaw : wBits.map(BFloat16.float)
                let packed = element == .float32
                    ? PackedWeight(float32: wRaw, n: n, k: k, path: path)
                    : PackedWeight(bfloat16: wBits, n: n, k: k, path: path)
                var y = [Float](repeating: sentinel, count: m * ldy)
                var want = y, scale = y
                bias.withUnsafeBufferPointer { b in
                    let bp = withBias ? b.baseAddress : nil
                    GEMM.linear(x: x, m: m, ldx: ldx, weight: packed, bias: bp, y: &y, ldy: ldy, alpha: alpha, threads: 1)
                    GEMM.referenceLinear(x: x, m: m, ldx: ldx, w: w, n: n, k: k, bias: bp, y: &want, ldy: ldy, alpha: alpha)
                }
                let absBias = bias.map(abs)
                absBias.withUnsafeBufferPointer { b in
                    GEMM.referenceLinear(x: x.map(abs), m: m, ldx: ldx, w: w.map(abs), n: n, k: k,
                                         bias: withBias ? b.baseAddress : nil, y: &scale, ldy: ldy, alpha: abs(alpha))
                }
                assertClose(y, want, scale: scale, m: m, n: n, ld: ldy, tol: tol,
                            "\(path) \(element) m\(m) n\(n) k\(k) bias \(withBias) ldx \(ldx) ldy \(ldy) seed \(rng.seed)")
            }
        } } }
    }

    func testPortablePath() throws { try checkPath(.portable, elements: [.float32, .bfloat16]) }
    func testAVX2Path() throws { try checkPath(.avx2, elements: [.float32, .bfloat16]) }
    func testAVX512Path() throws { try checkPath(.avx512, elements: [.float32, .bfloat16]) }
    /// vdpbf16ps: products of bf16 values are exact in fp32, so against the reference fed the same
    /// bf16-rounded activations the bound is the fp32-accumulation one, loosened for the pairwise order
    /// and the instruction's flush of denormals.
    func testAVX512BF16Path() throws { try checkPath(.avx512bf16, elements: [.bfloat16], bf16Activations: true, tol: 4e-6) }

    /// The `.avx512bf16` path's rounding of x (AVX-512 on CPUs that have it, 16 values at a time, scalar tail)
    /// is bit-identical to `BFloat16.round`: ties to even, NaN stays a quiet NaN, infinities, values that
    /// round up to inf, subnormals (integer arithmetic: no flush to zero), on rows of odd length and stride.
    func testBF16ActivationRoundingMatchesScalarRounding() {
        var rng = SplitMix64(seed: 17)
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                                 Float(bitPattern: 0x7F7F_FFFF), -0.0, Float(bitPattern: 0x0000_0001), Float(bitPattern: 0x0000_8000),
                                 Float(bitPattern: 0x807F_FFFF), Float(bitPattern: 0x7F80_0001)]
        for (m, k, ldx) in [(1, 1, 1), (3, 15, 17), (5, 16, 16), (7, 37, 40), (2, 1001, 1003)] {
            var x = rng.floats(m * ldx).map { $0 * 100 }
            for (i, v) in specials.enumerated() { x[(i * 7) % x.count] = v }
            let kpad = (k + 1) & ~1
            var dst = [UInt16](repeating: 0xFFFF, count: m * kpad)
            pi0k_round_rows_bf16(x, m, ldx, k, &dst, kpad)
            for i in 0..<m {
                for j in 0..<kpad {
                    let want: UInt16 = j < k ? BFloat16.bits(x[i * ldx + j]) : 0
                    XCTAssertEqual(dst[i * kpad + j], want, "m \(m) k \(k) row \(i) col \(j) x \(j < k ? x[i * ldx + j] : 0)")
                }
            }
        }
    }

    /// Every path the CPU supports must also pass the run-time self-check (else it would silently be skipped).
    func testSupportedPathsPassSelfCheck() {
        for path in KernelPath.allCases where path.isSupported {
            XCTAssertTrue(KernelPath.usable.contains(path), "\(path) failed its self-check on \(CPUFeatures.summary)")
        }
        XCTAssertNotEqual(KernelPath.best, .avx512bf16)
        if CPUFeatures.hasAVX2FMA && Threading.environment("PI0_KERNEL_PATH") == nil {
            XCTAssertNotEqual(KernelPath.best, .portable)
        }
    }

    /// Threads 1, 2 and 3 give bit-identical outputs (same K order per element whatever the split),
    /// including a shape with fewer panels than threads (rows are split then).
    func testThreadCountDoesNotChangeBits() {
        var rng = SplitMix64()
        for (m, n, k) in [(67, 255, 1000), (130, 3, 300), (51, 1024, 129)] {
            let x = rng.floats(m * k), w = rng.floats(n * k), bias = rng.floats(n)
            for element in [WeightElement.float32, .bfloat16] {
                let packed = element == .float32 ? PackedWeight(float32: w, n: n, k: k)
                    : PackedWeight(bfloat16: w.map { UInt16($0.bitPattern >> 16) }, n: n, k: k)
                var outs: [[UInt32]] = []
                for threads in [1, 2, 3] {
                    var y = [Float](repeating: .nan, count: m * n)
                    GEMM.linear(x: x, m: m, ldx: k, weight: packed, bias: bias, y: &y, ldy: n, threads: threads)
                    outs.append(y.map(\.bitPattern))
                }
                XCTAssertEqual(outs[0], outs[1], "m\(m) n\(n) k\(k) \(element): 1 vs 2 threads")
                XCTAssertEqual(outs[0], outs[2], "m\(m) n\(n) k\(k) \(element): 1 vs 3 threads")
            }
        }
    }

    /// Shapes past every blocking boundary of the driver: several K blocks (KC = 256 below k = 8192), several row blocks
    /// (MC = 96 rows) and several column chunks (fp32 paths: 256 KiB of packed W per K block), each with a ragged
    /// end; 1, 2 and 3 threads (m ≥ 96 · threads with small weights takes the row split, the others the
    /// panel split) against the reference, and bit-identical to each other.
    func testBlockedShapesAcrossChunksRowBlocksAndThreads() {
        checkThreadSplits(m: 203, n: 531, k: 521, paths: [.best] + (KernelPath.bf16Products ? [.avx512bf16] : []), tol: 1e-6)
    }

    /// The vdpbf16ps path blocks K by 2048 and chunks 1 MiB of packed W (4 panels of 2048 × 64 bf16) per K
    /// block: K = 2 · 2048 + 333 (three K blocks, an odd ragged tail padded to a pair), 9 panels (three
    /// column chunks, the last ragged), 203 rows (three row blocks, a ragged row tile), 1/2/3 threads,
    /// against the reference and bit-identical across thread counts. Bound as the deep test's.
    func testBF16DotProductsAcrossKBlocksChunksAndThreads() throws {
        guard KernelPath.avx512bf16.isSupported else { throw XCTSkip("no AVX512-BF16 on this CPU (\(CPUFeatures.summary))") }
        checkThreadSplits(m: 203, n: 531, k: 2 * 2048 + 333, paths: [.avx512bf16], tol: 2e-6)
    }

    /// Row counts whose 5-row tiles pad less than 6-row ones run on the 5 × 64 vdpbf16ps tile
    /// (`pi0k_row_variant`): the expert's M = 50 (10 tiles of 5 against 9 of 6 padding 4 rows) and m = 199
    /// (40 tiles of 5, the last ragged, pad 1 against 5; row blocks of 95 rows; on 2 threads the row split),
    /// each against the reference and bit-identical across 1/2/3 threads. m = 306 and 51 keep 6-row tiles.
    func testFiveRowTilesWhenTheyPadLess() throws {
        guard KernelPath.avx512bf16.isSupported else { throw XCTSkip("no AVX512-BF16 on this CPU (\(CPUFeatures.summary))") }
        XCTAssertEqual(pi0k_row_variant(KernelPath.avx512bf16.c, 50), Int32(PI0K_PATH_AVX512BF16_MR5.rawValue))
        XCTAssertEqual(pi0k_row_variant(KernelPath.avx512bf16.c, 306), KernelPath.avx512bf16.c)
        XCTAssertEqual(pi0k_row_variant(KernelPath.avx512bf16.c, 51), KernelPath.avx512bf16.c)
        XCTAssertEqual(pi0k_row_variant(KernelPath.avx512.c, 50), KernelPath.avx512.c)
        XCTAssertEqual(pi0k_row_tile(pi0k_row_variant(KernelPath.avx512bf16.c, 50)), 5)
        for m in [50, 199] {
            checkThreadSplits(m: m, n: 531, k: 2048 + 77, paths: [.avx512bf16], tol: 2e-6)
        }
    }

    /// Deep products (k ≥ 8192, the VLM's down projection) take a longer K block on AVX2 (512): K with a
    /// ragged tail (16 · 512 + 333), ragged row tiles and panels, on every supported path, 1/2/3 threads,
    /// against the reference and bit-identical across thread counts. Bound 2e-6 of Σ|x·w|: fp32 sums of
    /// 8525 terms in 17 blocks (the observed error is ~1e-7 of that scale; a lost K block would be ~6e-2).
    func testDeepKUsesLongerBlocksExactly() {
        checkThreadSplits(m: 37, n: 41, k: 8192 + 333,
                          paths: KernelPath.allCases.filter { $0.isSupported && $0 != .avx512bf16 }, tol: 2e-6)
    }

    /// Deep vdpbf16ps products with m ≥ 96 · threads split by rows whatever the weight size (the VLM's
    /// down projection, `GEMM.packedProduct`): K = 4 · 2048 + 333 (five K blocks) and 197 rows (row tiles of
    /// six packed by the AVX2 transposition of bf16 pairs, a ragged one packed by the plain loop), 1/2/3
    /// threads against the reference and bit-identical to each other.
    func testDeepBF16DotProductsSplitByRows() throws {
        guard KernelPath.avx512bf16.isSupported else { throw XCTSkip("no AVX512-BF16 on this CPU (\(CPUFeatures.summary))") }
        checkThreadSplits(m: 197, n: 67, k: 4 * 2048 + 333, paths: [.avx512bf16], tol: 2e-6)
    }

    /// m × k · (n × k)ᵀ + bias with fp32 and bf16 weights on each path: 1, 2 and 3 threads against the
    /// Double reference, and bit-identical to each other. `.avx512bf16` (bf16 weights only) gets x already
    /// rounded to bf16, as the model gives it, and the bound of `testAVX512BF16Path`.
    func checkThreadSplits(m: Int, n: Int, k: Int, paths: [KernelPath], tol: Float) {
        var rng = SplitMix64()
        let xf = rng.floats(m * k), w = rng.floats(n * k), bias = rng.floats(n)
        let wBits = w.map { UInt16($0.bitPattern >> 16) }
        for path in paths {
            let dot = path == .avx512bf16
            let x = dot ? xf.map(BFloat16.round) : xf, tol = dot ? max(tol, 4e-6) : tol
            for element in dot ? [WeightElement.bfloat16] : [.float32, .bfloat16] {
                let wf = element == .float32 ? w : wBits.map(BFloat16.float)
                let packed = element == .float32 ? PackedWeight(float32: w, n: n, k: k, path: path)
                                                 : PackedWeight(bfloat16: wBits, n: n, k: k, path: path)
                var want = [Float](repeating: 0, count: m * n), scale = want
                GEMM.referenceLinear(x: x, m: m, ldx: k, w: wf, n: n, k: k, bias: bias, y: &want, ldy: n)
                GEMM.referenceLinear(x: x.map(abs), m: m, ldx: k, w: wf.map(abs), n: n, k: k, bias: bias.map(abs), y: &scale, ldy: n)
                var first: [UInt32]?
                for threads in [1, 2, 3] {
                    var y = [Float](repeating: .nan, count: m * n)
                    GEMM.linear(x: x, m: m, ldx: k, weight: packed, bias: bias, y: &y, ldy: n, threads: threads)
                    assertClose(y, want, scale: scale, m: m, n: n, ld: n, tol: tol, "\(path) \(element) \(threads) threads seed \(rng.seed)")
                    if let first { XCTAssertEqual(y.map(\.bitPattern), first, "\(path) \(element): \(threads) threads vs 1") }
                    else { first = y.map(\.bitPattern) }
                }
            }
        }
    }

    /// Weights above 1 M elements are packed on several threads (disjoint panel ranges): check a few rows of
    /// such a product against the reference, fp32 and bf16, with n not a multiple of the panel width.
    func testLargeWeightPackedInParallel() {
        var rng = SplitMix64()
        let m = 3, n = 1101, k = 1000
        let x = rng.floats(m * k), w = rng.floats(n * k)
        let wBits = w.map { UInt16($0.bitPattern >> 16) }
        for element in [WeightElement.float32, .bfloat16] {
            let wf = element == .float32 ? w : wBits.map(BFloat16.float)
            let packed = element == .float32 ? PackedWeight(float32: w, n: n, k: k) : PackedWeight(bfloat16: wBits, n: n, k: k)
            var y = [Float](repeating: .nan, count: m * n), want = y, scale = y
            GEMM.linear(x: x, m: m, ldx: k, weight: packed, bias: nil, y: &y, ldy: n, threads: 2)
            GEMM.referenceLinear(x: x, m: m, ldx: k, w: wf, n: n, k: k, bias: nil, y: &want, ldy: n)
            GEMM.referenceLinear(x: x.map(abs), m: m, ldx: k, w: wf.map(abs), n: n, k: k, bias: nil, y: &scale, ldy: n)
            assertClose(y, want, scale: scale, m: m, n: n, ld: n, tol: 1e-6, "\(element) n\(n) k\(k) seed \(rng.seed)")
        }
    }

    func testEmptyKGivesBias() {
        let bias: [Float] = [1, -2, 3]
        let packed = PackedWeight(float32: [], n: 3, k: 0)
        var y = [Float](repeating: .nan, count: 6)
        GEMM.linear(x: [], m: 2, ldx: 0, weight: packed, bias: bias, y: &y, ldy: 3)
        XCTAssertEqual(y, [1, -2, 3, 1, -2, 3])
    }

    func testPackedByteCount() {
        let w = [Float](repeating: 1, count: 17 * 10)
        let f = PackedWeight(float32: w, n: 17, k: 10), b = PackedWeight(bfloat16: w.map { _ in 0x3f80 }, n: 17, k: 10)
        let nr = KernelPath.best.panelWidth
        XCTAssertEqual(f.byteCount, (17 + nr - 1) / nr * nr * 10 * 4)
        XCTAssertEqual(b.byteCount, f.byteCount / 2)
    }

    /// Unpacked products used by attention: A·Bᵀ and A·B against Double loops, strided, with alpha.
    func testMatmulABtAndAB() {
        var rng = SplitMix64()
        for (m, n, k) in [(1, 1, 1), (7, 33, 72), (67, 17, 256), (40, 255, 5)] {
            let lda = k + 2, ldb = k + 1, ldc = n + 3, alpha: Float = 0.0625
            let a = rng.floats(m * lda), b = rng.floats(n * ldb)
            var c = [Float](repeating: sentinel, count: m * ldc), want = c, scale = c
            GEMM.matmulABt(a: a, m: m, lda: lda, b: b, n: n, ldb: ldb, k: k, alpha: alpha, c: &c, ldc: ldc, threads: 2)
            GEMM.referenceLinear(x: a, m: m, ldx: lda, w: b, n: n, k: k, ldw: ldb, bias: nil, y: &want, ldy: ldc, alpha: alpha)
            GEMM.referenceLinear(x: a.map(abs), m: m, ldx: lda, w: b.map(abs), n: n, k: k, ldw: ldb, bias: nil, y: &scale, ldy: ldc, alpha: alpha)
            assertClose(c, want, scale: scale, m: m, n: n, ld: ldc, tol: 1e-6, "ABt m\(m) n\(n) k\(k) seed \(rng.seed)")

            let ldbKN = n + 4 // B is [k, n] now
            let bkn = rng.floats(k * ldbKN)
            var c2 = [Float](repeating: sentinel, count: m * ldc), want2 = c2, scale2 = c2
            GEMM.matmulAB(a: a, m: m, lda: lda, b: bkn, k: k, ldb: ldbKN, n: n, alpha: alpha, c: &c2, ldc: ldc, threads: 2)
            GEMM.referenceMatmulAB(a: a, m: m, lda: lda, b: bkn, k: k, ldb: ldbKN, n: n, alpha: alpha, c: &want2, ldc: ldc)
            GEMM.referenceMatmulAB(a: a.map(abs), m: m, lda: lda, b: bkn.map(abs), k: k, ldb: ldbKN, n: n, alpha: alpha, c: &scale2, ldc: ldc)
            assertClose(c2, want2, scale: scale2, m: m, n: n, ld: ldc, tol: 1e-6, "AB m\(m) n\(n) k\(k) seed \(rng.seed)")
        }
    }
}
