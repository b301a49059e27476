// A backend that only records shapes: building a model with it checks every key and shape of a
// checkpoint without packing or copying weights (`pi0 inspect`). It cannot compute.
import PI0Tensor

public final class DryRunBackend: ComputeBackend, @unchecked Sendable {
    final class ShapeOnly: PreparedLinear, @unchecked Sendable {
        let outFeatures: Int, inFeatures: Int
        var byteCount: Int { 0 }
        init(_ n: Int, _ k: Int) { outFeatures = n; inFeatures = k }
    }
    public init() {}
    public var name: String { "dry-run" }
    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        ShapeOnly(weight.shape[0], weight.shape.dropFirst().reduce(1, *))
    }
    public func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        preconditionFailure("DryRunBackend cannot compute")
    }
    public func attention(_ a: AttentionArgs) { preconditionFailure("DryRunBackend cannot compute") }
}
