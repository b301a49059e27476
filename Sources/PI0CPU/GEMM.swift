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
        withExtendedLifetime(weight) {
            packedProduct(x: x, m: m, ldx: ldx, packed: UnsafeRawPointer(weight.buffer), n: weight.n, k: weight.k,
                          element: weight.element, path: weight.path, bias: bias, y: y, ldy: ldy, alpha: alpha, threads: threads)
        }
    }

    /// `linear` on a packed buffer the caller owns (laid out by `pi0k_pack_*` for `path`), so that callers
    /// that pack per call (attention's K and V) can reuse their buffers.
    static func packedProduct(x: UnsafePointer<Float>, m: Int, ldx: Int, packed: UnsafeRawPointer, n: Int, k: Int,
                              element: WeightElement, path: KernelPath, bias: UnsafePointer<Float>?,
                              y: UnsafeMutablePointer<Float>, ldy: Int, alpha: Float, threads: Int) {
        precondition(m >= 0 && ldx >= k && ldy >= n, "GEMM.linear: bad strides (m \(m), ldx \(ldx) < k \(k) or ldy \(ldy) < n \(n))")
        if m == 0 || n == 0 { return }
        let elem: Int32 = element == .float32 ? 0 : 1
        // The tile's row count may depend on m (vdpbf16ps: 5-row tiles when they pad less, `pi0k_row_variant`).
        let cPath = pi0k_row_variant(path.c, m)
        let nr = path.panelWidth, mr = Int(pi0k_row_tile(cPath))
        let panels = (n + nr - 1) / nr, rowTiles = (m + mr - 1) / mr

        // Work split: panels (each thread streams its own slice of W); row blocks too when there are fewer
        // panels than threads. Tiny products stay on one thread.
        var nt = min(Threading.resolve(threads), panels * rowTiles)
        if m * n * k < 1 << 16 { nt = 1 }
        // Large M with weights that fit in the last-level cache: split rows instead, so each thread packs
        // only its own rows of x (with a panel split every thread packs all of x, which cost ~9 % of the
        // vision tower), and the threads share W through the cache. Weights bigger than that (the VLM's
        // MLP) stay split by panels so that each thread streams only its half from memory, except deep
        // products (k ≥ 8192, the MLP's down projection): with panels every thread packs all of x once per
        // K block (8 times for K = 16384), and rows measured 4-10 % faster there although each thread then
        // reads all of W (2 threads, C harness, 818 and 306 × 16384 → 2048, docs/PERFORMANCE_KERNELS.md).
        let weightBytes = n * k * (element == .float32 ? 4 : 2)
        let byRows = nt > 1 && m >= nt * 96 && (weightBytes <= 24 << 20 || k >= 8192)
        let pParts = byRows ? 1 : min(nt, panels)
        let mParts = byRows ? nt : max(1, min(rowTiles, (nt + pParts - 1) / pParts))

        func run(_ x: UnsafeRawPointer, _ ldxElems: Int) {
            var job = GemmJob(path: cPath, elem: elem, x: x, ldx: ldxElems, m: m, packed: packed, n: n, k: k, alpha: alpha,
                              bias: bias, y: y, ldy: ldy, panels: panels, rowTiles: rowTiles, mr: mr, pParts: pParts, mParts: mParts)
            Threading.run(tasks: pParts * mParts, job: &job) { ctx, task in
                let j = ctx!.assumingMemoryBound(to: GemmJob.self).pointee
                let pr = Threading.split(j.panels, parts: j.pParts, part: task % j.pParts)
                let tr = Threading.split(j.rowTiles, parts: j.mParts, part: task / j.pParts)
                let m0 = tr.lowerBound * j.mr, m1 = min(j.m, tr.upperBound * j.mr)
                let status = pi0k_gemm(j.path, j.elem, j.x, j.ldx, m0, m1, j.packed, j.n, j.k, j.alpha,
                                       j.bias, j.y, j.ldy, pr.lowerBound, pr.upperBound)
                precondition(status == 0, "GEMM.linear: kernel failed (\(status): -1 out of memory, -2 no kernel)")
            }
        }
        if path == .avx512bf16 { // vdpbf16ps multiplies bf16 by bf16: round the activations once
            let kpad = (k + 1) & ~1
            // the calling thread's reusable buffer (pi0k_gemm's own scratch is a different one)
            guard let xb = pi0k_bf16_rows_scratch(m * kpad) else { preconditionFailure("GEMM.linear: out of memory") }
            var rounding = RoundRowsJob(x: x, ldx: ldx, k: k, dst: xb, kpad: kpad, m: m, parts: m * k < 1 << 16 ? 1 : min(nt, m))
            Threading.run(tasks: rounding.parts, job: &rounding) { ctx, part in
                let j = ctx!.assumingMemoryBound(to: RoundRowsJob.self).pointee
                let r = Threading.split(j.m, parts: j.parts, part: part)
                pi0k_round_rows_bf16(j.x + r.lowerBound * j.ldx, r.count, j.ldx, j.k, j.dst + r.lowerBound * j.kpad, j.kpad)
            }
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
    /// large) into `workspace` when given (no allocation once it has grown); pack once with `PackedWeight`
    /// and call `linear` when B is reused.
    public static func matmulABt(a: UnsafePointer<Float>, m: Int, lda: Int, b: UnsafePointer<Float>, n: Int,
                                 ldb: Int, k: Int, alpha: Float = 1, c: UnsafeMutablePointer<Float>, ldc: Int,
                                 threads: Int = 0, workspace: AttentionWorkspace? = nil) {
        precondition(ldb >= k, "GEMM.matmulABt: ldb < k")
        withWorkspace(workspace) { ws, path in
            let packed = ws.packTransposed(0, b, n: n, k: k, ldb: ldb, path: path)
            packedProduct(x: a, m: m, ldx: lda, packed: packed, n: n, k: k, element: .float32, path: path, bias: nil,
                          y: c, ldy: ldc, alpha: alpha, threads: threads)
        }
    }

    /// C[i, j] = alpha · Σ_k A[i, k] · B[k, j]: A [m, k] (lda), B [k, n] row-major (ldb), C [m, n] (ldc). P·V.
    public static func matmulAB(a: UnsafePointer<Float>, m: Int, lda: Int, b: UnsafePointer<Float>, k: Int,
                                ldb: Int, n: Int, alpha: Float = 1, c: UnsafeMutablePointer<Float>, ldc: Int,
                                threads: Int = 0, workspace: AttentionWorkspace? = nil) {
        precondition(ldb >= n, "GEMM.matmulAB: ldb < n")
        withWorkspace(workspace) { ws, path in
            let packed = ws.pack(1, b, k: k, n: n, ldb: ldb, path: path)
            packedProduct(x: a, m: m, ldx: lda, packed: packed, n: n, k: k, element: .float32, path: path, bias: nil,
                          y: c, ldy: ldc, alpha: alpha, threads: threads)
        }
    }

    /// Runs body with the caller's workspace (or a temporary one) and the fp32 kernel path.
    private static func withWorkspace(_ workspace: AttentionWorkspace?, _ body: (AttentionWorkspace, KernelPath) -> Void) {
        let ws = workspace ?? AttentionWorkspace()
        withExtendedLifetime(ws) { body(ws, KernelPath.best) }
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

/// Everything one GEMM task needs (see `Threading.run(tasks:job:_:)`).
private struct GemmJob {
    let path: Int32, elem: Int32
    let x: UnsafeRawPointer, ldx: Int, m: Int
    let packed: UnsafeRawPointer, n: Int, k: Int
    let alpha: Float, bias: UnsafePointer<Float>?
    let y: UnsafeMutablePointer<Float>, ldy: Int
    let panels: Int, rowTiles: Int, mr: Int, pParts: Int, mParts: Int
}

/// The `.avx512bf16` path's rounding of x to bf16 rows, split by rows across the threads.
private struct RoundRowsJob {
    let x: UnsafePointer<Float>, ldx: Int, k: Int
    let dst: UnsafeMutablePointer<UInt16>, kpad: Int, m: Int, parts: Int
}
