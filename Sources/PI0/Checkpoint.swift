// A LeRobot π0 or π0.5 checkpoint folder: `config.json` (its `type` says which), `model.safetensors`
// (memory-mapped) and optionally `pi0_dims.json` / `pi05_dims.json`. Key handling mirrors LeRobot 0.6.1's
// loader (docs/SPEC.md §8, docs/SPEC_PI05.md §9):
//   * keys are accepted with or without the `model.` prefix (raw openpi PyTorch checkpoints have none);
//   * π0 only: `time_mlp_in.` / `time_mlp_out.` (openpi pi05-style names) mean `action_time_mlp_in.` / `_out.`;
//   * the token embedding is `…language_model.embed_tokens.weight` when present, otherwise the tied
//     `…paligemma.lm_head.weight` (published checkpoints store only the latter).
// Loading is strict: every tensor the model needs must exist with the right shape, and every tensor in
// the file must be used or be declared unused on purpose; a tensor that belongs to the
// other model kind (a π0 `state_proj` in a π0.5 checkpoint, an adaRMS `dense` in a π0 one) is named as such.
// The modules declare their keys once, in their initialisers, through `WeightScope`; a `WeightSource`
// answers: this file, or the recorder behind `CheckpointLayout` (CheckpointLayout.swift).
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
    /// A tensor of the other model kind: the file does not match `config.json`'s `type`.
    case otherModelTensor(key: String, file: String, config: ModelKind)

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
            return "\(f): \(ks.count) unexpected tensor(s) not used by the model: \(shown)\(ks.count > 8 ? ", …" : "")"
        case let .otherModelTensor(k, f, c):
            let other: ModelKind = c == .pi0 ? .pi05 : .pi0
            return "\(f): tensor '\(k)' belongs to a \(other.displayName) checkpoint, but config.json says type '\(c.rawValue)' (\(c.displayName))"
        }
    }
}

/// Where a model's weights come from. Keys are normalised (no `model.` prefix); `role` says what the
/// tensor is (for the layout and the random initialisation, RandomCheckpoint.swift).
public protocol WeightSource: AnyObject, Sendable {
    /// Whether the source holds `key` (used only for LeRobot's embed_tokens / tied lm_head rule).
    func contains(_ key: String) -> Bool
    /// The weight `key`, checked against `shape`.
    func weight(_ key: String, shape: [Int], role: CheckpointTensor.Role, hint: String) throws -> WeightTensor
    /// A tensor that real checkpoints hold and the model never reads, with the reason.
    func declareUnused(_ key: String, shape: [Int], role: CheckpointTensor.Role, reason: String)
    /// The backend holds its own copy of `weight` now; the source may drop the pages behind it.
    func release(_ weight: WeightTensor)
}

public final class Checkpoint: WeightSource, @unchecked Sendable {
    public let directory: String
    public let config: PI0Config
    public let dims: ModelDims
    public let safetensors: SafeTensorsFile
    /// Normalised key (no `model.` prefix, renames applied) → key in the file.
    public let keys: [String: String]
    private var used: Set<String> = []
    /// Keys the model declared unused on purpose (`declareUnused`), with the reason.
    private var unusedOnPurpose: [String: String] = [:]
    private let lock = NSLock()
    /// Loading progress for displays: called by `weight(_:shape:)` with (bytes of the tensors requested
    /// before this one, bytes of all tensors in the file), i.e. once the previous tensor has been handed
    /// to the backend (packed). Set it before building a model; it runs on the loading thread.
    public var loadProgress: ((_ bytesDone: Int64, _ bytesTotal: Int64) -> Void)?
    private var requestedBytes: Int64 = 0
    /// Bytes of all tensors in `model.safetensors`.
    public let tensorBytes: Int64

    public var weightsPath: String { safetensors.path }

    /// Opens `directory/config.json`, `directory/model.safetensors` and, if present, `pi0_dims.json` /
    /// `pi05_dims.json`.
    public init(directory: String) throws {
        self.directory = directory
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        let weightsPath = (directory as NSString).appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: configPath) else { throw CheckpointError.missingFile(path: configPath) }
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw CheckpointError.missingFile(path: weightsPath) }
        config = try PI0Config.load(path: configPath)
        // The kind's own dims file (pi0_dims.json / pi05_dims.json), else the other name (same format).
        let dimsPath = [config.model, config.model == .pi0 ? .pi05 : .pi0]
            .map { (directory as NSString).appendingPathComponent(ModelDims.fileName(for: $0)) }
            .first { FileManager.default.fileExists(atPath: $0) } ?? ""
        if !dimsPath.isEmpty {
            dims = try ModelDims.load(dimsFile: dimsPath, model: config.model)
            try dims.validate(file: dimsPath)
        } else {
            dims = try ModelDims.from(config: config, file: configPath)
        }
        safetensors = try SafeTensorsFile(path: weightsPath)
        tensorBytes = safetensors.infos.reduce(0) { $0 + Int64($1.byteCount) }
        var map: [String: String] = [:]
        for name in safetensors.names {
            var k = name.hasPrefix("model.") ? String(name.dropFirst(6)) : name
            let renames = config.model == .pi0 ? [("time_mlp_in.", "action_time_mlp_in."), ("time_mlp_out.", "action_time_mlp_out.")] : []
            for (old, new) in renames where k.hasPrefix(old) {
                k = new + k.dropFirst(old.count)
            }
            if map[k] != nil { throw CheckpointError.duplicateKey(key: k, file: weightsPath) }
            map[k] = name
        }
        keys = map
    }

    public func contains(_ key: String) -> Bool { keys[key] != nil }

    #if DEBUG
    /// Debug builds only: PI0_DEBUG_LOAD_DELAY_MS=N sleeps N ms per tensor, so tests can measure what a
    /// user sees during a long load (docs/CLI.md) on a small checkpoint.
    static let debugDelayMicroseconds: UInt32 = ProcessInfo.processInfo.environment["PI0_DEBUG_LOAD_DELAY_MS"]
        .flatMap { UInt32($0) }.map { $0 * 1000 } ?? 0
    static func debugLoadDelay() { if debugDelayMicroseconds > 0 { usleep(debugDelayMicroseconds) } }
    #endif

    /// The weight `key` (normalised name), checked against `shape`. bf16 and f32 tensors point into the
    /// mapped file; f16 (and misaligned data) is converted to an owned float32 copy.
    public func weight(_ key: String, shape: [Int], role: CheckpointTensor.Role, hint: String) throws -> WeightTensor {
        try weight(key, shape: shape, hint: hint)
    }

    /// `weight(_:shape:role:hint:)` for callers outside the model (the role only matters to the layout).
    public func weight(_ key: String, shape: [Int], hint: String = "") throws -> WeightTensor {
        guard let fileKey = keys[key] else { throw CheckpointError.missingTensor(key: "model." + key, file: weightsPath) }
        let info = try safetensors.info(fileKey)
        guard info.shape == shape else {
            throw CheckpointError.shapeMismatch(key: fileKey, expected: shape, actual: info.shape, file: weightsPath, hint: hint)
        }
        lock.lock()
        let before = requestedBytes
        if used.insert(key).inserted { requestedBytes += Int64(info.byteCount) }
        lock.unlock()
        if let loadProgress { loadProgress(before, tensorBytes) }
        #if DEBUG
        Self.debugLoadDelay()
        #endif
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

    public func declareUnused(_ key: String, shape: [Int], role: CheckpointTensor.Role, reason: String) {
        lock.lock(); unusedOnPurpose[key] = reason; lock.unlock()
    }

    /// Drops the mapped pages of `weight` (re-read from the file if anything touches them again).
    public func release(_ weight: WeightTensor) { safetensors.releaseResidentPages(of: weight.name) }

    /// Normalised keys the model has read so far.
    var usedKeys: Set<String> { lock.lock(); defer { lock.unlock() }; return used }

    /// Tensors in the file that nothing asked for, minus those ignored on purpose.
    public func unusedKeys() -> (unexpected: [String], ignored: [(key: String, reason: String)]) {
        lock.lock(); defer { lock.unlock() }
        var unexpected: [String] = [], ignored: [(String, String)] = []
        for (k, fileKey) in keys.sorted(by: { $0.key < $1.key }) where !used.contains(k) {
            if let why = unusedOnPurpose[k] {
                ignored.append((fileKey, why))
            } else if k == PI0Keys.lmHead {
                ignored.append((fileKey, "tied output head; the token embedding is read from embed_tokens"))
            } else {
                unexpected.append(fileKey)
            }
        }
        return (unexpected, ignored.map { (key: $0.0, reason: $0.1) })
    }

    /// Throws if the file holds tensors the model does not use (and that are not ignored on purpose);
    /// the first tensor of the other model kind, if any, is named as such.
    public func checkAllUsed() throws {
        try checkModelKind()
        let u = unusedKeys().unexpected
        if !u.isEmpty { throw CheckpointError.unexpectedTensors(keys: u, file: weightsPath) }
    }

    /// Throws `otherModelTensor` for the first tensor (in name order) that only the other model kind
    /// has, e.g. `state_proj` in a π0.5 checkpoint or an expert norm's `dense` layer in a π0 one.
    public func checkModelKind() throws {
        let other: ModelKind = config.model == .pi0 ? .pi05 : .pi0
        func names(_ kind: ModelKind) -> Set<String> {
            Set(CheckpointLayout.tensors(dims: dims, model: kind, maxStateDim: config.maxStateDim,
                                         maxActionDim: config.maxActionDim).map(\.name))
        }
        let foreign = names(other).subtracting(names(config.model))
        for (k, fileKey) in keys.sorted(by: { $0.key < $1.key }) where foreign.contains("model." + k) {
            throw CheckpointError.otherModelTensor(key: fileKey, file: weightsPath, config: config.model)
        }
    }
}

extension WeightSource {
    /// A reader scoped under `prefix` (e.g. "paligemma_with_expert.gemma_expert.model").
    public func scoped(_ prefix: String) -> WeightScope { WeightScope(source: self, prefix: prefix) }
}

/// Declares checkpoint keys relative to a module, as the reference modules name them: the only place
/// a key, its shape and its role are written down.
public struct WeightScope: Sendable {
    public let source: any WeightSource
    public let prefix: String

    public func scoped(_ sub: String) -> WeightScope {
        WeightScope(source: source, prefix: key(sub))
    }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func tensor(_ name: String, _ shape: [Int], role: CheckpointTensor.Role, hint: String = "") throws -> WeightTensor {
        try source.weight(key(name), shape: shape, role: role, hint: hint)
    }

    /// `name.weight` [out, in] (role `.linear(fanIn: in)` unless given) and, when `bias`, `name.bias` [out].
    public func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool, role: CheckpointTensor.Role? = nil,
                       hint: String = "") throws -> (weight: WeightTensor, bias: WeightTensor?) {
        let w = try tensor(name + ".weight", [out, inFeatures], role: role ?? .linear(fanIn: inFeatures), hint: hint)
        let b = bias ? try tensor(name + ".bias", [out], role: .bias, hint: hint) : nil
        return (w, b)
    }

    /// A vector parameter as floats (norm weights, biases, position embeddings).
    public func floats(_ name: String, _ shape: [Int], role: CheckpointTensor.Role, hint: String = "") throws -> [Float] {
        try tensor(name, shape, role: role, hint: hint).floats()
    }

    /// A tensor of real checkpoints that the model never reads (`reason` is shown by `pi0 inspect`).
    public func unused(_ name: String, _ shape: [Int], role: CheckpointTensor.Role, reason: String) {
        source.declareUnused(key(name), shape: shape, role: role, reason: reason)
    }

    /// See `WeightSource.release`.
    public func release(_ weight: WeightTensor) { source.release(weight) }
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
