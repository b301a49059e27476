// The plain, obviously-correct backend: triple loops with float32 accumulation in index order.
// It is the yardstick every fast kernel is tested against, and it runs the tiny fixture models.

/// Float32 copy of W [N, K] and bias, unpacked.
public final class PlainLinear: PreparedLinear, @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let weight: [Float]
    public let bias: [Float]?
    public var byteCount: Int { (weight.count + (bias?.count ?? 0)) * 4 }

    public init(_ w: WeightTensor, bias b: WeightTensor?) throws {
        guard w.shape.count == 2 else {
            throw BackendError.unsupportedWeight(name: w.name, reason: "expected rank 2, got shape \(w.shape)")
        }
        outFeatures = w.shape[0]; inFeatures = w.shape[1]
        if let b, b.shape != [outFeatures] {
            throw BackendError.unsupportedWeight(name: b.name, reason: "bias shape \(b.shape) for \(outFeatures) outputs")
        }
        weight = w.floats(); bias = b?.floats()
    }
}

/// The plain, obviously-correct backend: every operation of `HostBackend` as written there.
public final class ReferenceBackend: HostBackend, @unchecked Sendable {
    public override init() {}
    public override var name: String { "reference" }
}
