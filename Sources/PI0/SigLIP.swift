// SigLIP vision tower (So400m/14 in π0) + PaliGemma's multi-modal projector (PI0_SPEC.md §3.1).
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

    /// image: [3, HW, HW] in [-1, 1] -> [T, W] image embedding (after the projector).
    func embedImage(_ image: UnsafePointer<Float>, trace: (String, [Int], UnsafePointer<Float>) -> Void) -> Tensor {
        let t = dims.tokensPerImage, e = dims.hidden, g = dims.gridSize, ps = dims.patchSize, side = dims.imageSize
        // im2col: patch (gy, gx) -> token gy·G + gx, vector (c, ky, kx).
        let patches = Tensor(shape: [t, 3 * ps * ps])
        for gy in 0..<g { for gx in 0..<g {
            let dst = patches.row(gy * g + gx)
            for c in 0..<3 { for ky in 0..<ps {
                let src = image + c * side * side + (gy * ps + ky) * side + gx * ps
                for kx in 0..<ps { dst[(c * ps + ky) * ps + kx] = src[kx] }
            } }
        } }
        let x = Tensor(shape: [t, e])
        patchEmbedding(patches.data, rows: t, into: x.data)
        for i in 0..<(t * e) { x.data[i] += positionEmbedding[i] }
        trace("vision_embeddings", [t, e], x.data)

        let n = Tensor(shape: [t, e]), q = Tensor(shape: [t, e]), k = Tensor(shape: [t, e]), v = Tensor(shape: [t, e])
        let attn = Tensor(shape: [t, e]), h = Tensor(shape: [t, dims.intermediate])
        for (i, l) in layers.enumerated() {
            if i == 0 { trace("siglip_layer0_in", [t, e], x.data) }
            backend.layerNorm(x.data, rows: t, width: e, weight: l.norm1w, bias: l.norm1b, eps: dims.layerNormEps, out: n.data)
            l.q(n.data, rows: t, into: q.data); l.k(n.data, rows: t, into: k.data); l.v(n.data, rows: t, into: v.data)
            backend.attention(AttentionArgs(q: q.data, qStride: e, k: k.data, kStride: e, v: v.data, vStride: e,
                                            mask: nil, maskStride: 0, out: attn.data, outStride: e, queries: t, keys: t,
                                            heads: dims.heads, kvHeads: dims.heads, headDim: dims.headDim,
                                            scale: 1 / Float(dims.headDim).squareRoot(), roundToBF16: false))
            l.out(attn.data, rows: t, into: n.data)
            backend.add(x.data, n.data, count: t * e, roundToBF16: false)
            backend.layerNorm(x.data, rows: t, width: e, weight: l.norm2w, bias: l.norm2b, eps: dims.layerNormEps, out: n.data)
            l.fc1(n.data, rows: t, into: h.data)
            backend.geluTanh(h.data, count: t * dims.intermediate)
            l.fc2(h.data, rows: t, into: n.data)
            backend.add(x.data, n.data, count: t * e, roundToBF16: false)
            if i == 0 { trace("siglip_layer0_out", [t, e], x.data) }
        }
        backend.layerNorm(x.data, rows: t, width: e, weight: postNormW, bias: postNormB, eps: dims.layerNormEps, out: n.data)
        trace("vision_out", [t, e], n.data)
        let out = Tensor(shape: [t, projector.outFeatures])
        projector(n.data, rows: t, into: out.data)
        return out
    }
}
