// The op table's rows for `rmsNormLinear` (RMSNorm fused into the following GEMMs, docs/CUDA.md
// "Fusion"): against the reference within the norm's and the GEMM's tolerances, and against this
// backend's own unfused composition (`rmsNorm`, then `linear` per product) bit for bit — the fusion must
// not change a single output, the normalised rows included. Shapes: the action expert's small-M
// products (about 50 rows: K|V with Q, gate|up) and a norm without a weight.
import PI0Tensor

extension OpTable {
    func fusedNormChecks() throws {
        for (rows, width, n1, n2, weighted) in [(51, 96, 40, 24, true), (7, 333, 17, 0, true), (50, 64, 31, 9, false)] {
            for (dtype, bf16) in [(WeightDType.float32, false), (.bfloat16, true)] {
                let x = random(rows * width, 2), w = random(width, 0.5)
                let w1 = WeightTensor(name: "w1", shape: [n1, width], floats: rng.array(n1 * width, 0.1), dtype: dtype)
                let b1 = WeightTensor(name: "b1", shape: [n1], floats: rng.array(n1))
                let w2 = n2 == 0 ? nil : WeightTensor(name: "w2", shape: [n2, width], floats: rng.array(n2 * width, 0.1), dtype: dtype)
                let (ld1, ld2) = (n1 + 3, n2 + 1)
                let p1a = try be.prepareLinear(w1, bias: b1, inputsAreBF16: bf16), p1b = try ref.prepareLinear(w1, bias: b1, inputsAreBF16: bf16)
                let p2a = try w2.map { try be.prepareLinear($0, bias: nil, inputsAreBF16: bf16) }
                let p2b = try w2.map { try ref.prepareLinear($0, bias: nil, inputsAreBF16: bf16) }
                func outputs() -> [TensorPair] {
                    [pair([Float](repeating: 5, count: rows * width)), pair([Float](repeating: 7, count: rows * ld1)),
                     pair([Float](repeating: 9, count: rows * ld2))]
                }
                let fused = outputs(), composed = outputs()
                let name = "rmsNormLinear \(rows)x\(width)->\(n1)\(n2 > 0 ? "|\(n2)" : "")\(weighted ? "" : " no-weight") \(dtype)\(bf16 ? " bf16-in" : "")"
                func run(_ b: ComputeBackend, _ p: KeyPath<TensorPair, TensorRef>, into o: [TensorPair]) {
                    let (q1, q2) = b === be ? (p1a, p2a) : (p1b, p2b)
                    b.rmsNormLinear(x[keyPath: p], rows: rows, width: width, weight: weighted ? w[keyPath: p] : nil, eps: 1e-6,
                                    roundToBF16: bf16, normed: o[0][keyPath: p], NormedProduct(linear: q1, y: o[1][keyPath: p], ldy: ld1),
                                    q2.map { NormedProduct(linear: $0, y: o[2][keyPath: p], ldy: ld2) })
                }
                // Tree-reduced norm statistics (as rmsNorm) and cuBLAS's order (as linear): not exact vs the reference.
                check(name, tolerance: bf16 ? 4e-3 : 1e-5, exact: false, fused) { b, p in run(b, p, into: fused) }
                // The same backend unfused: rmsNorm, then one linear per product.
                be.rmsNorm(x.a, rows: rows, width: width, weight: weighted ? w.a : nil, eps: 1e-6, roundToBF16: bf16, out: composed[0].a)
                be.linear(p1a, x: composed[0].a, rows: rows, ldx: width, y: composed[1].a, ldy: ld1)
                if let p2a { be.linear(p2a, x: composed[0].a, rows: rows, ldx: width, y: composed[2].a, ldy: ld2) }
                var got: [Float] = [], want: [Float] = []
                for (f, c) in zip(fused, composed) { got += be.download(f.a, count: f.count); want += be.download(c.a, count: c.count) }
                let same = got.map(\.bitPattern) == want.map(\.bitPattern)
                results.append(CUDACheck(op: name + " = rmsNorm + linear", relL2: same ? 0 : max(CUDASelfTest.relL2(got, want), 1e-12),
                                         tolerance: 0, exact: true))
            }
        }
    }
}
