// SigLIP vision tower (So400m/14 in π0) + PaliGemma's multi-modal projector (docs/SPEC.md §3.1).
// Always float32, also in bf16 mode (LeRobot keeps `vision_tower` and `multi_modal_projector` fp32).
// Letters: C = 3 channels, HW image side, G grid side, T = G² tokens, E hidden, F mlp, W VLM width.
import PI0Tensor

struct SigLIPLayer {
    let norm1w: [Float], norm1b: [Float]
    let q: Linear, k: Linear, v: Linear, out: Linear
    let norm2w: [Float], norm2b: [Float]
    let fc1: Linear, fc2: Linear

    init(_ s: WeightScope, _ d: SigLIPDims, backend: ComputeBackend) throws {
        let e = d.hidden
        norm1w = try s.floats("layer_norm1.weight", [e]); norm1b = try s.floats("layer_norm1.bias", [e])
        let a = s.scoped("self_attn")
        q = try Linear(a, "q_proj", out: e, in: e, bias: true, backend: backend, bf16: false)
        k = try Linear(a, "k_proj", out: e, in: e, bias: true, backend: backend, bf16: false)
        v = try Linear(a, "v_proj", out: e, in: e, bias: true, backend: backend, bf16: false)
        out = try Linear(a, "out_proj", out: e, in: e, bias: true, backend: backend, bf16: false)
        norm2w = try s.floats("layer_norm2.weight", [e]); norm2b = try s.floats("layer_norm2.bias", [e])
        fc1 = try Linear(s.scoped("mlp"), "fc1", out: d.intermediate, in: e, bias: true, backend: backend, bf16: false,
                         hint: "vision intermediate_size")
        fc2 = try Linear(s.scoped("mlp"), "fc2", out: e, in: d.intermediate, bias: true, backend: backend, bf16: false)
    }
}

final class SigLIP: @unchecked Sendable {
    let dims: SigLIPDims
    let backend: ComputeBackend
    let patchEmbedding: Linear          // Conv2d(3, E, kernel = stride = patch) as a linear over patches
    let positionEmbedding: [Float]      // [T, E]
    let layers: [SigLIPLayer]
    let postNormW: [Float], postNormB: [Float]
    let projector: Linear               // E -> W, with bias, no scaling

    init(vision: WeightScope, projector p: WeightScope, dims: SigLIPDims, projectionDim: Int, backend: ComputeBackend) throws {
        self.dims = dims; self.backend = backend
        let e = dims.hidden, ps = dims.patchSize
        let emb = vision.scoped("embeddings")
        // Conv weight [E, 3, p, p] flattened to [E, 3·p·p]: the patch vector is ordered (c, ky, kx).
        let w = try emb.tensor("patch_embedding.weight", [e, 3, ps, ps], hint: "vision hidden_size / patch_size")
        let b = try emb.tensor("patch_embedding.bias", [e])
        let flat = WeightTensor(name: w.name, shape: [e, 3 * ps * ps], dtype: w.dtype, pointer: w.pointer, owner: w.owner)
        patchEmbedding = Linear(prepared: try backend.prepareLinear(flat, bias: b.toFloat32()), backend: backend, roundToBF16: false)
        positionEmbedding = try emb.floats("position_embedding.weight", [dims.tokensPerImage, e],
                                           hint: "tokens per image = (image_size / patch_size)²")
        let enc = vision.scoped("encoder")
        layers = try (0..<dims.layers).map { try SigLIPLayer(enc.scoped("layers.\($0)"), dims, backend: backend) }
        postNormW = try vision.floats("post_layernorm.weight", [e]); postNormB = try vision.floats("post_layernorm.bias", [e])
        let (pw, pb) = try p.linear("linear", out: projectionDim, in: e, bias: true, hint: "projection_dim = VLM width")
        self.projector = Linear(prepared: try backend.prepareLinear(pw, bias: pb?.toFloat32()), backend: backend, roundToBF16: false)
    }

    /// images: N pointers to [3, HW, HW] in [-1, 1] -> [N·T, W] image embeddings (after the projector).
    /// All images go through the tower together (linear layers see N·T rows; attention stays per
    /// image). `trace(name, image, [T, E], values)` is called per image for the fixtures' names.
    func embedImages(_ images: [UnsafePointer<Float>], trace: (String, Int, [Int], UnsafePointer<Float>) -> Void) -> Tensor {
        let t = dims.tokensPerImage, e = dims.hidden, g = dims.gridSize, ps = dims.patchSize, side = dims.imageSize
        let count = images.count, rows = count * t
        // im2col: patch (gy, gx) of image i -> row i·T + gy·G + gx, vector (c, ky, kx).
        let patches = Tensor(shape: [rows, 3 * ps * ps])
        for (i, image) in images.enumerated() {
            for gy in 0..<g { for gx in 0..<g {
                let dst = patches.row(i * t + gy * g + gx)
                for c in 0..<3 { for ky in 0..<ps {
                    let src = image + c * side * side + (gy * ps + ky) * side + gx * ps
                    for kx in 0..<ps { dst[(c * ps + ky) * ps + kx] = src[kx] }
                } }
            } }
        }
        let x = Tensor(shape: [rows, e])
        patchEmbedding(patches.data, rows: rows, into: x.data)
        for i in 0..<count { for j in 0..<(t * e) { x.data[i * t * e + j] += positionEmbedding[j] } }
        func each(_ name: String, _ p: UnsafePointer<Float>) { for i in 0..<count { trace(name, i, [t, e], p + i * t * e) } }
        each("vision_embeddings", x.data)

        let n = Tensor(shape: [rows, e]), q = Tensor(shape: [rows, e]), k = Tensor(shape: [rows, e]), v = Tensor(shape: [rows, e])
        let attn = Tensor(shape: [rows, e]), h = Tensor(shape: [rows, dims.intermediate])
        for (li, l) in layers.enumerated() {
            if li == 0 { each("siglip_layer0_in", x.data) }
            backend.layerNorm(x.data, rows: rows, width: e, weight: l.norm1w, bias: l.norm1b, eps: dims.layerNormEps, out: n.data)
            l.q(n.data, rows: rows, into: q.data); l.k(n.data, rows: rows, into: k.data); l.v(n.data, rows: rows, into: v.data)
            for i in 0..<count {
                let o = i * t * e
                backend.attention(AttentionArgs(q: q.data + o, qStride: e, k: k.data + o, kStride: e, v: v.data + o, vStride: e,
                                                mask: nil, maskStride: 0, out: attn.data + o, outStride: e, queries: t, keys: t,
                                                heads: dims.heads, kvHeads: dims.heads, headDim: dims.headDim,
                                                scale: 1 / Float(dims.headDim).squareRoot(), roundToBF16: false))
            }
            l.out(attn.data, rows: rows, into: n.data)
            backend.add(x.data, n.data, count: rows * e, roundToBF16: false)
            backend.layerNorm(x.data, rows: rows, width: e, weight: l.norm2w, bias: l.norm2b, eps: dims.layerNormEps, out: n.data)
            l.fc1(n.data, rows: rows, into: h.data)
            backend.geluTanh(h.data, count: rows * dims.intermediate)
            l.fc2(h.data, rows: rows, into: n.data)
            backend.add(x.data, n.data, count: rows * e, roundToBF16: false)
            if li == 0 { each("siglip_layer0_out", x.data) }
        }
        backend.layerNorm(x.data, rows: rows, width: e, weight: postNormW, bias: postNormB, eps: dims.layerNormEps, out: n.data)
        each("vision_out", n.data)
        let out = Tensor(shape: [rows, projector.outFeatures])
        projector(n.data, rows: rows, into: out.data)
        return out
    }
}
