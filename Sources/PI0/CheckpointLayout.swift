// Every tensor of a LeRobot π0 or π0.5 checkpoint with its shape and role (docs/SPEC.md §8,
// docs/SPEC_PI05.md §9), recorded from the modules' own declarations: `CheckpointLayout` builds the
// model on a `LayoutRecorder` (which answers every weight request with zeros and notes the key) and the
// dry-run backend (which keeps nothing). It is the list behind `pi0 write-random-checkpoint`, the layout
// tests and the check that a checkpoint's tensors match its config's model kind.
import Foundation
import PI0Tensor

public struct CheckpointTensor: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        case linear(fanIn: Int)     // weight of a linear/conv layer
        case bias
        case norm                   // LayerNorm weight (≈1) or Gemma RMSNorm weight (stored w, used 1+w)
        case adaptiveNorm(fanIn: Int)   // π0.5 adaRMS `dense` weight (maps the conditioning to scale|shift|gate)
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
    /// All tensors with the `model.` prefix, in name order; the token embedding only as the tied
    /// `lm_head` (as published checkpoints store it).
    public static func tensors(dims: ModelDims, model: ModelKind = .pi0, maxStateDim: Int = 32,
                               maxActionDim: Int = 32) -> [CheckpointTensor] {
        var config = PI0Config(model: model)
        config.maxStateDim = maxStateDim
        config.maxActionDim = maxActionDim
        let recorder = LayoutRecorder()
        do {
            _ = try PI0Model(weights: recorder, config: config, dims: dims, precision: .float32, backend: DryRunBackend())
        } catch {
            // The recorder hands out exactly the shapes asked for, so only the system can fail here.
            preconditionFailure("recording the checkpoint layout failed: \(error)")
        }
        return recorder.recorded.sorted { $0.name < $1.name }
    }
}

/// A weight source that holds every tensor the model asks for: it records the request (key, shape,
/// role) and answers with zeros that take no memory (a read-only anonymous mapping).
final class LayoutRecorder: WeightSource, @unchecked Sendable {
    private let lock = NSLock()
    private var tensors: [String: CheckpointTensor] = [:]

    /// What the model asked for or declared unused, each key once.
    var recorded: [CheckpointTensor] { lock.lock(); defer { lock.unlock() }; return Array(tensors.values) }

    /// False, so the model asks for the token embedding as the tied `lm_head` (LeRobot's rule).
    func contains(_ key: String) -> Bool { false }

    func weight(_ key: String, shape: [Int], role: CheckpointTensor.Role, hint: String) throws -> WeightTensor {
        record(key, shape, role)
        let zeros = try ZeroPages(byteCount: shape.reduce(4, *))
        return WeightTensor(name: "model." + key, shape: shape, dtype: .float32, pointer: zeros.pointer, owner: zeros)
    }

    func declareUnused(_ key: String, shape: [Int], role: CheckpointTensor.Role, reason: String) {
        record(key, shape, role)
    }

    func release(_ weight: WeightTensor) {}

    private func record(_ key: String, _ shape: [Int], _ role: CheckpointTensor.Role) {
        let t = CheckpointTensor(name: "model." + key, shape: shape, role: role)
        lock.lock(); defer { lock.unlock() }
        precondition(tensors[key].map { $0 == t } ?? true, "checkpoint key '\(key)' declared twice, differently")
        tensors[key] = t
    }
}

/// `byteCount` zero bytes, read-only, backed by no memory until read (then by the shared zero page).
private final class ZeroPages: @unchecked Sendable {
    struct MapFailed: Error, CustomStringConvertible {
        let byteCount: Int, errno: Int32
        var description: String { "cannot map \(byteCount) zero bytes (errno \(errno))" }
    }
    let pointer: UnsafeRawPointer
    private let byteCount: Int

    init(byteCount: Int) throws {
        self.byteCount = max(byteCount, 1)
        let p = mmap(nil, self.byteCount, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw MapFailed(byteCount: self.byteCount, errno: errno) }
        pointer = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: pointer), byteCount) }
}
