// A backend that only records shapes: building a model with it checks every key and shape of a
// checkpoint without packing, copying or uploading weights (`pi0 inspect`). Storage holds no memory
// (uploads are checked against its size and dropped) and it cannot compute: every operation, and a
// download, stops the process naming the operation.

public final class DryRunBackend: ComputeBackend, @unchecked Sendable {
    /// Storage of a size and nothing else.
    final class ShapeOnlyStorage: BackendStorage, @unchecked Sendable {
        let count: Int
        init(count: Int) { self.count = count }
    }

    final class ShapeOnlyLinear: PreparedLinear, @unchecked Sendable {
        let outFeatures: Int, inFeatures: Int
        var byteCount: Int { 0 }
        init(_ n: Int, _ k: Int) { outFeatures = n; inFeatures = k }
    }

    final class ShapeOnlyEmbedding: PreparedEmbedding, @unchecked Sendable {
        let rows: Int, width: Int
        init(_ rows: Int, _ width: Int) { self.rows = rows; self.width = width }
    }

    public init() {}
    public var name: String { "dry-run" }

    private func cannotCompute(_ op: String) -> Never { preconditionFailure("DryRunBackend cannot compute (\(op))") }

    // MARK: Memory and transfers

    public func allocate(count: Int) -> BackendStorage {
        precondition(count >= 0, "DryRunBackend.allocate: negative count \(count)")
        return ShapeOnlyStorage(count: count)
    }
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        precondition(destination.offset >= 0 && destination.offset + source.count <= destination.storage.count,
                     "DryRunBackend.upload: \(source.count) floats at \(destination.offset) into storage of \(destination.storage.count)")
    }
    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) { cannotCompute("download") }
    public func synchronize() {}

    // MARK: Weights (shapes only; the same errors as a computing backend)

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        let (n, k) = try weight.linearShape(bias: bias)
        return ShapeOnlyLinear(n, k)
    }
    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding {
        let e = try HostEmbedding(table)             // the host backends' shape check, nothing copied
        return ShapeOnlyEmbedding(e.rows, e.width)
    }

    // MARK: Compute (refused)

    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) { cannotCompute("linear") }
    public func attention(_ a: AttentionCall) { cannotCompute("attention") }
    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        cannotCompute("layerNorm")
    }
    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        cannotCompute("rmsNorm")
    }
    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        cannotCompute("adaptiveModulate")
    }
    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        cannotCompute("gatedAdd")
    }
    public func geluTanh(_ x: TensorRef, count: Int) { cannotCompute("geluTanh") }
    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        cannotCompute("geluTanhMul")
    }
    public func silu(_ x: TensorRef, count: Int) { cannotCompute("silu") }
    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) { cannotCompute("add") }
    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) { cannotCompute("addPeriodic") }
    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) { cannotCompute("scale") }
    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) { cannotCompute("roundToBF16") }
    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        cannotCompute("applyRoPE")
    }
    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        cannotCompute("copy")
    }
    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        cannotCompute("embed")
    }
    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) { cannotCompute("patchify") }
    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) { cannotCompute("timeEmbedding") }
    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) { cannotCompute("eulerStep") }
    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        cannotCompute("guideVelocity")
    }
    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) { cannotCompute("checkFinite") }
}
