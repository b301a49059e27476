// State normalisation and action un-normalisation as LeRobot's NormalizerProcessorStep /
// UnnormalizerProcessorStep (lerobot 0.6.1 processor/normalize_processor.py), plus pad_vector.
//
// Stats come from the safetensors file named by the step's `state_file`, keys "{feature}.{stat}" split
// at the LAST dot ("observation.images.top.mean" -> feature "observation.images.top", stat "mean").
// Arithmetic is float32 with one rounding per operation and no fused multiply-add, in LeRobot's
// operation order (docs/SPEC.md §2.1):
//   MEAN_STD    y = (x − mean) / (std + eps)          x = y·std + mean          (no eps back)
//   MIN_MAX     y = 2·(x − min)/d − 1                 x = (y + 1)/2·d + min     d = max − min (eps if 0)
//   QUANTILES   y = 2·(x − q01)/d − 1                 x = (y + 1)·d/2 + q01     d = q99 − q01 (eps if 0)
//   QUANTILE10  as QUANTILES with q10/q90
//   IDENTITY, or a feature without any stats: unchanged (LeRobot returns the tensor as is).

import Foundation
import SafeTensors

public enum NormalizerError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(file: String)
    case invalidJSON(file: String, reason: String)
    case missingStep(file: String, registryName: String)
    case missingField(file: String, field: String)
    case unknownMode(file: String, field: String, value: String)
    /// The stats safetensors could not be read (`reason` is the SafeTensors error).
    case statsFile(file: String, reason: String)
    /// A statistic the feature's mode needs is absent (`key` is the full tensor name, e.g. "action.std").
    case missingStat(file: String, key: String, mode: String)
    /// The feature is not among the step's configured features.
    case unknownFeature(file: String, key: String, available: [String])
    /// A vector's length (or a stat's) does not match.
    case dimensionMismatch(file: String, key: String, field: String, expected: Int, got: Int)
    /// A NaN/Inf input value.
    case nonFinite(key: String, index: Int, value: Float)
    /// A statistic that would make (un)normalisation non-finite: NaN/±inf, negative std, zero scale.
    case invalidStat(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(f): return "\(f): processor or stats file not found"
        case let .invalidJSON(f, r): return "\(f): invalid JSON: \(r)"
        case let .missingStep(f, r): return "\(f): no step with registry_name \"\(r)\""
        case let .missingField(f, field): return "\(f): missing or malformed field \(field)"
        case let .unknownMode(f, field, v): return "\(f): \(field) = \"\(v)\" is not a known normalization mode"
        case let .statsFile(f, r): return "\(f): cannot read normalisation stats: \(r)"
        case let .missingStat(f, k, m): return "\(f): tensor \"\(k)\" (needed for \(m)) is missing"
        case let .unknownFeature(f, k, a): return "\(f): feature \"\(k)\" is not configured (have: \(a.sorted().joined(separator: ", ")))"
        case let .dimensionMismatch(f, k, field, e, g): return "\(f): \(k): \(field) has \(g) values, expected \(e)"
        case let .nonFinite(k, i, v): return "\(k)[\(i)] is \(v); inputs must be finite"
        case let .invalidStat(f, k, r): return "\(f): statistic \"\(k)\": \(r)"
        }
    }
}

/// The normaliser of the pre-processor and the un-normaliser of the post-processor of one checkpoint.
public struct NormalizationStats: Sendable {
    /// One step: its config and stats (per feature, per stat name, flattened float32).
    public struct Step: Sendable {
        public let jsonFile: String
        public let statsFile: String?
        public let eps: Float
        public let features: [String: NormalizedFeature]
        public let stats: [String: [String: [Float]]]
    }

    public let pre: Step
    public let post: Step

    /// Reads `policy_preprocessor.json` (step "normalizer_processor") and `policy_postprocessor.json`
    /// (step "unnormalizer_processor") from the checkpoint folder, and each step's `state_file`.
    public static func load(checkpointDirectory: String) throws -> NormalizationStats {
        NormalizationStats(
            pre: try loadStep(checkpointDirectory, "policy_preprocessor.json", "normalizer_processor"),
            post: try loadStep(checkpointDirectory, "policy_postprocessor.json", "unnormalizer_processor"))
    }

    static func loadStep(_ dir: String, _ file: String, _ registry: String) throws -> Step {
        let cfg = try NormalizerStepConfig.load(directory: dir, fileName: file, registryName: registry)
        var stats: [String: [String: [Float]]] = [:]
        if let path = cfg.stateFile {
            guard FileManager.default.fileExists(atPath: path) else { throw NormalizerError.fileNotFound(file: path) }
            do {
                let st = try SafeTensorsFile(path: path)
                for name in st.names {
                    guard let dot = name.lastIndex(of: ".") else { continue }
                    stats[String(name[..<dot]), default: [:]][String(name[name.index(after: dot)...])] = try st.floats(name)
                }
            } catch let e as SafeTensorsError {
                throw NormalizerError.statsFile(file: path, reason: e.description)
            }
        }
        let step = Step(jsonFile: cfg.jsonFile, statsFile: cfg.stateFile, eps: cfg.eps, features: cfg.features, stats: stats)
        try step.checkStats()
        return step
    }

    /// Length of the state vector the pre-processor expects (`features["observation.state"].shape`).
    public var stateDim: Int? { pre.features["observation.state"]?.shape.reduce(1, *) }
    /// Length of one action the post-processor un-normalises.
    public var actionDim: Int? { post.features["action"]?.shape.reduce(1, *) }

    /// Pre-processor normalisation of one state vector (`key` must be a configured feature).
    public func normalizeState(_ state: [Float], key: String = "observation.state") throws -> [Float] {
        try pre.apply(state, key: key, rowLength: state.count, inverse: false)
    }

    /// Actions in the robot's units back into the model's action space: the inverse of
    /// `unnormalizeActions`, with the post-processor's statistics (real-time chunking's previous chunk).
    public func normalizeActions(_ actions: [Float], actionDim: Int, key: String = "action") throws -> [Float] {
        try postActions(actions, actionDim: actionDim, key: key, inverse: false, what: "action rows")
    }

    /// Post-processor un-normalisation of an action chunk, row-major [chunk, actionDim].
    public func unnormalizeActions(_ actions: [Float], actionDim: Int, key: String = "action") throws -> [Float] {
        try postActions(actions, actionDim: actionDim, key: key, inverse: true, what: "action chunk")
    }

    /// The post-processor's action statistics applied (or inverted) row by row; `what` names the input.
    private func postActions(_ actions: [Float], actionDim: Int, key: String, inverse: Bool, what: String) throws -> [Float] {
        guard actionDim > 0, actions.count % actionDim == 0 else {
            throw NormalizerError.dimensionMismatch(file: post.jsonFile, key: key,
                                                    field: "\(what) (length not a positive multiple of actionDim)",
                                                    expected: actionDim, got: actions.count)
        }
        return try post.apply(actions, key: key, rowLength: actionDim, inverse: inverse)
    }
}

extension NormalizationStats.Step {
    /// Applies the feature's mode to every row of `x` (rows of `rowLength`).
    func apply(_ x: [Float], key: String, rowLength n: Int, inverse: Bool) throws -> [Float] {
        guard let feature = features[key] else {
            throw NormalizerError.unknownFeature(file: jsonFile, key: key, available: Array(features.keys))
        }
        let dim = feature.shape.reduce(1, *)
        guard n == dim else { throw NormalizerError.dimensionMismatch(file: jsonFile, key: key, field: "input", expected: dim, got: n) }
        if let i = x.firstIndex(where: { !$0.isFinite }) { throw NormalizerError.nonFinite(key: key, index: i, value: x[i]) }
        // LeRobot: IDENTITY, or no stats at all for this key -> unchanged.
        guard feature.mode != .identity, let st = stats[key] else { return x }
        let file = statsFile ?? jsonFile
        func stat(_ name: String) throws -> [Float] {
            guard let v = st[name] else { throw NormalizerError.missingStat(file: file, key: "\(key).\(name)", mode: feature.mode.rawValue) }
            guard v.count == dim else { throw NormalizerError.dimensionMismatch(file: file, key: "\(key).\(name)", field: "stat", expected: dim, got: v.count) }
            return v
        }
        var y = x
        switch feature.mode {
        case .identity: break
        case .meanStd:
            let mean = try stat("mean"), std = try stat("std")
            for i in y.indices {
                let j = i % n
                if inverse {
                    let p = y[i] * std[j]                    // no FMA: round the product, then add
                    y[i] = p + mean[j]
                } else {
                    let d = std[j] + eps
                    y[i] = (y[i] - mean[j]) / d
                }
            }
        case .minMax, .quantiles, .quantile10:
            let (lo, hi) = feature.mode == .minMax ? ("min", "max") : (feature.mode == .quantiles ? ("q01", "q99") : ("q10", "q90"))
            let a = try stat(lo), b = try stat(hi)
            for i in y.indices {
                let j = i % n
                var d = b[j] - a[j]
                if d == 0 { d = eps }
                if inverse {
                    let t = y[i] + 1
                    if feature.mode == .minMax {
                        let h = t / 2, p = h * d          // (y + 1) / 2 * d + min
                        y[i] = p + a[j]
                    } else {
                        let p = t * d, h = p / 2          // (y + 1) * d / 2 + q
                        y[i] = h + a[j]
                    }
                } else {
                    let s = y[i] - a[j], t = 2 * s, q = t / d   // 2 * (x - lo) / d - 1
                    y[i] = q - 1
                }
            }
        }
        return y
    }
}

/// LeRobot's pad_vector: zero-pads the last dimension to `dim`; a longer vector is returned unchanged
/// (never truncated).
public func padVector(_ v: [Float], to dim: Int) -> [Float] {
    v.count >= dim ? v : v + [Float](repeating: 0, count: dim - v.count)
}
