// Every tensor of a LeRobot π0 checkpoint with its shape (docs/SPEC.md §8), derived from the
// dimensions: the single list behind `pi0 write-random-checkpoint` and the layout tests.

public struct CheckpointTensor: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        case linear(fanIn: Int)     // weight of a linear/conv layer
        case bias
        case norm                   // LayerNorm weight (≈1) or Gemma RMSNorm weight (stored w, used 1+w)
        case embedding              // token or position embedding
    }
    public let name: String
    public let shape: [Int]
    public let role: Role
    /// bf16 in a bf16 LeRobot checkpoint? (vision, projector, norms and π0 heads are kept float32 by
    /// LeRobot at run time but are stored in the checkpoint's dtype; we write all in one dtype).
    public var count: Int { shape.reduce(1, *) }
}

public enum CheckpointLayout {
    /// All tensors with the `model.` prefix, in name order; the token embedding only as `lm_head`.
    public static func tensors(dims: ModelDims, maxStateDim: Int = 32, maxActionDim: Int = 32) -> [CheckpointTensor] {
        var t: [CheckpointTensor] = []
        func add(_ n: String, _ s: [Int], _ r: CheckpointTensor.Role) { t.append(CheckpointTensor(name: "model." + n, shape: s, role: r)) }
        func linear(_ n: String, out: Int, in i: Int, bias: Bool) {
            add(n + ".weight", [out, i], .linear(fanIn: i))
            if bias { add(n + ".bias", [out], .bias) }
        }
        let v = dims.vision, e = v.hidden, p = v.patchSize
        let vm = PI0Keys.vision
        add("\(vm).embeddings.patch_embedding.weight", [e, 3, p, p], .linear(fanIn: 3 * p * p))
        add("\(vm).embeddings.patch_embedding.bias", [e], .bias)
        add("\(vm).embeddings.position_embedding.weight", [v.tokensPerImage, e], .embedding)
        for i in 0..<v.layers {
            let l = "\(vm).encoder.layers.\(i)"
            for n in ["layer_norm1", "layer_norm2"] { add("\(l).\(n).weight", [e], .norm); add("\(l).\(n).bias", [e], .bias) }
            for n in ["q_proj", "k_proj", "v_proj", "out_proj"] { linear("\(l).self_attn.\(n)", out: e, in: e, bias: true) }
            linear("\(l).mlp.fc1", out: v.intermediate, in: e, bias: true)
            linear("\(l).mlp.fc2", out: e, in: v.intermediate, bias: true)
        }
        add("\(vm).post_layernorm.weight", [e], .norm); add("\(vm).post_layernorm.bias", [e], .bias)
        linear("paligemma_with_expert.paligemma.model.multi_modal_projector.linear", out: dims.vlm.width, in: e, bias: true)
        add(PI0Keys.lmHead, [dims.vlm.vocabSize, dims.vlm.width], .embedding)
        add("paligemma_with_expert.gemma_expert.lm_head.weight", [dims.expert.vocabSize, dims.expert.width], .embedding)
        for (prefix, g) in [(PI0Keys.languageModel, dims.vlm), (PI0Keys.expert, dims.expert)] {
            for i in 0..<g.depth {
                let l = "\(prefix).layers.\(i)"
                linear("\(l).self_attn.q_proj", out: g.heads * g.headDim, in: g.width, bias: false)
                linear("\(l).self_attn.k_proj", out: g.kvHeads * g.headDim, in: g.width, bias: false)
                linear("\(l).self_attn.v_proj", out: g.kvHeads * g.headDim, in: g.width, bias: false)
                linear("\(l).self_attn.o_proj", out: g.width, in: g.heads * g.headDim, bias: false)
                linear("\(l).mlp.gate_proj", out: g.mlpDim, in: g.width, bias: false)
                linear("\(l).mlp.up_proj", out: g.mlpDim, in: g.width, bias: false)
                linear("\(l).mlp.down_proj", out: g.width, in: g.mlpDim, bias: false)
                add("\(l).input_layernorm.weight", [g.width], .norm)
                add("\(l).post_attention_layernorm.weight", [g.width], .norm)
            }
            add("\(prefix).norm.weight", [g.width], .norm)
        }
        let ew = dims.expert.width
        linear("state_proj", out: ew, in: maxStateDim, bias: true)
        linear("action_in_proj", out: ew, in: maxActionDim, bias: true)
        linear("action_time_mlp_in", out: ew, in: 2 * ew, bias: true)
        linear("action_time_mlp_out", out: ew, in: ew, bias: true)
        linear("action_out_proj", out: maxActionDim, in: ew, bias: true)
        return t.sorted { $0.name < $1.name }
    }
}
