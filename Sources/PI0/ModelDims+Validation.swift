// Range checks of the architecture dimensions, run when `pi0_dims.json` is parsed and before anything
// is allocated from them: a depth of 1e9 or a width of 1e12 is a clear error naming the file and the
// field, never a "failed to allocate" abort; a zero or negative norm epsilon or RoPE base (which give
// all-NaN actions) is refused. The bounds are far above every published π0 / PaliGemma size
// (docs/SPEC.md §1) and far below what would exhaust memory on their own.
import Foundation

public enum DimsBounds {
    public static let maxDepth = 512
    public static let maxWidth = 1 << 16          // residual width, SigLIP hidden size
    public static let maxMLP = 1 << 18            // MLP / intermediate size
    public static let maxHeads = 1024
    public static let maxHeadDim = 4096
    public static let maxVocab = 1 << 22          // PaliGemma: 257,152
    public static let maxImageSide = 4096
    /// Largest single weight matrix, in elements (Gemma-2B's token embedding is 5.3e8).
    public static let maxMatrixElements = 1 << 31
}

/// Errors for one section of a dimensions file: `bad` names the field, `bound` checks 1…limit.
struct RangeCheck {
    let file: String, section: String

    func bad(_ f: String, _ r: String) -> PI0ConfigError { .invalidValue(file: file, field: "\(section).\(f)", reason: r) }

    func bound(_ f: String, _ v: Int, _ limit: Int) throws {
        guard v >= 1 && v <= limit else { throw bad(f, "\(v) is outside 1...\(limit)") }
    }
}

extension GemmaDims {
    func checkRanges(file: String, section: String) throws {
        let check = RangeCheck(file: file, section: section), bad = check.bad, bound = check.bound
        try bound("width", width, DimsBounds.maxWidth)
        try bound("depth", depth, DimsBounds.maxDepth)
        try bound("mlp_dim", mlpDim, DimsBounds.maxMLP)
        try bound("num_heads", heads, DimsBounds.maxHeads)
        try bound("num_kv_heads", kvHeads, DimsBounds.maxHeads)
        try bound("head_dim", headDim, DimsBounds.maxHeadDim)
        if vocabSize != 0 { try bound("vocab_size", vocabSize, DimsBounds.maxVocab) }
        guard vocabSize * width <= DimsBounds.maxMatrixElements else {
            throw bad("vocab_size", "vocab_size × width = \(vocabSize * width) elements exceeds \(DimsBounds.maxMatrixElements)")
        }
        guard heads * headDim <= DimsBounds.maxWidth * 4 else {
            throw bad("num_heads", "num_heads × head_dim = \(heads * headDim) is implausibly large")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0, rmsNormEps < 1 else {
            throw bad("rms_norm_eps", "must be a finite number in (0, 1), got \(rmsNormEps)")
        }
        guard ropeTheta.isFinite, ropeTheta > 1 else {
            throw bad("rope_theta", "must be a finite number above 1 (the RoPE base; π0 uses 10000), got \(ropeTheta)")
        }
    }
}

extension SigLIPDims {
    func checkRanges(file: String) throws {
        let check = RangeCheck(file: file, section: "vision"), bad = check.bad, bound = check.bound
        try bound("hidden_size", hidden, DimsBounds.maxWidth)
        try bound("num_layers", layers, DimsBounds.maxDepth)
        try bound("num_heads", heads, DimsBounds.maxHeads)
        try bound("intermediate_size", intermediate, DimsBounds.maxMLP)
        try bound("image_size", imageSize, DimsBounds.maxImageSide)
        try bound("patch_size", patchSize, imageSize)
        guard layerNormEps.isFinite, layerNormEps > 0, layerNormEps < 1 else {
            throw bad("layer_norm_eps", "must be a finite number in (0, 1), got \(layerNormEps)")
        }
    }
}

extension ModelDims {
    /// Every field within its bounds (see `DimsBounds`); throws naming `file` and the field.
    public func checkRanges(file: String) throws {
        try vlm.checkRanges(file: file, section: "vlm")
        try expert.checkRanges(file: file, section: "expert")
        try vision.checkRanges(file: file)
    }
}

extension ModelDims {
    func rangeChecked(file: String) throws -> ModelDims {
        try checkRanges(file: file)
        return self
    }
}
