// `CPUBackend` as a `ComputeBackend`: tensors live in host memory (`HostStorage`), each operation
// resolves its references to pointers and runs the threaded kernels of CPUBackend.swift. The small
// operations that never showed up in a profile (RoPE, copies, gathers, patching, the time embedding,
// the Euler step, RTC guidance, adaptive-norm modulation, the finite check) run `ReferenceOps` on the
// calling thread; all of them are memory-bound and together take well under 1 % of a sample.
import PI0Tensor

extension CPUBackend: ComputeBackend {
    // MARK: Memory (host)

    public func allocate(count: Int) -> BackendStorage { HostStorage(count: count) }
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        guard let base = source.baseAddress else { return }
        destination.hostPointer.update(from: base, count: source.count)
    }
    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        guard let base = destination.baseAddress else { return }
        base.update(from: source.hostPointer, count: destination.count)
    }
    public func synchronize() {}

    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding { try HostEmbedding(table) }

    // MARK: Products and normalisation

    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) {
        linear(w, x: x.hostPointer, rows: rows, ldx: ldx, y: y.hostPointer, ldy: ldy)
    }
    public func attention(_ a: AttentionCall) { attention(AttentionArgs(resolving: a)) }
    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        layerNorm(x.hostPointer, rows: rows, width: width, weight: weight.hostPointer, bias: bias.hostPointer, eps: eps, out: out.hostPointer)
    }
    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        rmsNorm(x.hostPointer, rows: rows, width: width, weight: weight.map { UnsafePointer($0.hostPointer) }, eps: eps,
                roundToBF16: roundToBF16, out: out.hostPointer)
    }
    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        ReferenceOps.adaptiveModulate(x.hostPointer, batch: batch, tokens: tokens, width: width,
                                      modulation: modulation.hostPointer, roundToBF16: roundToBF16)
    }
    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        ReferenceOps.gatedAdd(x.hostPointer, y.hostPointer, batch: batch, tokens: tokens, width: width,
                              modulation: modulation.hostPointer, roundToBF16: roundToBF16)
    }

    // MARK: Elementwise

    public func geluTanh(_ x: TensorRef, count: Int) { geluTanh(x.hostPointer, count: count) }
    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        geluTanhMul(gate: gate.hostPointer, up: up.hostPointer, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16,
                    out: out.hostPointer, ldOut: ldOut)
    }
    public func silu(_ x: TensorRef, count: Int) { silu(x.hostPointer, count: count) }
    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        add(x.hostPointer, y.hostPointer, count: count, roundToBF16: roundToBF16)
    }
    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) {
        ReferenceOps.addPeriodic(x.hostPointer, y.hostPointer, count: count, period: period)
    }
    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) {
        ReferenceOps.scale(x.hostPointer, count: count, by: scale, roundToBF16: roundToBF16)
    }
    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        roundToBF16(x.hostPointer, rows: rows, width: width, ld: ld)
    }

    // MARK: Positions, gathers and copies

    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        ReferenceOps.applyRoPE(x.hostPointer, tokens: rows, heads: heads, headDim: headDim, stride: stride,
                               cos: cos.hostPointer, sin: sin.hostPointer, roundToBF16: roundToBF16)
    }
    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        ReferenceOps.copy(source.hostPointer, sourceStride: sourceStride, to: destination.hostPointer,
                          destinationStride: destinationStride, rows: rows, width: width)
    }
    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard let t = table as? HostEmbedding else { preconditionFailure("CPUBackend got a foreign PreparedEmbedding") }
        ReferenceOps.embed(t.table, ids: ids.hostPointer, count: count, scale: scale, roundToBF16: roundToBF16,
                           out: out.hostPointer, ldOut: ldOut)
    }
    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) {
        ReferenceOps.patchify(images.hostPointer, count: count, side: side, patch: patch, out: out.hostPointer)
    }

    // MARK: Flow matching

    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) {
        ReferenceOps.timeEmbedding(t: t, width: width, minPeriod: minPeriod, maxPeriod: maxPeriod, out: out.hostPointer)
    }
    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) {
        ReferenceOps.eulerStep(x.hostPointer, velocity: velocity.hostPointer, count: count, dt: dt)
    }
    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        ReferenceOps.guideVelocity(x: x.hostPointer, velocity: velocity.hostPointer, target: target.hostPointer,
                                   weights: weights.hostPointer, rows: rows, width: width, t: t, guidance: guidance)
    }
    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) {
        ReferenceOps.checkFinite(x.hostPointer, count: count, status: status.hostPointer)
    }
}
