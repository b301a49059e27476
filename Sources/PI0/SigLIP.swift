// SigLIP vision tower (So400m/14 in π0) + PaliGemma's multi-modal projector (docs/SPEC.md §3.1).
// Always float32, also in bf16 mode (LeRobot keeps `vision_tower` and `multi_modal_projector` fp32).
// Letters: C = 3 channels, HW image side, G grid side, T = G² tokens, E hidden, F mlp, W VLM width.
import PI0Tensor

struct SigLIPLayer {
    let norm1w: DeviceTensor, norm1b: DeviceTensor
    /// q_proj | k_proj | v_proj as one product [R, 3E] (exact; the checkpoint keys stay separate).
    let qkv: Linear
    let out: Linear
    let norm2w: DeviceTensor, norm2b: DeviceTensor
    let fc1: Linear, fc2: Linear

    init(_ s: WeightScope, _ d: SigLIPDims, backend: ComputeBackend) throws {
        let e = d.hidden
        func vector(_ key: String, _ role: CheckpointTensor.Role) throws -> DeviceTensor {
            DeviceTensor(shape: [e], uploading: try s.floats(key, [e], role: role), backend: backend)
        }
        norm1w = try vector("layer_norm1.weight", .norm); norm1b = try vector("layer_norm1.bias", .bias)
        let a = s.scoped("self_attn")
        qkv = try Linear(a, fusing: [("q_proj", e, ""), ("k_proj", e, ""), ("v_proj", e, "")], in: e, bias: true,
                         backend: backend, bf16: false)
        out = try Linear(a, "out_proj", out: e, in: e, bias: true, backend: backend, bf16: false)
        norm2w = try vector("layer_norm2.weight", .norm); norm2b = try vector("layer_norm2.bias", .bias)
        fc1 = try Linear(s.scoped("mlp"), "fc1", out: d.intermediate, in: e, bias: true, backend: backend, bf16: false,
                         hint: "vision intermediate_size")
        fc2 = try Linear(s.scoped("mlp"), "fc2", out: e, in: d.intermediate, bias: true, backend: backend, bf16: false)
    }
}

final class SigLIP: @unchecked Sendable {
    let dims: SigLIPDims
    let backend: ComputeBackend
    let patchEmbedding: Linear          // Conv2d(3, E, kernel = stride = patch) as a linear over patches
    let positionEmbedding: DeviceTensor // [T, E]
    let layers: [SigLIPLayer]
    let postNormW: DeviceTensor, postNormB: DeviceTensor
    let projector: Linear               // E -> W, with bias, no scaling

    init(vision: WeightScope, projector p: WeightScope, dims: SigLIPDims, projectionDim: Int, backend: ComputeBackend) throws {
        self.dims = dims; self.backend = backend
        let e = dims.hidden, ps = dims.patchSize
        let emb = vision.scoped("embeddings")
        // Conv weight [E, 3, p, p] flattened to [E, 3·p·p]: the patch vector is ordered (c, ky, kx).
        let w = try emb.tensor("patch_embedding.weight", [e, 3, ps, ps], role: .linear(fanIn: 3 * ps * ps), hint: "vision hidden_size / patch_size")
        let b = try emb.tensor("patch_embedding.bias", [e], role: .bias)
        let flat = WeightTensor(name: w.name, shape: [e, 3 * ps * ps], dtype: w.dtype, pointer: w.pointer, owner: w.owner)
        patchEmbedding = Linear(prepared: try backend.prepareLinear(flat, bias: b.toFloat32()), backend: backend, roundToBF16: false)
        positionEmbedding = DeviceTensor(shape: [dims.tokensPerImage, e], uploading: try emb.floats("position_embedding.weight", [dims.tokensPerImage, e], role: .embedding,
                                           hint: "tokens per image = (image_size / patch_size)²"), backend: backend)
        let enc = vision.scoped("encoder")
        layers = try (0..<dims.layers).map { try SigLIPLayer(enc.scoped("layers.\($0)"), dims, backend: backend) }
        postNormW = DeviceTensor(shape: [e], uploading: try vision.floats("post_layernorm.weight", [e], role: .norm), backend: backend)
        postNormB = DeviceTensor(shape: [e], uploading: try vision.floats("post_layernorm.bias", [e], role: .bias), backend: backend)
        let (pw, pb) = try p.linear("linear", out: projectionDim, in: e, bias: true, hint: "projection_dim = VLM width")
        self.projector = Linear(prepared: try backend.prepareLinear(pw, bias: pb?.toFloat32()), backend: backend, roundToBF16: false)
    }

    /// `count` images [3, HW, HW] in [-1, 1] at `images` → `buffers.out` [count·T, W] image embeddings
    /// (after the projector). All images go through the tower together (linear layers see count·T rows;
    /// attention stays per image). `trace(name, ref)` announces [count·T, E] tensors.
    func embedImages(_ images: TensorRef, count: Int, buffers z: SigLIPBuffers, trace: ((String, TensorRef) -> Void)?) {
        let t = dims.tokensPerImage, e = dims.hidden, rows = count * t
        precondition(count <= z.images, "SigLIP buffers for \(z.images) images, got \(count)")
        backend.patchify(images, count: count, side: dims.imageSize, patch: dims.patchSize, out: z.patches.ref)
        let x = z.x.ref, n = z.n.ref, qkv = z.qkv.ref, attn = z.attn.ref, h = z.h.ref
        patchEmbedding(z.patches.ref, rows: rows, into: x)
        backend.addPeriodic(x, positionEmbedding.ref, count: rows * e, period: t * e)
        trace?("vision_embeddings", x)
        for (li, l) in layers.enumerated() {
            if li == 0 { trace?("siglip_layer0_in", x) }
            backend.layerNorm(x, rows: rows, width: e, weight: l.norm1w.ref, bias: l.norm1b.ref, eps: dims.layerNormEps, out: n)
            l.qkv(n, rows: rows, into: qkv)   // row r: q | k | v
            for i in 0..<count {
                let o = i * t * 3 * e
                backend.attention(AttentionCall(q: qkv + o, qStride: 3 * e, k: qkv + o + e, kStride: 3 * e, v: qkv + o + 2 * e, vStride: 3 * e,
                                                mask: nil, maskStride: 0, out: attn + i * t * e, outStride: e, queries: t, keys: t,
                                                heads: dims.heads, kvHeads: dims.heads, headDim: dims.headDim,
                                                scale: 1 / Float(dims.headDim).squareRoot(), roundToBF16: false))
            }
            l.out(attn, rows: rows, into: n)
            backend.add(x, n, count: rows * e, roundToBF16: false)
            backend.layerNorm(x, rows: rows, width: e, weight: l.norm2w.ref, bias: l.norm2b.ref, eps: dims.layerNormEps, out: n)
            l.fc1(n, rows: rows, into: h)
            backend.geluTanh(h, count: rows * dims.intermediate)
            l.fc2(h, rows: rows, into: n)
            backend.add(x, n, count: rows * e, roundToBF16: false)
            if li == 0 { trace?("siglip_layer0_out", x) }
        }
        backend.layerNorm(x, rows: rows, width: e, weight: postNormW.ref, bias: postNormB.ref, eps: dims.layerNormEps, out: n)
        trace?("vision_out", n)
        projector(n, rows: rows, into: z.out.ref)
    }
}

/// The vision tower's work buffers for up to `images` images, allocated once per plan.
final class SigLIPBuffers: @unchecked Sendable {
    let images: Int
    let patches: DeviceTensor, x: DeviceTensor, n: DeviceTensor, qkv: DeviceTensor
    let attn: DeviceTensor, h: DeviceTensor
    /// [images·T, W] the projected image embeddings.
    let out: DeviceTensor

    init(_ tower: SigLIP, images: Int) {
        let d = tower.dims, rows = images * d.tokensPerImage, e = d.hidden, be = tower.backend
        self.images = images
        patches = DeviceTensor(shape: [rows, 3 * d.patchSize * d.patchSize], backend: be)
        x = DeviceTensor(shape: [rows, e], backend: be); n = DeviceTensor(shape: [rows, e], backend: be)
        qkv = DeviceTensor(shape: [rows, 3 * e], backend: be); attn = DeviceTensor(shape: [rows, e], backend: be)
        h = DeviceTensor(shape: [rows, d.intermediate], backend: be)
        out = DeviceTensor(shape: [rows, tower.projector.outFeatures], backend: be)
    }
}
