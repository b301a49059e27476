// LeRobot's `config.json` for the `pi0` and `pi05` policies (configuration_pi0.py, configuration_pi05.py,
// LeRobot 0.6.1). The two configs have the same fields; π0.5's defaults differ (tokenizer_max_length 200,
// QUANTILES normalisation). The model kind comes from the `type` field only (docs/SPEC_PI05.md §1).
//
// Parsed field by field so that every problem names its field. Fields that change inference are
// read; training-only fields are accepted and ignored; anything else is an error, because a field we
// do not know may change the math (see `PI0ConfigError.unknownField`).
import Foundation

public enum Precision: String, Sendable, CaseIterable {
    /// Everything float32, reproducing LeRobot's float32 numbers.
    case float32
    /// LeRobot's bfloat16 data path (docs/SPEC.md §7): Gemma weights and activations bf16 (fp32
    /// accumulation), vision tower, projector, norms and π0 heads float32.
    case bfloat16
}

/// One input or output feature of the policy (`input_features` / `output_features`).
public struct PolicyFeature: Sendable, Equatable {
    public enum Kind: String, Sendable { case visual = "VISUAL", state = "STATE", action = "ACTION", env = "ENV", language = "LANGUAGE" }
    public var kind: Kind
    public var shape: [Int]
}

/// Which policy a checkpoint holds, from `config.json`'s `type`.
public enum ModelKind: String, Sendable, CaseIterable {
    /// π0: state token, action-time MLP, plain RMSNorm everywhere.
    case pi0
    /// π0.5: adaptive RMSNorm in the expert conditioned on a time MLP; the state enters through the prompt.
    case pi05

    /// "π0" / "π0.5", for messages.
    public var displayName: String { self == .pi0 ? "π0" : "π0.5" }
}

public struct PI0Config: Sendable {
    public var model: ModelKind = .pi0
    public var paligemmaVariant = "gemma_2b"
    public var actionExpertVariant = "gemma_300m"
    public var precision: Precision = .float32
    public var chunkSize = 50
    public var nActionSteps = 50
    public var maxStateDim = 32
    public var maxActionDim = 32
    public var numInferenceSteps = 10
    public var minPeriod = 0.004
    public var maxPeriod = 4.0
    public var imageResolution = [224, 224]
    public var emptyCameras = 0
    public var tokenizerMaxLength = 48
    /// Input features in config order (cameras first as listed; LeRobot keeps JSON order).
    public var inputFeatures: [(name: String, feature: PolicyFeature)] = []
    public var outputFeatures: [(name: String, feature: PolicyFeature)] = []
    public var normalizationMapping: [String: String] = ["VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"]
    /// `rtc_config`: real-time chunking settings (nil when the checkpoint has none; a request that
    /// carries a previous chunk then uses `RTCConfig()`'s LeRobot defaults).
    public var rtc: RTCConfig? = nil

    public init() {}

    /// LeRobot's defaults for `kind` (PI0Config or PI05Config).
    public init(model kind: ModelKind) {
        model = kind
        if kind == .pi05 {
            tokenizerMaxLength = 200
            normalizationMapping = ["VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"]
        }
    }

    /// Camera feature names in the order `sample_actions` receives the images.
    public var cameraNames: [String] { inputFeatures.filter { $0.feature.kind == .visual }.map(\.name) }
    public var stateDim: Int? { inputFeatures.first { $0.feature.kind == .state }?.feature.shape.first }
    public var actionDim: Int? { outputFeatures.first { $0.feature.kind == .action }?.feature.shape.first }

    /// Fields LeRobot writes that do not affect inference (training, hub and device settings), plus
    /// fields of older LeRobot PI0 configs that are likewise inert for inference.
    static let inertFields: Set<String> = [
        "type", "n_obs_steps", "device", "use_amp", "use_peft", "push_to_hub", "repo_id", "private", "tags",
        "license", "pretrained_path", "pretrained_revision", "time_sampling_beta_alpha", "time_sampling_beta_beta",
        "time_sampling_scale", "time_sampling_offset", "gradient_checkpointing", "compile_model", "compile_mode",
        "freeze_vision_encoder", "train_expert_only", "optimizer_lr", "optimizer_betas", "optimizer_eps",
        "optimizer_weight_decay", "optimizer_grad_clip_norm", "scheduler_warmup_steps", "scheduler_decay_steps",
        "scheduler_decay_lr", "action_feature_names", "relative_exclude_joints",
        // older LeRobot PI0Config fields
        "resize_imgs_with_padding", "adapt_to_pi_aloha", "use_delta_joint_actions_aloha", "proj_width",
        "use_cache", "attention_implementation", "train_state_proj", "num_steps",
    ]
}

public enum PI0ConfigError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    case invalidJSON(file: String, reason: String)
    case wrongType(file: String, field: String, expected: String)
    case invalidValue(file: String, field: String, reason: String)
    case unknownField(file: String, field: String)
    case unsupported(file: String, field: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(f, r): return "\(f): cannot read: \(r)"
        case let .invalidJSON(f, r): return "\(f): invalid JSON: \(r)"
        case let .wrongType(f, k, e): return "\(f): field '\(k)' should be \(e)"
        case let .invalidValue(f, k, r): return "\(f): field '\(k)': \(r)"
        case let .unknownField(f, k): return "\(f): unknown field '\(k)' (not a LeRobot 0.6.1 pi0/pi05 config field; refusing to guess what it changes)"
        case let .unsupported(f, k, r): return "\(f): field '\(k)': \(r)"
        }
    }
}

extension PI0Config {
    public static func load(path: String) throws -> PI0Config {
        return try parse(data: try readConfigFile(path), file: path)
    }

    public static func parse(data: Data, file: String) throws -> PI0Config {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw PI0ConfigError.invalidJSON(file: file, reason: "\(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else {
            throw PI0ConfigError.invalidJSON(file: file, reason: "top level is not an object")
        }
        var r = JSONFields(dict: dict, file: file)
        var kind = ModelKind.pi0
        if let t = try r.string("type") {
            guard let k = ModelKind(rawValue: t) else {
                throw PI0ConfigError.unsupported(file: file, field: "type", reason: "'\(t)' is not a pi0 or pi05 policy")
            }
            kind = k
        }
        var c = PI0Config(model: kind)
        c.paligemmaVariant = try r.string("paligemma_variant") ?? c.paligemmaVariant
        c.actionExpertVariant = try r.string("action_expert_variant") ?? c.actionExpertVariant
        if let d = try r.string("dtype") {
            guard let p = Precision(rawValue: d) else {
                throw PI0ConfigError.invalidValue(file: file, field: "dtype", reason: "'\(d)' is not float32 or bfloat16")
            }
            c.precision = p
        }
        c.chunkSize = try r.positiveInt("chunk_size") ?? c.chunkSize
        c.nActionSteps = try r.positiveInt("n_action_steps") ?? c.nActionSteps
        c.maxStateDim = try r.positiveInt("max_state_dim") ?? c.maxStateDim
        c.maxActionDim = try r.positiveInt("max_action_dim") ?? c.maxActionDim
        c.numInferenceSteps = try r.positiveInt("num_inference_steps") ?? c.numInferenceSteps
        c.minPeriod = try r.double("min_period") ?? c.minPeriod
        c.maxPeriod = try r.double("max_period") ?? c.maxPeriod
        c.emptyCameras = try r.nonNegativeInt("empty_cameras") ?? c.emptyCameras
        c.tokenizerMaxLength = try r.positiveInt("tokenizer_max_length") ?? c.tokenizerMaxLength
        if let res = try r.intArray("image_resolution") {
            guard res.count == 2, res.allSatisfy({ $0 > 0 }) else {
                throw PI0ConfigError.invalidValue(file: file, field: "image_resolution", reason: "expected [height, width], got \(res)")
            }
            c.imageResolution = res
        }
        if let m = try r.object("normalization_mapping") {
            c.normalizationMapping = try m.mapValues { v in
                guard let s = v as? String else {
                    throw PI0ConfigError.wrongType(file: file, field: "normalization_mapping", expected: "a map of strings")
                }
                return s
            }
        }
        c.inputFeatures = try r.features("input_features", order: data)
        c.outputFeatures = try r.features("output_features", order: data)
        if try r.bool("use_relative_actions") == true {
            throw PI0ConfigError.unsupported(file: file, field: "use_relative_actions", reason: "relative actions are not supported yet")
        }
        if var rtc = try r.nested("rtc_config") { c.rtc = try RTCConfig.parse(&rtc) }
        guard c.minPeriod > 0, c.maxPeriod > c.minPeriod else {
            throw PI0ConfigError.invalidValue(file: file, field: "min_period", reason: "need 0 < min_period < max_period")
        }
        for key in r.remaining.sorted() where !inertFields.contains(key) {
            throw PI0ConfigError.unknownField(file: file, field: key)
        }
        try c.checkRanges(file: file)
        return c
    }
}
