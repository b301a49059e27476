// Architecture dimensions (docs/SPEC.md §1). The named LeRobot variants are built in; a checkpoint
// folder may carry `pi0_dims.json` (as the test fixtures do) stating its own dimensions.
import Foundation

public struct GemmaDims: Sendable, Equatable {
    public var width: Int, depth: Int, mlpDim: Int, heads: Int, kvHeads: Int, headDim: Int, vocabSize: Int
    public var rmsNormEps: Float = 1e-6
    public var ropeTheta: Float = 10000

    public init(width: Int, depth: Int, mlpDim: Int, heads: Int, kvHeads: Int, headDim: Int, vocabSize: Int) {
        self.width = width; self.depth = depth; self.mlpDim = mlpDim; self.heads = heads
        self.kvHeads = kvHeads; self.headDim = headDim; self.vocabSize = vocabSize
    }

    /// PaliGemma's Gemma-2B language model.
    public static let gemma2b = GemmaDims(width: 2048, depth: 18, mlpDim: 16384, heads: 8, kvHeads: 1, headDim: 256, vocabSize: 257152)
    /// The action expert, Gemma-300M.
    public static let gemma300m = GemmaDims(width: 1024, depth: 18, mlpDim: 4096, heads: 8, kvHeads: 1, headDim: 256, vocabSize: 257152)

    public static func variant(_ name: String) -> GemmaDims? {
        switch name {
        case "gemma_2b": return .gemma2b
        case "gemma_300m": return .gemma300m
        default: return nil
        }
    }
}

public struct SigLIPDims: Sendable, Equatable {
    public var hidden: Int, layers: Int, heads: Int, intermediate: Int, patchSize: Int, imageSize: Int
    public var layerNormEps: Float = 1e-6

    public init(hidden: Int, layers: Int, heads: Int, intermediate: Int, patchSize: Int, imageSize: Int) {
        self.hidden = hidden; self.layers = layers; self.heads = heads; self.intermediate = intermediate
        self.patchSize = patchSize; self.imageSize = imageSize
    }

    /// Patches per side. LeRobot's SigLIP patch embedding is a stride-`patchSize` convolution with
    /// padding "valid" (transformers' `SiglipVisionEmbeddings`, num_patches = (image_size // patch_size)²),
    /// so an image size that is not a multiple of the patch size drops its last rows and columns.
    public var gridSize: Int { imageSize / patchSize }
    public var tokensPerImage: Int { gridSize * gridSize }
    public var headDim: Int { hidden / heads }

    /// SigLIP So400m/14 at 224×224.
    public static let so400m = SigLIPDims(hidden: 1152, layers: 27, heads: 16, intermediate: 4304, patchSize: 14, imageSize: 224)
}

public struct ModelDims: Sendable, Equatable {
    public var vision: SigLIPDims
    public var vlm: GemmaDims
    public var expert: GemmaDims

    public init(vision: SigLIPDims, vlm: GemmaDims, expert: GemmaDims) {
        self.vision = vision; self.vlm = vlm; self.expert = expert
    }

    /// The dimensions a LeRobot config names (variants + image resolution).
    public static func from(config: PI0Config, file: String = "config.json") throws -> ModelDims {
        guard let vlm = GemmaDims.variant(config.paligemmaVariant) else {
            throw PI0ConfigError.unsupported(file: file, field: "paligemma_variant", reason: "unknown variant '\(config.paligemmaVariant)' (known: gemma_2b, gemma_300m)")
        }
        guard let expert = GemmaDims.variant(config.actionExpertVariant) else {
            throw PI0ConfigError.unsupported(file: file, field: "action_expert_variant", reason: "unknown variant '\(config.actionExpertVariant)' (known: gemma_2b, gemma_300m)")
        }
        var vision = SigLIPDims.so400m
        guard config.imageResolution[0] == config.imageResolution[1] else {
            throw PI0ConfigError.unsupported(file: file, field: "image_resolution", reason: "non-square resolution \(config.imageResolution)")
        }
        vision.imageSize = config.imageResolution[0]
        return ModelDims(vision: vision, vlm: vlm, expert: expert)
    }

    /// The dimensions file a checkpoint folder may carry for `kind`.
    public static func fileName(for kind: ModelKind) -> String { kind == .pi0 ? "pi0_dims.json" : "pi05_dims.json" }

    /// Reads `pi0_dims.json` / `pi05_dims.json` (the fixtures' format: sections "vlm", "expert", "vision").
    /// Optional `use_adarms` / `adarms_cond_dim` entries must agree with `model` (only π0.5's expert is
    /// conditioned, on a vector of the expert's width; docs/SPEC_PI05.md §4).
    public static func load(dimsFile path: String, model: ModelKind = .pi0) throws -> ModelDims {
        let data = try readConfigFile(path)
        guard let dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PI0ConfigError.invalidJSON(file: path, reason: "not a JSON object")
        }
        var root = JSONFields(dict: dict, file: path)
        func gemma(_ key: String) throws -> GemmaDims {
            guard var g = try root.nested(key) else {
                throw PI0ConfigError.invalidValue(file: path, field: key, reason: "missing section")
            }
            func need(_ k: String) throws -> Int {
                guard let v = try g.positiveInt(k) else { throw PI0ConfigError.invalidValue(file: path, field: "\(key).\(k)", reason: "missing") }
                return v
            }
            var d = GemmaDims(width: try need("width"), depth: try need("depth"), mlpDim: try need("mlp_dim"),
                              heads: try need("num_heads"), kvHeads: try need("num_kv_heads"), headDim: try need("head_dim"),
                              vocabSize: try g.positiveInt("vocab_size") ?? g.positiveInt("vocab_size_unused_lm_head") ?? 0)
            if let e = try g.double("rms_norm_eps") { d.rmsNormEps = Float(e) }
            if let t = try g.double("rope_theta") { d.ropeTheta = Float(t) }
            let adaptive = model == .pi05 && key == "expert"
            if let ada = try g.bool("use_adarms"), ada != adaptive {
                throw PI0ConfigError.unsupported(file: path, field: "\(key).use_adarms",
                                                 reason: "must be \(adaptive) for a \(model.rawValue) model's \(key)")
            }
            if let cond = try g.positiveInt("adarms_cond_dim"), !adaptive || cond != d.width {
                throw PI0ConfigError.unsupported(file: path, field: "\(key).adarms_cond_dim",
                                                 reason: adaptive ? "must equal the expert width \(d.width), got \(cond)" : "only π0.5's expert is conditioned")
            }
            if let act = try g.string("hidden_act"), act != "gelu_pytorch_tanh" {
                throw PI0ConfigError.unsupported(file: path, field: "\(key).hidden_act", reason: "only gelu_pytorch_tanh is supported, got \(act)")
            }
            return d
        }
        let vlm = try gemma("vlm"), expert = try gemma("expert")
        guard var v = try root.nested("vision") else {
            throw PI0ConfigError.invalidValue(file: path, field: "vision", reason: "missing section")
        }
        func needV(_ k: String) throws -> Int {
            guard let x = try v.positiveInt(k) else { throw PI0ConfigError.invalidValue(file: path, field: "vision.\(k)", reason: "missing") }
            return x
        }
        var vision = SigLIPDims(hidden: try needV("hidden_size"), layers: try needV("num_layers"), heads: try needV("num_heads"),
                                intermediate: try needV("intermediate_size"), patchSize: try needV("patch_size"),
                                imageSize: try needV("image_size"))
        if let e = try v.double("layer_norm_eps") { vision.layerNormEps = Float(e) }
        if try v.bool("use_head") == true {
            throw PI0ConfigError.unsupported(file: path, field: "vision.use_head", reason: "PaliGemma's SigLIP has no pooling head")
        }
        return try ModelDims(vision: vision, vlm: vlm, expert: expert).rangeChecked(file: path)
    }

    /// Checks the constraints the model relies on.
    public func validate(file: String) throws {
        func bad(_ f: String, _ r: String) -> PI0ConfigError { .invalidValue(file: file, field: f, reason: r) }
        if vlm.headDim != expert.headDim { throw bad("expert.head_dim", "must equal the VLM's head_dim \(vlm.headDim) (shared attention)") }
        if vlm.kvHeads != expert.kvHeads { throw bad("expert.num_kv_heads", "must equal the VLM's \(vlm.kvHeads) (shared attention)") }
        if vlm.headDim % 2 != 0 { throw bad("vlm.head_dim", "must be even for RoPE") }
        for (n, g) in [("vlm", vlm), ("expert", expert)] where g.heads % g.kvHeads != 0 {
            throw bad("\(n).num_heads", "\(g.heads) is not a multiple of num_kv_heads \(g.kvHeads)")
        }
        if vision.hidden % vision.heads != 0 { throw bad("vision.num_heads", "hidden \(vision.hidden) not divisible by \(vision.heads) heads") }
    }
}
