// The base of the backends that compute in host memory (reference, cpu): `HostStorage` tensors, and
// every operation in its plain form from `ReferenceOps` (triple loops with float32 accumulation in index
// order for the products). `ReferenceBackend` is exactly this; `CPUBackend` overrides the operations it
// has fast kernels for. The protocol itself has no defaults: a backend that is not a `HostBackend`
// implements every operation, and an `override` whose signature drifts does not compile.

open class HostBackend: ComputeBackend, @unchecked Sendable {
    public init() {}
    open var name: String { "host" }

    // MARK: Memory (host)

    open func allocate(count: Int) -> BackendStorage { HostStorage(count: count) }
    open func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        guard let base = source.baseAddress else { return }
        destination.hostPointer.update(from: base, count: source.count)
    }
    open func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        guard let base = destination.baseAddress else { return }
        base.update(from: source.hostPointer, count: destination.count)
    }
    open func synchronize() {}

    // MARK: Weights

    open func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        let (weight, bias) = try WeightTensor.stacked(weights, biases: biases)
        return try PlainLinear(weight, bias: bias)
    }
    open func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding { try HostEmbedding(table) }

    // MARK: Products

    open func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) {
        linear(w, x: x.hostPointer, rows: rows, ldx: ldx, y: y.hostPointer, ldy: ldy)
    }

    /// The plain product on host pointers.
    open func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let p = w as? PlainLinear else { preconditionFailure("\(name) got a foreign PreparedLinear") }
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

    open func attention(_ a: AttentionCall) { ReferenceOps.referenceAttention(AttentionArgs(resolving: a)) }

    // MARK: Normalisation

    open func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        ReferenceOps.layerNorm(x.hostPointer, rows: rows, width: width, weight: weight.hostPointer, bias: bias.hostPointer,
                               eps: eps, out: out.hostPointer)
    }
    open func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        ReferenceOps.rmsNorm(x.hostPointer, rows: rows, width: width, weight: weight.map { UnsafePointer($0.hostPointer) },
                             eps: eps, roundToBF16: roundToBF16, out: out.hostPointer)
    }
    /// The plain composition (the cpu backend inherits it: its own rmsNorm and linear, nothing more).
    open func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                            _ first: NormedProduct, _ second: NormedProduct?) {
        rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: normed)
        linear(first.linear, x: normed, rows: rows, ldx: width, y: first.y, ldy: first.ldy)
        if let second { linear(second.linear, x: normed, rows: rows, ldx: width, y: second.y, ldy: second.ldy) }
    }
    open func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        ReferenceOps.adaptiveModulate(x.hostPointer, batch: batch, tokens: tokens, width: width,
                                      modulation: modulation.hostPointer, roundToBF16: roundToBF16)
    }
    open func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        ReferenceOps.gatedAdd(x.hostPointer, y.hostPointer, batch: batch, tokens: tokens, width: width,
                              modulation: modulation.hostPointer, roundToBF16: roundToBF16)
    }

    // MARK: Elementwise

    open func geluTanh(_ x: TensorRef, count: Int) { ReferenceOps.geluTanh(x.hostPointer, count: count) }
    open func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        ReferenceOps.geluTanhMul(gate: gate.hostPointer, up: up.hostPointer, rows: rows, width: width, ldIn: ldIn,
                                 roundToBF16: roundToBF16, out: out.hostPointer, ldOut: ldOut)
    }
    open func silu(_ x: TensorRef, count: Int) { ReferenceOps.silu(x.hostPointer, count: count) }
    open func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        ReferenceOps.add(x.hostPointer, y.hostPointer, count: count, roundToBF16: roundToBF16)
    }
    open func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) {
        ReferenceOps.addPeriodic(x.hostPointer, y.hostPointer, count: count, period: period)
    }
    open func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) {
        ReferenceOps.scale(x.hostPointer, count: count, by: scale, roundToBF16: roundToBF16)
    }
    open func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        ReferenceOps.roundToBF16(x.hostPointer, rows: rows, width: width, ld: ld)
    }

    // MARK: Positions, gathers and copies

    open func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        ReferenceOps.applyRoPE(x.hostPointer, tokens: rows, heads: heads, headDim: headDim, stride: stride,
                               cos: cos.hostPointer, sin: sin.hostPointer, roundToBF16: roundToBF16)
    }
    open func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        ReferenceOps.copy(source.hostPointer, sourceStride: sourceStride, to: destination.hostPointer,
                          destinationStride: destinationStride, rows: rows, width: width)
    }
    open func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard let t = table as? HostEmbedding else { preconditionFailure("\(name) got a foreign PreparedEmbedding") }
        ReferenceOps.embed(t.table, ids: ids.hostPointer, count: count, scale: scale, roundToBF16: roundToBF16,
                           out: out.hostPointer, ldOut: ldOut)
    }
    open func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) {
        ReferenceOps.patchify(images.hostPointer, count: count, side: side, patch: patch, out: out.hostPointer)
    }

    // MARK: Flow matching

    open func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) {
        ReferenceOps.timeEmbedding(t: t, width: width, minPeriod: minPeriod, maxPeriod: maxPeriod, out: out.hostPointer)
    }
    open func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) {
        ReferenceOps.eulerStep(x.hostPointer, velocity: velocity.hostPointer, count: count, dt: dt)
    }
    open func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        ReferenceOps.guideVelocity(x: x.hostPointer, velocity: velocity.hostPointer, target: target.hostPointer,
                                   weights: weights.hostPointer, rows: rows, width: width, t: t, guidance: guidance)
    }
    open func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) {
        ReferenceOps.checkFinite(x.hostPointer, count: count, status: status.hostPointer)
    }
}
