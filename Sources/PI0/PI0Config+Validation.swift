// Range checks of `config.json`, run when it is parsed and before anything is allocated from it: sizes
// within sane bounds (a chunk of 1e9 actions is an error naming the field, not an allocation abort).
// The bounds are far above LeRobot's defaults (configuration_pi0.py; docs/SPEC.md §1). Then the rules
// LeRobot's PI0Config/PI05Config.__post_init__ enforce (n_action_steps ≤ chunk_size, the two variant
// names, a known normalisation mode per feature type) and one it only trips over at inference: an
// action feature wider than max_action_dim, which the model cannot produce.
import Foundation

public enum ConfigBounds {
    public static let maxChunk = 4096
    public static let maxVectorDim = 4096           // max_state_dim, max_action_dim, feature widths
    public static let maxInferenceSteps = 10_000
    public static let maxTokens = 8192
    public static let maxImageSide = DimsBounds.maxImageSide
    public static let maxEmptyCameras = 64
}

extension PI0Config {
    /// Every field within its bounds (see `ConfigBounds`); throws naming `file` and the field.
    public func checkRanges(file: String) throws {
        func bound(_ f: String, _ v: Int, _ range: ClosedRange<Int>) throws {
            guard range.contains(v) else {
                throw PI0ConfigError.invalidValue(file: file, field: f, reason: "\(v) is outside \(range.lowerBound)...\(range.upperBound)")
            }
        }
        try bound("chunk_size", chunkSize, 1...ConfigBounds.maxChunk)
        try bound("n_action_steps", nActionSteps, 1...ConfigBounds.maxChunk)
        try bound("max_state_dim", maxStateDim, 1...ConfigBounds.maxVectorDim)
        try bound("max_action_dim", maxActionDim, 1...ConfigBounds.maxVectorDim)
        try bound("num_inference_steps", numInferenceSteps, 1...ConfigBounds.maxInferenceSteps)
        try bound("tokenizer_max_length", tokenizerMaxLength, 1...ConfigBounds.maxTokens)
        try bound("empty_cameras", emptyCameras, 0...ConfigBounds.maxEmptyCameras)
        for side in imageResolution { try bound("image_resolution", side, 1...ConfigBounds.maxImageSide) }
        guard minPeriod.isFinite, maxPeriod.isFinite else {
            throw PI0ConfigError.invalidValue(file: file, field: "max_period", reason: "must be finite")
        }
        for (group, features) in [("input_features", inputFeatures), ("output_features", outputFeatures)] {
            for (name, f) in features {
                let n = f.shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0.multipliedReportingOverflow(by: $1).partialValue }
                let limit = f.kind == .visual ? ConfigBounds.maxImageSide * ConfigBounds.maxImageSide * 4 : ConfigBounds.maxVectorDim
                guard f.shape.count <= 4, n <= limit else {
                    throw PI0ConfigError.invalidValue(file: file, field: "\(group).\(name).shape", reason: "\(f.shape) is implausibly large")
                }
            }
        }
        try checkLeRobotRules(file: file)
    }

    /// LeRobot's normalisation modes (lerobot/configs/types.py NormalizationMode) and model variants.
    static let normalizationModes: Set<String> = ["IDENTITY", "MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10"]
    static let variants: Set<String> = ["gemma_2b", "gemma_300m"]

    /// What LeRobot refuses when it builds the config, plus an action feature the model cannot fill.
    func checkLeRobotRules(file: String) throws {
        func bad(_ field: String, _ reason: String) -> PI0ConfigError { .invalidValue(file: file, field: field, reason: reason) }
        guard nActionSteps <= chunkSize else {
            throw bad("n_action_steps", "\(nActionSteps) exceeds chunk_size \(chunkSize) (LeRobot refuses this config)")
        }
        for (field, v) in [("paligemma_variant", paligemmaVariant), ("action_expert_variant", actionExpertVariant)] where !Self.variants.contains(v) {
            throw bad(field, "'\(v)' is not gemma_2b or gemma_300m")
        }
        for (type, mode) in normalizationMapping.sorted(by: { $0.key < $1.key }) where !Self.normalizationModes.contains(mode) {
            throw bad("normalization_mapping.\(type)", "'\(mode)' is not one of \(Self.normalizationModes.sorted().joined(separator: ", "))")
        }
        for (name, f) in outputFeatures where f.kind == .action {
            let width = f.shape.reduce(1, *)
            guard width <= maxActionDim else {
                throw bad("output_features.\(name).shape", "\(f.shape): \(width) action dimensions exceed max_action_dim \(maxActionDim) (the model emits max_action_dim per step)")
            }
        }
    }
}
