// Reading LeRobot's saved processor pipelines (`policy_preprocessor.json` / `policy_postprocessor.json`,
// written by `PolicyProcessorPipeline.save_pretrained`, lerobot 0.6.1) — only the (un)normaliser step:
//   {"name": ..., "steps": [{"registry_name": "normalizer_processor",
//     "config": {"eps": 1e-08, "features": {KEY: {"type": "STATE", "shape": [14]}, ...},
//                "norm_map": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}},
//     "state_file": "policy_preprocessor_step_6_normalizer_processor.safetensors"}, ...]}
// The state file's step index differs between lerobot versions, so it is always taken from `state_file`.

import Foundation
import InputFiles

/// LeRobot's NormalizationMode values (`norm_map` in the processor JSON).
public enum NormalizationMode: String, Sendable, CaseIterable {
    case meanStd = "MEAN_STD"
    case minMax = "MIN_MAX"
    case quantiles = "QUANTILES"
    case quantile10 = "QUANTILE10"
    case identity = "IDENTITY"
}

/// One feature of the normaliser step's `features` with its mode resolved through `norm_map`.
public struct NormalizedFeature: Sendable, Equatable {
    public let key: String
    /// LeRobot FeatureType name: STATE, ACTION, VISUAL, ENV, ...
    public let type: String
    public let shape: [Int]
    public let mode: NormalizationMode
}

/// The normaliser (or un-normaliser) step of one processor JSON.
struct NormalizerStepConfig: Sendable {
    let jsonFile: String
    let eps: Float
    let features: [String: NormalizedFeature]
    /// Absolute path of the stats safetensors, or nil when the step has no `state_file` (no stats saved).
    let stateFile: String?

    /// Parses `directory/fileName` and returns the step whose `registry_name` is `registryName`.
    static func load(directory: String, fileName: String, registryName: String) throws -> NormalizerStepConfig {
        let path = (directory as NSString).appendingPathComponent(fileName)
        let data: Data
        do { data = Data(try InputFile.readAll(path, limit: 64 << 20)) } catch let e as InputFileError {
            throw e.missing ? NormalizerError.fileNotFound(file: path) : NormalizerError.statsFile(file: path, reason: e.reason)
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw NormalizerError.invalidJSON(file: path, reason: "\(error.localizedDescription)")
        }
        guard let obj = root as? [String: Any], let steps = obj["steps"] as? [[String: Any]] else {
            throw NormalizerError.missingField(file: path, field: "steps")
        }
        guard let step = steps.first(where: { $0["registry_name"] as? String == registryName }) else {
            throw NormalizerError.missingStep(file: path, registryName: registryName)
        }
        guard let config = step["config"] as? [String: Any] else {
            throw NormalizerError.missingField(file: path, field: "\(registryName).config")
        }
        // eps is a Python float; torch adds it to a float32 tensor as float32.
        let eps = Float((config["eps"] as? NSNumber)?.doubleValue ?? 1e-8)
        guard let normMap = config["norm_map"] as? [String: String] else {
            throw NormalizerError.missingField(file: path, field: "\(registryName).config.norm_map")
        }
        guard let feats = config["features"] as? [String: [String: Any]] else {
            throw NormalizerError.missingField(file: path, field: "\(registryName).config.features")
        }
        var features: [String: NormalizedFeature] = [:]
        for (key, f) in feats {
            guard let type = f["type"] as? String else {
                throw NormalizerError.missingField(file: path, field: "\(registryName).config.features.\(key).type")
            }
            guard let shape = (f["shape"] as? [NSNumber])?.map(\.intValue) else {
                throw NormalizerError.missingField(file: path, field: "\(registryName).config.features.\(key).shape")
            }
            // LeRobot: a feature type missing from norm_map is not normalised (IDENTITY).
            let modeName = normMap[type] ?? NormalizationMode.identity.rawValue
            guard let mode = NormalizationMode(rawValue: modeName) else {
                throw NormalizerError.unknownMode(file: path, field: "\(registryName).config.norm_map.\(type)", value: modeName)
            }
            features[key] = NormalizedFeature(key: key, type: type, shape: shape, mode: mode)
        }
        let stateFile = (step["state_file"] as? String).map { (directory as NSString).appendingPathComponent($0) }
        return NormalizerStepConfig(jsonFile: path, eps: eps, features: features, stateFile: stateFile)
    }
}
