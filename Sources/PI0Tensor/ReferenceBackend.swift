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

public final class ReferenceBackend: ComputeBackend, @unchecked Sendable {
    public init() {}
    public var name: String { "reference" }

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        try PlainLinear(weight, bias: bias)
    }

    public func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let p = w as? PlainLinear else { preconditionFailure("ReferenceBackend got a foreign PreparedLinear") }
        let n = p.outFeatures, k = p.inFeatures
        p.weight.withUnsafeBufferPointer { wp in
            for m in 0..<rows {
                let xr = x + m * ldx, yr = y + m * ldy
                for j in 0..<n {
                    let wr = wp.baseAddress! + j * k
                    var acc: Float = 0
                    for i in 0..<k { acc += xr[i] * wr[i] }
                    yr[j] = acc + (p.bias?[j] ?? 0)
                }
            }
        }
    }

    public func attention(_ a: AttentionArgs) {
        ReferenceOps.referenceAttention(a)
    }
}
