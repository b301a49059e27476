// The op table's graph check, for backends that capture work (`GraphCapturing`): a short mixed
// sequence (a bf16 linear through the tensor-core path, RMSNorm, attention, the gated product, residual
// and Euler updates, a finite check) run eagerly, then captured once and replayed twice; the replays must
// reproduce the eager run and the reference. On a GPU this exercises the real driver's stream capture
// and cuBLAS inside a graph (`pi0 cuda-check`).
import PI0Tensor

extension OpTable {
    func graphChecks() throws {
        guard let capturing = be as? GraphCapturing else { return }
        let (rows, k, heads, d) = (37, 96, 4, 10)
        let n = heads * d
        let w = WeightTensor(name: "w", shape: [n, k], floats: rng.array(n * k, 0.1), dtype: .bfloat16)
        let pa = try be.prepareLinear(w, bias: nil, inputsAreBF16: true), pb = try ref.prepareLinear(w, bias: nil, inputsAreBF16: true)
        let x0 = rng.array(rows * k, bf16: true), acc0 = rng.array(rows * n)
        let x = pair(x0), acc = pair(acc0)
        let y = pair([Float](repeating: 0, count: rows * n)), h = pair([Float](repeating: 0, count: rows * n))
        let o = pair([Float](repeating: 0, count: rows * n)), g = pair([Float](repeating: 0, count: rows * n))
        let status = pair([0, 0, 0])
        func sequence(_ b: ComputeBackend, _ p: KeyPath<TensorPair, TensorRef>) {
            b.linear(b === be ? pa : pb, x: x[keyPath: p], rows: rows, ldx: k, y: y[keyPath: p], ldy: n)
            b.roundToBF16(y[keyPath: p], rows: rows, width: n, ld: n)
            b.rmsNorm(y[keyPath: p], rows: rows, width: n, weight: nil, eps: 1e-6, roundToBF16: true, out: h[keyPath: p])
            b.attention(AttentionCall(q: h[keyPath: p], qStride: n, k: h[keyPath: p], kStride: n, v: y[keyPath: p], vStride: n,
                                      mask: nil, maskStride: 0, out: o[keyPath: p], outStride: n, queries: rows, keys: rows,
                                      heads: heads, kvHeads: heads, headDim: d, scale: 0.3, roundToBF16: true))
            b.geluTanhMul(gate: o[keyPath: p], up: h[keyPath: p], rows: rows, width: n, ldIn: n, roundToBF16: true,
                          out: g[keyPath: p], ldOut: n)
            b.add(g[keyPath: p], o[keyPath: p], count: rows * n, roundToBF16: true)
            b.eulerStep(acc[keyPath: p], velocity: g[keyPath: p], count: rows * n, dt: -0.1)
            b.checkFinite(acc[keyPath: p], count: rows * n, status: status[keyPath: p])
        }
        sequence(ref, \.b)
        let want = ref.download(acc.b, count: acc.count) + ref.download(status.b, count: 3)
        sequence(be, \.a)
        let eager = be.download(acc.a, count: acc.count) + be.download(status.a, count: 3)
        let work = try capturing.capture { sequence(be, \.a) }
        var replays: [[Float]] = []
        for _ in 0..<2 {
            be.upload(acc0, to: acc.a)
            try capturing.replay(work)
            replays.append(be.download(acc.a, count: acc.count) + be.download(status.a, count: 3))
        }
        results.append(CUDACheck(op: "graph: replay 1 vs eager (8 ops captured once)", relL2: CUDASelfTest.relL2(replays[0], eager),
                                 tolerance: 1e-6, exact: true))
        results.append(CUDACheck(op: "graph: replay 2 vs replay 1", relL2: CUDASelfTest.relL2(replays[1], replays[0]),
                                 tolerance: 0, exact: true))
        results.append(CUDACheck(op: "graph: replay vs reference (bf16)", relL2: CUDASelfTest.relL2(replays[1], want),
                                 tolerance: 1e-2, exact: true))
    }
}
