// The rows of the op-conformance table (run by `OpConformance.problems`): one per `ComputeBackend`
// requirement, each drawing random odd shapes and strides from its seed. Bounds for implementations
// other than `ReferenceOps`: ops whose every output is a fixed sequence of float32 operations, each
// rounded once (no reduction), are bit-identical in any implementation that keeps that order and does
// not contract a·b + c into a fused multiply-add; reductions and transcendental functions get a bound.
import Foundation
import PI0Tensor

/// The model's additive mask value (AttentionMasks in PI0: finite, so a fully masked row is uniform).
private let masked: Float = -2.3819763e38

/// Values with every IEEE special a kernel might mishandle.
private let specials: [Float] = [.nan, .infinity, -.infinity, -0.0, Float(bitPattern: 0x0000_0001), Float(bitPattern: 0x3F80_8000),
                                 Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x7F7F_FFFF), .greatestFiniteMagnitude]

private let sameOrder = "each output is a fixed sequence of singly rounded float32 operations (no FMA contraction)"

public enum OpTable {
    public static let cases: [OpCase] = [
        OpCase(op: "upload", covers: ["allocate", "download", "synchronize"], tolerance: .exact,
               reason: "transfers move bits") { r in
            let n = r.odd(1...257), offset = r.int(0...n / 2), part = r.int(0...(n - offset))
            let storage = r.backend.allocate(count: n)
            r.record("fresh storage is zero-filled", TensorRef(storage: storage), count: n)
            var v = r.values(part, scale: 3)
            for (i, s) in specials.enumerated() where i < part { v[(i * 7) % part] = s }
            r.backend.upload(v, to: TensorRef(storage: storage) + offset)
            r.backend.synchronize()
            r.record("whole storage after a partial upload", TensorRef(storage: storage), count: n)
            r.record("the uploaded part", TensorRef(storage: storage) + offset, count: part)
            let back = r.backend.download(TensorRef(storage: storage) + offset, count: part)
            r.expect(back.map(\.bitPattern) == v.map(\.bitPattern), "download(upload(v)) != v")
        },

        OpCase(op: "linear", covers: ["prepareLinear"], precisions: [false, true], tolerance: .relL2(1e-6),
               reason: "blocked, vectorised sums of K products in another order: float32 rounding grows with √K (cpu, K ≤ 301: ~1.5e-7)") { r in
            // bf16: bf16 weights, with inputs not known (inputsAreBF16 false) and known (true) to be bf16.
            for (shape, bias) in [(0, true), (1, false), (2, true)] {
                let m = r.odd(1...37), k = r.odd(1...301), n = r.odd(1...67)
                let ldx = k + r.int(0...3), ldy = n + r.int(0...3)
                for inputsAreBF16 in r.bf16 ? [false, true] : [false] {
                    let w = WeightTensor(name: "w", shape: [n, k], floats: r.values(n * k, scale: 0.2),
                                         dtype: r.bf16 ? .bfloat16 : .float32)
                    let b = bias ? WeightTensor(name: "b", shape: [n], floats: r.values(n)) : nil
                    let p = try r.backend.prepareLinear(w, bias: b, inputsAreBF16: inputsAreBF16)
                    r.expect(p.outFeatures == n && p.inFeatures == k, "prepared \(p.outFeatures)×\(p.inFeatures), want \(n)×\(k)")
                    let x = r.strided(rows: m, width: k, ld: ldx, values: r.values(m * k, roundedToBF16: inputsAreBF16))
                    let y = r.output((m - 1) * ldy + n)
                    r.backend.linear(p, x: x, rows: m, ldx: ldx, y: y, ldy: ldy)
                    r.record("shape \(shape) \(m)×\(k)→\(n) ldx \(ldx) ldy \(ldy) bias \(bias) bf16 inputs \(inputsAreBF16)",
                             y, count: (m - 1) * ldy + n)
                }
            }
            // Fused projections (K|V, gate|up): 2 or 3 weights stacked along N, one without a bias.
            for parts in [2, 3] {
                let m = r.odd(1...37), k = r.odd(1...301), ns = (0..<parts).map { _ in r.odd(1...41) }, n = ns.reduce(0, +)
                let ldx = k + r.int(0...3), ldy = n + r.int(0...3)
                for inputsAreBF16 in r.bf16 ? [false, true] : [false] {
                    let ws = ns.enumerated().map { i, ni in
                        WeightTensor(name: "w\(i)", shape: [ni, k], floats: r.values(ni * k, scale: 0.2), dtype: r.bf16 ? .bfloat16 : .float32)
                    }
                    let bs: [WeightTensor?] = ns.enumerated().map { i, ni in i == 1 ? nil : WeightTensor(name: "b\(i)", shape: [ni], floats: r.values(ni)) }
                    let p = try r.backend.prepareLinear(ws, biases: bs, inputsAreBF16: inputsAreBF16)
                    r.expect(p.outFeatures == n && p.inFeatures == k, "fused: prepared \(p.outFeatures)×\(p.inFeatures), want \(n)×\(k)")
                    let x = r.strided(rows: m, width: k, ld: ldx, values: r.values(m * k, roundedToBF16: inputsAreBF16))
                    let y = r.output((m - 1) * ldy + n)
                    r.backend.linear(p, x: x, rows: m, ldx: ldx, y: y, ldy: ldy)
                    r.record("fused \(ns) \(m)×\(k) ldx \(ldx) ldy \(ldy) bf16 inputs \(inputsAreBF16)", y, count: (m - 1) * ldy + n)
                }
            }
        },

        OpCase(op: "attention", precisions: [false, true], tolerance: .relL2(1e-6), bf16Tolerance: .relL2(1e-2),
               reason: "dot products and softmax sums in another order (bf16: a score or probability that rounds the "
                   + "other way moves an output by one bf16 ulp, 2⁻⁸ relative)") { r in
            // The last two: the model's head dims (256: Gemma, 72: SigLIP) with odd key counts past a 64-wide
            // panel, several query heads per KV head (the cpu's bf16 path runs them on vdpbf16ps with AVX512-BF16).
            for (heads, kvHeads, dims) in [(r.odd(1...7) + 1, 1, 1...40), (6, 2, 1...40), (r.odd(1...5), 0, 1...40),
                                           (8, 1, 256...256), (6, 2, 72...72)] {
                let kvh = kvHeads == 0 ? heads : kvHeads               // MQA, GQA, MHA
                for withMask in [true, false] {
                    // Masked calls have gaps between rows; unmasked ones are contiguous (the cpu's bf16 MQA fast path).
                    func gap() -> Int { withMask ? r.int(1...3) : 0 }
                    let wide = dims.lowerBound > 1
                    let t = r.odd(1...(wide ? 13 : 37)), s = wide ? r.odd(65...131) : r.odd(1...51)
                    let d = wide ? dims.lowerBound : r.odd(dims)
                    let qs = heads * d + gap(), ks = kvh * d + gap(), vs = kvh * d + gap()
                    let ms = s + gap(), os = heads * d + gap()
                    let q = r.strided(rows: t, width: heads * d, ld: qs, values: r.values(t * heads * d, roundedToBF16: r.bf16))
                    let k = r.strided(rows: s, width: kvh * d, ld: ks, values: r.values(s * kvh * d, roundedToBF16: r.bf16))
                    let v = r.strided(rows: s, width: kvh * d, ld: vs, values: r.values(s * kvh * d, roundedToBF16: r.bf16))
                    var maskValues = [Float](repeating: 0, count: t * s)
                    for i in maskValues.indices where r.int(0...2) == 0 { maskValues[i] = masked }
                    for j in 0..<s { maskValues[(t - 1) * s + j] = masked }        // one fully masked query row
                    let mask = withMask ? r.strided(rows: t, width: s, ld: ms, values: maskValues) : nil
                    let out = r.output((t - 1) * os + heads * d)
                    r.backend.attention(AttentionCall(q: q, qStride: qs, k: k, kStride: ks, v: v, vStride: vs, mask: mask,
                                                      maskStride: ms, out: out, outStride: os, queries: t, keys: s, heads: heads,
                                                      kvHeads: kvh, headDim: d, scale: 1 / Float(d).squareRoot(), roundToBF16: r.bf16))
                    r.record("T \(t) S \(s) heads \(heads)/\(kvh) dim \(d) mask \(withMask)", out, count: (t - 1) * os + heads * d)
                }
            }
        },

        OpCase(op: "layerNorm", tolerance: .relL2(1e-6),
               reason: "mean and variance accumulated in another order and precision (a few ulps)") { r in
            for _ in 0..<3 {
                let rows = r.odd(1...17), width = r.odd(1...301)
                let x = r.tensor(r.values(rows * width, scale: 3)), out = r.output(rows * width)
                r.backend.layerNorm(x, rows: rows, width: width, weight: r.tensor(r.values(width)), bias: r.tensor(r.values(width)),
                                    eps: 1e-6, out: out)
                r.record("\(rows)×\(width)", out, count: rows * width)
            }
        },

        OpCase(op: "rmsNorm", precisions: [false, true], tolerance: .relL2(1e-6), bf16Tolerance: .relL2(4e-3),
               reason: "Σx² in another order (bf16: an output one float32 ulp away may round to the next bf16 value)") { r in
            for withWeight in [true, false] {
                let rows = r.odd(1...17), width = r.odd(1...301)
                let x = r.tensor(r.values(rows * width, scale: 3)), out = r.output(rows * width)
                let w = withWeight ? r.tensor(r.values(width, scale: 0.5)) : nil
                r.backend.rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: r.bf16, out: out)
                r.record("\(rows)×\(width) weight \(withWeight)", out, count: rows * width)
            }
        },

        OpCase(op: "rmsNormLinear", precisions: [false, true], tolerance: .relL2(1e-6), bf16Tolerance: .relL2(4e-3),
               reason: "rmsNorm's and linear's bounds together (bf16: a normalised value one float32 ulp away may round "
                   + "to the next bf16 value, and every product reads it)") { r in
            // K|V and Q (two products, one with a bias), gate|up (one), and a norm without a weight.
            for (two, withWeight) in [(true, true), (false, true), (true, false)] {
                let rows = r.odd(1...17), width = r.odd(1...201)
                let n1 = r.odd(1...41), n2 = r.odd(1...41), ld1 = n1 + r.int(0...3), ld2 = n2 + r.int(0...3)
                let x = r.tensor(r.values(rows * width, scale: 3)), normed = r.output(rows * width)
                let w = withWeight ? r.tensor(r.values(width, scale: 0.5)) : nil
                let dtype: WeightDType = r.bf16 ? .bfloat16 : .float32
                let p1 = try r.backend.prepareLinear(WeightTensor(name: "w1", shape: [n1, width], floats: r.values(n1 * width, scale: 0.2), dtype: dtype),
                                                     bias: WeightTensor(name: "b1", shape: [n1], floats: r.values(n1)), inputsAreBF16: r.bf16)
                let p2 = two ? try r.backend.prepareLinear(WeightTensor(name: "w2", shape: [n2, width], floats: r.values(n2 * width, scale: 0.2),
                                                                        dtype: dtype), bias: nil, inputsAreBF16: r.bf16) : nil
                let y1 = r.output((rows - 1) * ld1 + n1), y2 = r.output((rows - 1) * ld2 + n2)
                r.backend.rmsNormLinear(x, rows: rows, width: width, weight: w, eps: 1e-6, roundToBF16: r.bf16, normed: normed,
                                        NormedProduct(linear: p1, y: y1, ldy: ld1), p2.map { NormedProduct(linear: $0, y: y2, ldy: ld2) })
                let what = "\(rows)×\(width)→\(n1)\(two ? "|\(n2)" : "") weight \(withWeight)"
                r.record("\(what): normed", normed, count: rows * width)
                r.record("\(what): first product (ldy \(ld1))", y1, count: (rows - 1) * ld1 + n1)
                r.record("\(what): second product (ldy \(ld2))", y2, count: (rows - 1) * ld2 + n2)
            }
        },

        OpCase(op: "adaptiveModulate", precisions: [false, true], tolerance: .exact, reason: sameOrder) { r in
            let batch = r.int(1...3), tokens = r.odd(1...13), width = r.odd(1...65)
            let x = r.tensor(r.values(batch * tokens * width, scale: 2))
            r.backend.adaptiveModulate(x, batch: batch, tokens: tokens, width: width,
                                       modulation: r.tensor(r.values(batch * 3 * width)), roundToBF16: r.bf16)
            r.record("B \(batch) T \(tokens) W \(width)", x, count: batch * tokens * width)
        },

        OpCase(op: "gatedAdd", precisions: [false, true], tolerance: .exact, reason: sameOrder) { r in
            let batch = r.int(1...3), tokens = r.odd(1...13), width = r.odd(1...65), n = batch * tokens * width
            let x = r.tensor(r.values(n, scale: 2))
            r.backend.gatedAdd(x, r.tensor(r.values(n, scale: 2)), batch: batch, tokens: tokens, width: width,
                               modulation: r.tensor(r.values(batch * 3 * width)), roundToBF16: r.bf16)
            r.record("B \(batch) T \(tokens) W \(width)", x, count: n)
        },

        OpCase(op: "geluTanh", tolerance: .relL2(1e-6), reason: "vectorised tanh approximation (a few ulps)") { r in
            let n = r.odd(1...4099), x = r.tensor(r.values(n, scale: 6))
            r.backend.geluTanh(x, count: n)
            r.record("\(n)", x, count: n)
        },

        OpCase(op: "geluTanhMul", precisions: [false, true], tolerance: .relL2(1e-6), bf16Tolerance: .relL2(4e-3),
               reason: "vectorised tanh approximation (bf16: a rounded gelu may land on the next bf16 value)") { r in
            for fused in [true, false] {
                // fused: gate and up are the halves of one gate|up row, as the model's fused projection writes them.
                let rows = r.odd(1...17), width = r.odd(1...301), ldOut = width + r.int(0...3)
                let ldIn = (fused ? 2 * width : width) + r.int(0...3)
                let gate: TensorRef, up: TensorRef
                if fused {
                    gate = r.strided(rows: rows, width: 2 * width, ld: ldIn, values: r.values(rows * 2 * width, scale: 4))
                    up = gate + width
                } else {
                    gate = r.strided(rows: rows, width: width, ld: ldIn, values: r.values(rows * width, scale: 4))
                    up = r.strided(rows: rows, width: width, ld: ldIn, values: r.values(rows * width, scale: 2))
                }
                let out = r.output((rows - 1) * ldOut + width)
                r.backend.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: r.bf16,
                                      out: out, ldOut: ldOut)
                r.record("\(rows)×\(width) ldIn \(ldIn) ldOut \(ldOut) fused \(fused)", out, count: (rows - 1) * ldOut + width)
            }
        },

        OpCase(op: "silu", tolerance: .relL2(1e-6), reason: "vectorised exp approximation (a few ulps)") { r in
            let n = r.odd(1...4099), x = r.tensor(r.values(n, scale: 8))
            r.backend.silu(x, count: n)
            r.record("\(n)", x, count: n)
        },

        OpCase(op: "add", precisions: [false, true], tolerance: .exact, reason: sameOrder) { r in
            let n = r.odd(1...4099)
            var a = r.values(n, scale: 3)
            for (i, s) in specials.enumerated() where i < n { a[(i * 13) % n] = s }
            let x = r.tensor(a)
            r.backend.add(x, r.tensor(r.values(n, scale: 3)), count: n, roundToBF16: r.bf16)
            r.record("\(n)", x, count: n)
        },

        OpCase(op: "addPeriodic", tolerance: .exact, reason: sameOrder) { r in
            let period = r.odd(1...97), n = period * r.int(1...4) + r.int(0...(period - 1))
            let x = r.tensor(r.values(n))
            r.backend.addPeriodic(x, r.tensor(r.values(period)), count: n, period: period)
            r.record("\(n) period \(period)", x, count: n)
        },

        OpCase(op: "scale", precisions: [false, true], tolerance: .exact, reason: sameOrder) { r in
            let n = r.odd(1...1025), x = r.tensor(r.values(n, scale: 5))
            r.backend.scale(x, count: n, by: Float(r.odd(1...63)).squareRoot(), roundToBF16: r.bf16)
            r.record("\(n)", x, count: n)
        },

        OpCase(op: "roundToBF16", tolerance: .exact, reason: "round to nearest even is exactly specified") { r in
            let rows = r.odd(1...17), width = r.odd(1...301), ld = width + r.int(0...3)
            var v = r.values(rows * width, scale: 100)
            for (i, s) in specials.enumerated() { v[(i * 31) % v.count] = s }
            let x = r.strided(rows: rows, width: width, ld: ld, values: v)
            r.backend.roundToBF16(x, rows: rows, width: width, ld: ld)
            r.record("\(rows)×\(width) ld \(ld)", x, count: (rows - 1) * ld + width)
        },

        OpCase(op: "applyRoPE", precisions: [false, true], tolerance: .exact, reason: sameOrder) { r in
            let rows = r.odd(1...13), heads = r.odd(1...5), headDim = 2 * r.odd(1...33), stride = heads * headDim + r.int(0...3)
            let angles = (0..<(rows * headDim)).map { _ in r.rng.float() * 40 }
            let x = r.strided(rows: rows, width: heads * headDim, ld: stride,
                              values: r.values(rows * heads * headDim, scale: 2, roundedToBF16: r.bf16))
            r.backend.applyRoPE(x, rows: rows, heads: heads, headDim: headDim, stride: stride, cos: r.tensor(angles.map { cosf($0) }),
                                sin: r.tensor(angles.map { sinf($0) }), roundToBF16: r.bf16)
            r.record("\(rows) rows × \(heads) heads of \(headDim) stride \(stride)", x, count: (rows - 1) * stride + heads * headDim)
        },

        OpCase(op: "copy", tolerance: .exact, reason: "copies move bits") { r in
            for broadcast in [false, true] {
                let rows = r.odd(1...17), width = r.odd(1...65), ds = width + r.int(0...3)
                let ss = broadcast ? 0 : width + r.int(0...3)
                let src = broadcast ? r.tensor(r.values(width)) : r.strided(rows: rows, width: width, ld: ss)
                let dst = r.output((rows - 1) * ds + width)
                r.backend.copy(src, sourceStride: ss, to: dst, destinationStride: ds, rows: rows, width: width)
                r.record("\(rows)×\(width) strides \(ss) → \(ds)", dst, count: (rows - 1) * ds + width)
            }
        },

        OpCase(op: "embed", covers: ["prepareEmbedding"], precisions: [false, true], tolerance: .exact,
               reason: "a gather and one rounded product per element") { r in
            for dtype in [WeightDType.float32, .bfloat16] {
                let rows = r.odd(1...63), width = r.odd(1...65), count = r.odd(1...19), ldOut = width + r.int(0...3)
                let table = try r.backend.prepareEmbedding(WeightTensor(name: "embed", shape: [rows, width],
                                                                        floats: r.values(rows * width), dtype: dtype))
                r.expect(table.rows == rows && table.width == width, "prepared \(table.rows)×\(table.width), want \(rows)×\(width)")
                let ids = r.tensor((0..<count).map { _ in Float(r.int(0...(rows - 1))) })
                let out = r.output((count - 1) * ldOut + width)
                r.backend.embed(table, ids: ids, count: count, scale: Float(width).squareRoot(), roundToBF16: r.bf16,
                                out: out, ldOut: ldOut)
                r.record("\(dtype) table \(rows)×\(width), \(count) ids, ldOut \(ldOut)", out, count: (count - 1) * ldOut + width)
            }
        },

        OpCase(op: "patchify", tolerance: .exact, reason: "a permutation moves bits") { r in
            // A side that is not a multiple of the patch leaves its last rows/columns out, as LeRobot's
            // 'valid' patch convolution does (fixture pi05_extra_patch8_img52).
            let count = r.int(1...2), patch = r.odd(3...5), grid = r.odd(1...7)
            for side in [patch * grid, patch * grid + patch - 1] {
                let g = side / patch
                let images = r.tensor(r.values(count * 3 * side * side))
                let n = count * g * g * 3 * patch * patch, out = r.output(n)
                r.backend.patchify(images, count: count, side: side, patch: patch, out: out)
                r.record("\(count) images \(side)² patch \(patch)", out, count: n)
            }
        },

        OpCase(op: "timeEmbedding", tolerance: .ulps(1),
               reason: "float64 sin/cos of another math library may differ in the last double bit, moving a float32 rounding") { r in
            for width in [2 * r.odd(1...129), r.odd(3...65)] {               // an odd width leaves its last float untouched
                let out = r.output(width)
                r.backend.timeEmbedding(t: (r.rng.float() + 1) / 2, width: width, minPeriod: 4e-3, maxPeriod: 4.0, out: out)
                r.record("width \(width)", out, count: width)
            }
        },

        OpCase(op: "eulerStep", tolerance: .exact, reason: sameOrder) { r in
            let n = r.odd(1...1025), x = r.tensor(r.values(n))
            r.backend.eulerStep(x, velocity: r.tensor(r.values(n, scale: 3)), count: n, dt: -1.0 / Float(r.odd(3...11)))
            r.record("\(n)", x, count: n)
        },

        OpCase(op: "guideVelocity", tolerance: .exact, reason: sameOrder) { r in
            let rows = r.odd(3...17), width = r.odd(1...33), n = rows * width
            let weights = (0..<rows).map { i in i % 3 == 1 ? 0 : (r.rng.float() + 1) / 2 }
            let v0 = r.values(n, scale: 2), v = r.tensor(v0)
            r.backend.guideVelocity(x: r.tensor(r.values(n)), velocity: v, target: r.tensor(r.values(n)), weights: r.tensor(weights),
                                    rows: rows, width: width, t: (r.rng.float() + 1) / 2, guidance: 1 + r.rng.float())
            r.record("\(rows)×\(width)", v, count: n)
            let after = r.backend.download(v, count: n)
            for row in 0..<rows where weights[row] == 0 {
                let span = (row * width)..<((row + 1) * width)
                r.expect(after[span].map(\.bitPattern) == v0[span].map(\.bitPattern), "row \(row) of weight 0 changed")
            }
        },

        OpCase(op: "checkFinite", tolerance: .exact, reason: "a scan reports the first non-finite value") { r in
            let n = r.odd(3...1025)
            for bad in [nil, Float.nan, .infinity, -.infinity] {
                var v = r.values(n, scale: 1e30)
                let at = r.int(0...(n - 2))
                if let bad { v[at] = bad; v[at + 1] = .nan }                  // the first of two is reported
                let status = r.output(3)
                r.backend.checkFinite(r.tensor(v), count: n, status: status)
                r.record("\(n) values, \(bad.map { "\($0) at \(at)" } ?? "all finite")", status, count: 3)
                let s = r.backend.download(status, count: 3)
                if let bad {
                    r.expect(s[0] == 1 && s[1] == Float(at) && s[2].bitPattern == bad.bitPattern, "status \(s) for \(bad) at \(at)")
                } else {
                    r.expect(s == [0, 0, 0], "status \(s) for finite values")
                }
            }
        },
    ]
}
