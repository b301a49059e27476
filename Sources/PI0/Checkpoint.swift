// A LeRobot π0 checkpoint folder: `config.json`, `model.safetensors` (memory-mapped) and optionally
// `pi0_dims.json`. Key handling mirrors LeRobot 0.6.1's loader (docs/SPEC.md §8):
//   * keys are accepted with or without the `model.` prefix (raw openpi PyTorch checkpoints have none);
//   * `time_mlp_in.` / `time_mlp_out.` (openpi pi05-style names) mean `action_time_mlp_in.` / `_out.`;
//   * the token embedding is `…language_model.embed_tokens.weight` when present, otherwise the tied
//     `…paligemma.lm_head.weight` (published checkpoints store only the latter).
// Loading is strict: every tensor the model needs must exist with the right shape, and every tensor in
// the file must be used or be on the list of tensors ignored on purpose.
import Foundation
import PI0Tensor
import SafeTensors

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String)
    case missingTensor(key: String, file: String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int], file: String, hint: String)
    case unsupportedDType(key: String, dtype: String, file: String)
    case duplicateKey(key: String, file: String)
    case unexpectedTensors(keys: [String], file: String)

    public var description: String {
        switch self {
        case let .missingFile(p): return "checkpoint file not found: \(p)"
        case let .missingTensor(k, f): return "\(f): missing tensor '\(k)'"
        case let .shapeMismatch(k, e, a, f, h):
            return "\(f): tensor '\(k)' has shape \(a), expected \(e)" + (h.isEmpty ? "" : " (\(h))")
        case let .unsupportedDType(k, d, f): return "\(f): tensor '\(k)' has dtype \(d); weights must be F32, BF16 or F16"
        case let .duplicateKey(k, f): return "\(f): tensor '\(k)' appears both with and without the 'model.' prefix"
        case let .unexpectedTensors(ks, f):
            let shown = ks.prefix(8).joined(separator: ", ")
            return "\(f): \(ks.count) unexpected tensor(s) not used by π0: \(shown)\(ks.count > 8 ? ", …" : "")"
        }
    }
}

/// Tensors present in real checkpoints that π0 inference does not use, with the reason.
let intentionallyIgnored: [String: String] = [
    "paligemma_with_expert.gemma_expert.lm_head.weight": "the action expert's output head is never used by π0",
]

public final class Checkpoint: @unchecked Sendable {
    public let directory: String
    public let config: PI0Config
    public let dims: ModelDims
    public let safetensors: SafeTensorsFile
    /// Normalised key (no `model.` prefix, renames applied) → key in the file.
    public let keys: [String: String]
    private var used: Set<String> = []
    private let lock = NSLock()

    public var weightsPath: String { safetensors.path }

    /// Opens `directory/config.json`, `directory/model.safetensors` and, if present, `pi0_dims.json`.
    public init(directory: String) throws {
        self.directory = directory
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        let weightsPath = (directory as NSString).appendingPathComponent("model.safetensors")
        let dimsPath = (directory as NSString).appendingPathComponent("pi0_dims.json")
        guard FileManager.default.fileExists(atPath: configPath) else { throw CheckpointError.missingFile(path: configPath) }
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw CheckpointError.missingFile(path: weightsPath) }
        config = try PI0Config.load(path: configPath)
        if FileManager.default.fileExists(atPath: dimsPath) {
            dims = try ModelDims.load(dimsFile: dimsPath)
            try dims.validate(file: dimsPath)
        } else {
            dims = try ModelDims.from(config: config, file: configPath)
        }
        safetensors = try SafeTensorsFile(path: weightsPath)
        var map: [String: String] = [:]
        for name in safetensors.names {
            var k = name.hasPrefix("model.") ? String(name.dropFirst(6)) : name
            for (old, new) in [("time_mlp_in.", "action_time_mlp_in."), ("time_mlp_out.", "action_time_mlp_out.")] where k.hasPrefix(old) {
                k = new + k.dropFirst(old.count)
            }
            if map[k] != nil { throw CheckpointError.duplicateKey(key: k, file: weightsPath) }
            map[k] = name
        }
        keys = map
    }

    public func contains(_ key: String) -> Bool { keys[key] != nil }

    /// The weight `key` (normalised name), checked against `shape`. bf16 and f32 tensors point into the
    /// mapped file; f16 (and misaligned data) is converted to an owned float32 copy.
    public func weight(_ key: String, shape: [Int], hint: String = "") throws -> WeightTensor {
        guard let fileKey = keys[key] else { throw CheckpointError.missingTensor(key: "model." + key, file: weightsPath) }
        let info = try safetensors.info(fileKey)
        guard info.shape == shape else {
            throw CheckpointError.shapeMismatch(key: fileKey, expected: shape, actual: info.shape, file: weightsPath, hint: hint)
        }
        lock.lock(); used.insert(key); lock.unlock()
        let raw = try safetensors.rawBytes(fileKey)
        let base = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        switch info.dtype {
        case .F32 where Int(bitPattern: base) % 4 == 0:
            return WeightTensor(name: fileKey, shape: shape, dtype: .float32, pointer: base, owner: safetensors)
        case .BF16 where Int(bitPattern: base) % 2 == 0:
            return WeightTensor(name: fileKey, shape: shape, dtype: .bfloat16, pointer: base, owner: safetensors)
        case .F32, .BF16, .F16:
            return WeightTensor(name: fileKey, shape: shape, floats: try safetensors.floats(fileKey), dtype: .float32)
        default:
            throw CheckpointError.unsupportedDType(key: fileKey, dtype: info.dtype.rawValue, file: weightsPath)
        }
    }

    /// A reader scoped under `prefix` (e.g. "paligemma_with_expert.gemma_expert.model").
    public func scoped(_ prefix: String) -> WeightScope { WeightScope(checkpoint: self, prefix: prefix) }

    /// Tensors in the file that nothing asked for, minus those ignored on purpose.
    public func unusedKeys() -> (unexpected: [String], ignored: [(key: String, reason: String)]) {
        lock.lock(); defer { lock.unlock() }
        var unexpected: [String] = [], ignored: [(String, String)] = []
        for (k, fileKey) in keys.sorted(by: { $0.key < $1.key }) where !used.contains(k) {
            if let why = intentionallyIgnored[k] {
                ignored.append((fileKey, why))
            } else if k == PI0Keys.lmHead {
                ignored.append((fileKey, "tied output head; the token embedding is read from embed_tokens"))
            } else {
                unexpected.append(fileKey)
            }
        }
        return (unexpected, ignored.map { (key: $0.0, reason: $0.1) })
    }

    /// Throws if the file holds tensors π0 does not use (and that are not ignored on purpose).
    public func checkAllUsed() throws {
        let u = unusedKeys().unexpected
        if !u.isEmpty { throw CheckpointError.unexpectedTensors(keys: u, file: weightsPath) }
    }
}

/// Declares checkpoint keys relative to a module, as the reference modules name them.
public struct WeightScope: Sendable {
    public let checkpoint: Checkpoint
    public let prefix: String

    public func scoped(_ sub: String) -> WeightScope {
        WeightScope(checkpoint: checkpoint, prefix: prefix.isEmpty ? sub : prefix + "." + sub)
    }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func tensor(_ name: String, _ shape: [Int], hint: String = "") throws -> WeightTensor {
        try checkpoint.weight(key(name), shape: shape, hint: hint)
    }

    /// `name.weight` [out, in] and, when `bias`, `name.bias` [out].
    public func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool, hint: String = "")
        throws -> (weight: WeightTensor, bias: WeightTensor?) {
        let w = try tensor(name + ".weight", [out, inFeatures], hint: hint)
        let b = bias ? try tensor(name + ".bias", [out], hint: hint) : nil
        return (w, b)
    }

    /// A vector parameter as floats (norm weights, biases, position embeddings).
    public func floats(_ name: String, _ shape: [Int], hint: String = "") throws -> [Float] {
        try tensor(name, shape, hint: hint).floats()
    }
}

/// Top-level key names (normalised: no `model.` prefix).
public enum PI0Keys {
    public static let paligemma = "paligemma_with_expert.paligemma"
    public static let vision = "paligemma_with_expert.paligemma.model.vision_tower.vision_model"
    public static let projector = "paligemma_with_expert.paligemma.model.multi_modal_projector"
    public static let languageModel = "paligemma_with_expert.paligemma.model.language_model"
    public static let embedTokens = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
    public static let lmHead = "paligemma_with_expert.paligemma.lm_head.weight"
    public static let expert = "paligemma_with_expert.gemma_expert.model"
}
