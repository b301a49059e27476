// Multi-query attention (one K/V head shared by all query heads, as in Gemma-2B/300M in π0) with an
// additive mask: out[t, h, :] = softmax_j(scale · q[t, h, :]·k[j, :] + mask[t, j]) · v[j, :].
//
// Letters: T query positions, S key positions, H query heads, D head dim.
// The fast version reuses the GEMM kernels: K and V are packed once per call (into a reusable
// `AttentionWorkspace`), then for a block of query
// positions the H·tb query rows are one [H·tb, D]·[D, S] product (scale applied in the kernel's epilogue),
// the mask is added and the rows soft-maxed in fp32 in place, and P·V is a second product written
// straight into `out`. Blocks of query positions run on separate threads. Without a mask (SigLIP) the
// products run keys as rows instead (`keyRows`, Sources/CPI0Kernels/pi0_attention.c), which pads nothing
// to a panel for SigLIP's head dim 72.
import CPI0Kernels

public enum Attention {
    /// LeRobot's masked-score value (`torch.finfo(float32).min`-like big negative used by π0's `torch.where`).
    public static let maskedValue: Float = -2.3819763e38

    /// The path the model's attention uses for head dim `headDim`: `KernelPath.best`, unless the attention
    /// is masked (the query-rows form, whose P·V product has N = D) and AVX2 pads D to fewer panel columns
    /// (SigLIP's D = 72 fills 2 AVX-512 panels of 64, 44 % padding, against 5 AVX2 panels of 16, 10 %;
    /// measured on a Zen 4, 2 threads: 108 → 126 GFLOP/s). Without a mask (`keyRows`) D is on the tile's
    /// rows and nothing is padded to a panel, so `best` is kept.
    public static func preferredPath(headDim: Int, masked: Bool = true) -> KernelPath {
        let best = KernelPath.best
        guard masked, best == .avx512, KernelPath.usable.contains(.avx2) else { return best }
        func padding(_ p: KernelPath) -> Int { (headDim + p.panelWidth - 1) / p.panelWidth * p.panelWidth - headDim }
        return padding(.avx2) < padding(.avx512) ? .avx2 : best
    }

    /// Strides (in floats; defaults are the contiguous layouts):
    /// - q: element (t, h, d) at q[t·qStrideT + h·qStrideH + d]; defaults qStrideH = D, qStrideT = H·qStrideH.
    /// - k, v: element (j, d) at k[j·ldk + d], v[j·ldv + d]; defaults D.
    /// - mask: [T, S] additive, element (t, j) at mask[t·ldMask + j]; default ldMask = S; nil = no mask.
    /// - out: element (t, h, d) at out[t·outStrideT + h·outStrideH + d]; defaults D and H·D, i.e. [T, H·D].
    /// threads <= 0 means `Threading.defaultThreadCount`. Results do not depend on the thread count.
    /// path: the GEMM kernels and exp used (tests compare paths; callers keep the default).
    public static func mqa(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                           mask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                           t: Int, s: Int, heads: Int, headDim: Int, scale: Float,
                           qStrideT: Int? = nil, qStrideH: Int? = nil, ldk: Int? = nil, ldv: Int? = nil,
                           ldMask: Int? = nil, outStrideT: Int? = nil, outStrideH: Int? = nil,
                           threads: Int = 0, path kernelPath: KernelPath = .best, workspace: AttentionWorkspace? = nil) {
        precondition(kernelPath != .avx512bf16, "Attention.mqa: fp32 paths only")
        precondition(t >= 0 && s >= 0 && heads >= 0 && headDim >= 0, "Attention.mqa: negative size")
        if t == 0 || heads == 0 { return }
        let qH = qStrideH ?? headDim, qT = qStrideT ?? heads * qH
        let oH = outStrideH ?? headDim, oT = outStrideT ?? heads * oH
        let ldk = ldk ?? headDim, ldv = ldv ?? headDim, ldMask = ldMask ?? s
        precondition(qH >= headDim && oH >= headDim && ldk >= headDim && ldv >= headDim && ldMask >= s,
                     "Attention.mqa: a stride is smaller than the row it holds")

        precondition(kernelPath.isSupported, "Attention.mqa: kernel path \(kernelPath) is not supported by this CPU")
        let ws = workspace ?? AttentionWorkspace()
        if mask == nil {
            keyRows(q: q, k: k, v: v, out: out, t: t, s: s, heads: heads, headDim: headDim, scale: scale, qT: qT, qH: qH,
                    ldk: ldk, ldv: ldv, oT: oT, oH: oH, threads: threads, path: kernelPath, workspace: ws)
            return
        }
        let packedK = ws.packTransposed(0, k, n: s, k: headDim, ldb: ldk, path: kernelPath) // scores = q · Kᵀ
        let packedV = ws.pack(1, v, k: s, n: headDim, ldb: ldv, path: kernelPath)          // out = P · V
        // Rows of one timestep block as one matrix needs uniform row strides across timesteps: contiguous
        // heads, or a single head (SigLIP calls once per head, rows t·qT apart).
        let flat = heads == 1 || (qT == heads * qH && oT == heads * oH)
        let qRow = heads == 1 ? qT : qH, oRow = heads == 1 ? oT : oH
        let nt = max(1, min(Threading.resolve(threads), t))
        // Blocks of at most ~96 query rows (the GEMM's row block), the same number for every thread
        // (3 blocks on 2 threads would leave one idle a third of the time), as even as t allows.
        let maxTB = max(1, 96 / heads)
        let perThread = (t + nt * maxTB - 1) / (nt * maxTB)
        let tb = max(1, (t + nt * perThread - 1) / (nt * perThread))
        let blocks = (t + tb - 1) / tb
        let tasks = min(nt, blocks)

        let blockFloats = (max(1, tb * heads * s) + 15) / 16 * 16   // one score block per task, 64-byte aligned
        let scores = ws.buffer(2, bytes: tasks * blockFloats * 4).assumingMemoryBound(to: Float.self)
        var job = MQAJob(path: kernelPath.c, q: q, k: packedK, v: packedV, mask: mask, out: out, scores: scores,
                         blockFloats: blockFloats, t: t, s: s, heads: heads, headDim: headDim, scale: scale, qT: qT, qH: qH,
                         ldMask: ldMask, oT: oT, oH: oH, flat: flat, qRow: qRow, oRow: oRow, tb: tb, blocks: blocks, tasks: tasks)
        Threading.run(tasks: tasks, job: &job) { ctx, task in
            ctx!.assumingMemoryBound(to: MQAJob.self).pointee.run(task: task)
        }
        withExtendedLifetime(ws) {}
    }

    /// No mask: keys as rows (`pi0k_attn_queries`, see Sources/CPI0Kernels/pi0_attention.c). K and Vᵀ are
    /// packed once; tasks take (head, panel of NR queries) units. A query's result does not depend on the
    /// split, so the thread count does not change any bit.
    private static func keyRows(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                out: UnsafeMutablePointer<Float>, t: Int, s: Int, heads: Int, headDim: Int, scale: Float,
                                qT: Int, qH: Int, ldk: Int, ldv: Int, oT: Int, oH: Int, threads: Int,
                                path: KernelPath, workspace ws: AttentionWorkspace) {
        if s == 0 { // no keys: an empty weighted sum, 0 (as the masked path gives), never 0/0
            for i in 0..<t { for h in 0..<heads { (out + i * oT + h * oH).update(repeating: 0, count: headDim) } }
            return
        }
        let keys = ws.buffer(0, bytes: Int(pi0k_attn_keys_count(path.c, s, headDim)) * 4).assumingMemoryBound(to: Float.self)
        pi0k_attn_pack_keys(path.c, k, ldk, v, ldv, s, headDim, keys)
        let panels = (t + path.panelWidth - 1) / path.panelWidth
        let tasks = max(1, min(Threading.resolve(threads), heads * panels))
        let taskFloats = Int(pi0k_attn_task_count(path.c, s, headDim))
        let work = ws.buffer(2, bytes: tasks * taskFloats * 4).assumingMemoryBound(to: Float.self)
        var job = KeyRowsJob(path: path.c, keys: keys, q: q, out: out, work: work, taskFloats: taskFloats, t: t, s: s,
                             headDim: headDim, scale: scale, qT: qT, qH: qH, oT: oT, oH: oH, nr: path.panelWidth,
                             panels: panels, units: heads * panels, tasks: tasks)
        Threading.run(tasks: tasks, job: &job) { ctx, task in
            ctx!.assumingMemoryBound(to: KeyRowsJob.self).pointee.run(task: task)
        }
        withExtendedLifetime(ws) {}
    }

    /// Plain reference: Double everywhere (scores, max-subtracted softmax, weighted sum), rounded to Float
    /// once. Same arguments and stride defaults as `mqa`.
    public static func referenceMQA(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                    mask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                                    t: Int, s: Int, heads: Int, headDim: Int, scale: Float,
                                    qStrideT: Int? = nil, qStrideH: Int? = nil, ldk: Int? = nil, ldv: Int? = nil,
                                    ldMask: Int? = nil, outStrideT: Int? = nil, outStrideH: Int? = nil) {
        let qH = qStrideH ?? headDim, qT = qStrideT ?? heads * qH
        let oH = outStrideH ?? headDim, oT = outStrideT ?? heads * oH
        let ldk = ldk ?? headDim, ldv = ldv ?? headDim, ldMask = ldMask ?? s
        var p = [Double](repeating: 0, count: s)
        for i in 0..<t {
            for h in 0..<heads {
                var mx = -Double.infinity
                for j in 0..<s {
                    var dot = 0.0
                    for d in 0..<headDim { dot += Double(q[i * qT + h * qH + d]) * Double(k[j * ldk + d]) }
                    p[j] = dot * Double(scale) + (mask.map { Double($0[i * ldMask + j]) } ?? 0)
                    mx = max(mx, p[j])
                }
                var sum = 0.0
                for j in 0..<s {
                    p[j] = _exp(p[j] - mx)
                    sum += p[j]
                }
                for d in 0..<headDim {
                    var acc = 0.0
                    for j in 0..<s { acc += p[j] * Double(v[j * ldv + d]) }
                    out[i * oT + h * oH + d] = Float(acc / sum)
                }
            }
        }
    }
}

/// One `Attention.mqa` call's arguments; task i handles its share of the query blocks.
private struct MQAJob {
    let path: Int32
    let q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer   // k, v packed
    let mask: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>
    let scores: UnsafeMutablePointer<Float>, blockFloats: Int
    let t: Int, s: Int, heads: Int, headDim: Int, scale: Float
    let qT: Int, qH: Int, ldMask: Int, oT: Int, oH: Int
    let flat: Bool, qRow: Int, oRow: Int   // flat: row r of a block at q + r·qRow, out + r·oRow
    let tb: Int, blocks: Int, tasks: Int

    func run(task: Int) {
        let scores = self.scores + task * blockFloats
        for block in Threading.split(blocks, parts: tasks, part: task) {
            let t0 = block * tb, tc = min(tb, t - t0), rows = tc * heads
            // scores[r, j] = scale · q_r · k_j, r = (t - t0)·H + h
            var ok = true
            if flat {
                ok = ok && 0 == pi0k_gemm(path, 0, q + t0 * qT, qRow, 0, rows, k, s, headDim, scale, nil, scores, s, 0, Int.max)
            } else {
                for i in 0..<tc {
                    ok = ok && 0 == pi0k_gemm(path, 0, q + (t0 + i) * qT, qH, 0, heads, k, s, headDim, scale, nil,
                                              scores + i * heads * s, s, 0, Int.max)
                }
            }
            precondition(ok, "Attention.mqa: GEMM kernel failed (out of memory)")
            pi0k_softmax_rows(path, scores, rows, s, s, mask.map { $0 + t0 * ldMask }, ldMask, heads)
            // out rows = P · V
            if flat {
                ok = ok && 0 == pi0k_gemm(path, 0, scores, s, 0, rows, v, headDim, s, 1, nil, out + t0 * oT, oRow, 0, Int.max)
            } else {
                for i in 0..<tc {
                    ok = ok && 0 == pi0k_gemm(path, 0, scores + i * heads * s, s, 0, heads, v, headDim, s, 1, nil,
                                              out + (t0 + i) * oT, oH, 0, Int.max)
                }
            }
            precondition(ok, "Attention.mqa: GEMM kernel failed (out of memory)")
        }
    }
}

/// One unmasked `Attention.mqa` call (keys as rows); task i handles its share of (head, query panel) units.
private struct KeyRowsJob {
    let path: Int32, keys: UnsafePointer<Float>, q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    let work: UnsafeMutablePointer<Float>, taskFloats: Int
    let t: Int, s: Int, headDim: Int, scale: Float, qT: Int, qH: Int, oT: Int, oH: Int
    let nr: Int, panels: Int, units: Int, tasks: Int

    func run(task: Int) {
        for unit in Threading.split(units, parts: tasks, part: task) {
            let h = unit / panels, t0 = unit % panels * nr
            let status = pi0k_attn_queries(path, keys, q + h * qH, qT, t0, min(t, t0 + nr), s, headDim, scale,
                                           out + h * oH, oT, work + task * taskFloats)
            precondition(status == 0, "Attention.mqa: no fp32 kernel for this path")
        }
    }
}

#if canImport(Glibc)
import Glibc
private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
#elseif canImport(Darwin)
import Darwin
private func _exp(_ x: Double) -> Double { Darwin.exp(x) }
#endif
