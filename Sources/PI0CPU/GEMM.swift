// Linear layers and plain matrix products on the packed-panel kernels, threaded over panels (and row
// blocks when there are fewer panels than threads).
//
// Determinism: every output element is produced by the same instruction sequence whatever the split
// (K is blocked identically; partial tiles are computed at full size on a copy), so the result does not
// depend on the thread count.
import CPI0Kernels

public enum GEMM {
    /// y[i, j] = alpha · Σ_k x[i, k] · W[j, k] (+ bias[j]) for i < m, j < weight.n.
    /// x: [m, weight.k] with row stride ldx; y: [m, weight.n] with row stride ldy; bias: [weight.n] or nil.
    /// threads <= 0 means `Threading.defaultThreadCount`. fp32 accumulation; bf16 weights are widened
    /// exactly (bf16 → f32 is a shift). With `.avx512bf16` weights, x is rounded to bf16 first.
    public static func linear(x: UnsafePointer<Float>, m: Int, ldx: Int, weight: PackedWeight,
                              bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ldy: Int,
                              alpha: Float = 1, threads: Int = 0) {
        let n = weight.n, k = weight.k
        precondition(m >= 0 && ldx >= k && ldy >= n, "GEMM.linear: bad strides (m \(m), ldx \(ldx) < k \(k) or ldy \(ldy) < n \(n))")
        if m == 0 || n == 0 { return }
        let path = weight.path
        let elem: Int32 = weight.element == .float32 ? 0 : 1
        let nr = path.panelWidth, mr = path.rowTile
        let panels = (n + nr - 1) / nr, rowTiles = (m + mr - 1) / mr

        // Work split: panels (each thread streams its own slice of W); row blocks too when there are fewer
        // panels than threads. Tiny products stay on one thread.
        var nt = min(Threading.resolve(threads), panels * rowTiles)
        if m * n * k < 1 << 16 { nt = 1 }
        // Large M with weights that fit in the last-level cache: split rows instead, so each thread packs
        // only its own rows of x (with a panel split every thread packs all of x, which cost ~9 % of the
        // vision tower), and the threads share W through the cache. Weights bigger than that (the VLM's
        // MLP) stay split by panels so that each thread streams only its half from memory.
        let weightBytes = n * k * (weight.element == .float32 ? 4 : 2)
        let byRows = nt > 1 && m >= nt * 96 && weightBytes <= 24 << 20
        let pParts = byRows ? 1 : min(nt, panels)
        let mParts = byRows ? nt : max(1, min(rowTiles, (nt + pParts - 1) / pParts))

        let biasP = SendablePointer(bias), yP = SendablePointer(y)
        func run(_ x: UnsafeRawPointer, _ ldxElems: Int) {
            let xP = SendablePointer(x)
            Threading.run(tasks: pParts * mParts) { task in
                let pr = Threading.split(panels, parts: pParts, part: task % pParts)
                let tr = Threading.split(rowTiles, parts: mParts, part: task / pParts)
                let m0 = tr.lowerBound * mr, m1 = min(m, tr.upperBound * mr)
                let status = pi0k_gemm(path.c, elem, xP.value, ldxElems, m0, m1, weight.buffer, n, k, alpha,
                                       biasP.value, yP.value, ldy, pr.lowerBound, pr.upperBound)
                precondition(status == 0, "GEMM.linear: kernel failed (\(status): -1 out of memory, -2 no kernel)")
            }
        }
        if path == .avx512bf16 { // vdpbf16ps multiplies bf16 by bf16: round the activations once
            let kpad = (k + 1) & ~1
            let xb = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, m * kpad))
            defer { xb.deallocate() }
            pi0k_round_rows_bf16(x, m, ldx, k, xb, kpad)
            run(UnsafeRawPointer(xb), kpad)
        } else {
            run(UnsafeRawPointer(x), ldx)
        }
    }

    /// Obviously correct reference: a triple loop with **Double** accumulation, then alpha, bias, rounded to
    /// Float once. W is [n, k] row-major (row stride ldw, default k).
    public static func referenceLinear(x: UnsafePointer<Float>, m: Int, ldx: Int, w: UnsafePointer<Float>,
                                       n: Int, k: Int, ldw: Int? = nil, bias: UnsafePointer<Float>?,
                                       y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float = 1) {
        let ldw = ldw ?? k
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for kk in 0..<k { s += Double(x[i * ldx + kk]) * Double(w[j * ldw + kk]) }
                s *= Double(alpha)
                if let bias { s += Double(bias[j]) }
                y[i * ldy + j] = Float(s)
            }
        }
    }

    /// C[i, j] = alpha · Σ_k A[i, k] · B[j, k]: A [m, k] (lda), B [n, k] row-major unpacked (ldb), C [m, n] (ldc).
    /// Attention scores QKᵀ. Packs B on every call (O(n·k), small next to the O(m·n·k) product when m is
    /// large); pack once with `PackedWeight` and call `linear` when B is reused.
    public static func matmulABt(a: UnsafePointer<Float>, m: Int, lda: Int, b: UnsafePointer<Float>, n: Int,
                                 ldb: Int, k: Int, alpha: Float = 1, c: UnsafeMutablePointer<Float>, ldc: Int,
                                 threads: Int = 0) {
        let packed = PackedWeight(float32: b, n: n, k: k, ldw: ldb)
        linear(x: a, m: m, ldx: lda, weight: packed, bias: nil, y: c, ldy: ldc, alpha: alpha, threads: threads)
    }

    /// C[i, j] = alpha · Σ_k A[i, k] · B[k, j]: A [m, k] (lda), B [k, n] row-major (ldb), C [m, n] (ldc). P·V.
    public static func matmulAB(a: UnsafePointer<Float>, m: Int, lda: Int, b: UnsafePointer<Float>, k: Int,
                                ldb: Int, n: Int, alpha: Float = 1, c: UnsafeMutablePointer<Float>, ldc: Int,
                                threads: Int = 0) {
        let packed = PackedWeight(float32KN: b, k: k, n: n, ldb: ldb)
        linear(x: a, m: m, ldx: lda, weight: packed, bias: nil, y: c, ldy: ldc, alpha: alpha, threads: threads)
    }

    /// Reference for `matmulAB` (Double accumulation).
    public static func referenceMatmulAB(a: UnsafePointer<Float>, m: Int, lda: Int, b: UnsafePointer<Float>, k: Int,
                                         ldb: Int, n: Int, alpha: Float = 1, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for kk in 0..<k { s += Double(a[i * lda + kk]) * Double(b[kk * ldb + j]) }
                c[i * ldc + j] = Float(s * Double(alpha))
            }
        }
    }
}
