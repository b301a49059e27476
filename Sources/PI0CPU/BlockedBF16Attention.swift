// bfloat16 attention on vdpbf16ps in blocks of query rows: `CPUBackend.attention` for one KV head with
// contiguous query heads (Gemma's MQA), K and V packed as bf16 pairs once per call. Each task takes whole
// blocks of tb queries (tb·H ≈ 96 rows) and for each block
//   rounds its q rows to bf16 bits, scores = q·Kᵀ, the bf16 softmax (scores rounded, scaled, rounded, mask
//   added, float32 softmax, probabilities rounded), P·V into `out`, the output rounded to bf16,
// so a block's scores stay in L2 and the call is one fork-join after the packing. Before (whole-matrix
// products) the VLM's 3-camera prefix wrote and re-read a 21 MB score matrix three times per layer over
// seven fork-joins. Every element goes through the same operations as in the whole-matrix form (a GEMM
// element does not depend on the rows beside it or on the row tile), so results are bit-identical to it
// and independent of the thread count (BF16AttentionTests).
import CPI0Kernels

struct BlockedBF16AttentionJob {
    let q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    let packedK: UnsafeRawPointer, packedV: UnsafeRawPointer
    let mask: UnsafePointer<Float>?, maskStride: Int
    let queries: Int, keys: Int, heads: Int, headDim: Int, scale: Float
    let tb: Int, blocks: Int, tasks: Int
    /// Per task: `scoreFloats` floats of scores, `qCount` and `pCount` bf16 bits of rounded q and P rows.
    let scores: UnsafeMutablePointer<Float>, scoreFloats: Int
    let qBits: UnsafeMutablePointer<UInt16>, qCount: Int
    let pBits: UnsafeMutablePointer<UInt16>, pCount: Int

    var qPad: Int { (headDim + 1) & ~1 }
    var pPad: Int { (keys + 1) & ~1 }

    /// Blocks of at most ~96 rows (the GEMM's row block), the same number for every task, as even as
    /// the query count allows (as `Attention.mqa`).
    static func blocking(queries t: Int, heads: Int, threads: Int) -> (tb: Int, blocks: Int, tasks: Int) {
        let nt = max(1, min(threads, t))
        let maxTB = max(1, 96 / max(heads, 1))
        let perTask = (t + nt * maxTB - 1) / (nt * maxTB)
        let tb = max(1, (t + nt * perTask - 1) / (nt * perTask))
        let blocks = (t + tb - 1) / tb
        return (tb, blocks, min(nt, blocks))
    }

    func run(task: Int) {
        let sc = scores + task * scoreFloats, qb = qBits + task * qCount, pb = pBits + task * pCount
        let dot = KernelPath.avx512bf16.c, elem = Int32(PI0K_ELEM_BF16.rawValue)
        let softmaxPath = KernelPath.best.c
        for block in Threading.split(blocks, parts: tasks, part: task) {
            let t0 = block * tb, rows = min(tb, queries - t0) * heads, first = t0 * heads
            let path = pi0k_row_variant(dot, rows)
            pi0k_round_rows_bf16(q + first * headDim, rows, headDim, headDim, qb, qPad)
            var status = pi0k_gemm(path, elem, qb, qPad, 0, rows, packedK, keys, headDim, 1, nil, sc, keys, 0, Int.max)
            softmaxScores(sc, rows: rows, keys: keys, mask: mask.map { $0 + t0 * maskStride }, maskStride: maskStride,
                          rowsPerQuery: heads, scale: scale, bf16: true, path: softmaxPath)
            pi0k_round_rows_bf16(sc, rows, keys, keys, pb, pPad)   // the probabilities rounded, as bf16 bits
            status |= pi0k_gemm(path, elem, pb, pPad, 0, rows, packedV, headDim, keys, 1, nil, out + first * headDim, headDim, 0, Int.max)
            pi0e_round_bf16_rows(out + first * headDim, rows, headDim, headDim)
            precondition(status == 0, "bf16 attention: GEMM kernel failed (out of memory)")
        }
    }
}
