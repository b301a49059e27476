// A backend that only records shapes: building a model with it checks every key and shape of a
// checkpoint without packing or copying weights (`pi0 inspect`). Its storage holds no memory, uploads
// are checked against its size and dropped, and it cannot compute: every operation stops the process.

public final class DryRunBackend: ComputeBackend, @unchecked Sendable {
    final class ShapeOnly: PreparedLinear, PreparedEmbedding, @unchecked Sendable {
        let outFeatures: Int, inFeatures: Int
        var rows: Int { outFeatures }
        var width: Int { inFeatures }
        var byteCount: Int { 0 }
        init(_ n: Int, _ k: Int) { outFeatures = n; inFeatures = k }
    }
    final class NoStorage: BackendStorage, @unchecked Sendable {
        let count: Int
        init(_ count: Int) { self.count = count }
    }

    public init() {}
    public var name: String { "dry-run" }

    private func cannot(_ op: String) -> Never { preconditionFailure("DryRunBackend cannot compute (\(op))") }

    public func allocate(count: Int) -> BackendStorage { NoStorage(count) }
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        precondition(destination.offset >= 0 && destination.offset + source.count <= destination.storage.count,
                     "DryRunBackend.upload: \(source.count) floats at \(destination.offset) into storage of \(destination.storage.count)")
    }
    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) { cannot("download") }
    public func synchronize() {}
    /// Shapes only: stacked parts are checked and their rows added up without reading any weight.
    public func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        guard weights.count == biases.count, !weights.isEmpty else {
            throw BackendError.unsupportedWeight(name: weights.first?.name ?? "(none)", reason: "\(weights.count) weights with \(biases.count) biases")
        }
        let shapes = try zip(weights, biases).map { try $0.linearShape(bias: $1) }
        if let bad = shapes.firstIndex(where: { $0.k != shapes[0].k }) {
            throw BackendError.unsupportedWeight(name: weights[bad].name, reason: "\(shapes[bad].k) inputs, but \(weights[0].name) has \(shapes[0].k)")
        }
        return ShapeOnly(shapes.reduce(0) { $0 + $1.n }, shapes[0].k)
    }
    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding {
        guard table.shape.count == 2 else {
            throw BackendError.unsupportedWeight(name: table.name, reason: "expected [rows, width], got shape \(table.shape)")
        }
        return ShapeOnly(table.shape[0], table.shape[1])
    }
    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) { cannot("linear") }
    public func attention(_ a: AttentionCall) { cannot("attention") }
    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) { cannot("layerNorm") }
    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) { cannot("rmsNorm") }
    public func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                              _ first: NormedProduct, _ second: NormedProduct?) { cannot("rmsNormLinear") }
    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        cannot("adaptiveModulate")
    }
    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        cannot("gatedAdd")
    }
    public func geluTanh(_ x: TensorRef, count: Int) { cannot("geluTanh") }
    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        cannot("geluTanhMul")
    }
    public func silu(_ x: TensorRef, count: Int) { cannot("silu") }
    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) { cannot("add") }
    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) { cannot("addPeriodic") }
    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) { cannot("scale") }
    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) { cannot("roundToBF16") }
    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        cannot("applyRoPE")
    }
    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        cannot("copy")
    }
    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        cannot("embed")
    }
    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) { cannot("patchify") }
    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) { cannot("timeEmbedding") }
    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) { cannot("eulerStep") }
    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) { cannot("guideVelocity") }
    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) { cannot("checkFinite") }
}
