// A software "graph" backend for tests: it wraps a host backend and, while capturing, records each
// operation as a closure instead of running it; `replay` runs the recording. It lets the tests check
// `SamplingEngine`'s capture and replay logic (and that a captured sample equals an eager one bit for
// bit) without a GPU, and it fails loudly if anything allocates or transfers while capturing.
import PI0Tensor

final class RecordingBackend: GraphCapturing, @unchecked Sendable {
    final class Recording: CapturedWork, @unchecked Sendable {
        let ops: [() -> Void]
        init(_ ops: [() -> Void]) { self.ops = ops }
    }

    let inner: ComputeBackend
    private var recording: [() -> Void]?
    private(set) var captures = 0, replays = 0, eagerOps = 0, replayedOps = 0
    private(set) var allocations = 0, uploads = 0, downloads = 0

    init(wrapping inner: ComputeBackend) { self.inner = inner }
    var name: String { "recording(\(inner.name))" }

    private func issue(_ op: String, _ body: @escaping () -> Void) {
        if recording != nil { recording!.append(body) } else { eagerOps += 1; body() }
    }
    private func refuseWhileCapturing(_ what: String) {
        precondition(recording == nil, "\(what) while capturing")
    }

    func capture(_ body: () throws -> Void) throws -> CapturedWork {
        recording = []
        defer { recording = nil }
        try body()
        captures += 1
        return Recording(recording!)
    }
    func replay(_ work: CapturedWork) throws {
        guard let r = work as? Recording else { preconditionFailure("foreign captured work") }
        replays += 1; replayedOps += r.ops.count
        for op in r.ops { op() }
    }

    func allocate(count: Int) -> BackendStorage { refuseWhileCapturing("allocate"); allocations += 1; return inner.allocate(count: count) }
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        refuseWhileCapturing("upload"); uploads += 1; inner.upload(source, to: destination)
    }
    func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        refuseWhileCapturing("download"); downloads += 1; inner.download(source, into: destination)
    }
    func synchronize() { refuseWhileCapturing("synchronize"); inner.synchronize() }
    func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        try inner.prepareLinear(weights, biases: biases, inputsAreBF16: inputsAreBF16)
    }
    func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding { try inner.prepareEmbedding(table) }

    func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) { issue("linear") { [inner] in inner.linear(w, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy) } }
    func attention(_ a: AttentionCall) { issue("attention") { [inner] in inner.attention(a) } }
    func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) { issue("layerNorm") { [inner] in inner.layerNorm(x, rows: rows, width: width, weight: weight, bias: bias, eps: eps, out: out) } }
    func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) { issue("rmsNorm") { [inner] in inner.rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: out) } }
    func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                       _ first: NormedProduct, _ second: NormedProduct?) {
        issue("rmsNormLinear") { [inner] in
            inner.rmsNormLinear(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, normed: normed, first, second)
        }
    }
    func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) { issue("adaptiveModulate") { [inner] in inner.adaptiveModulate(x, batch: batch, tokens: tokens, width: width, modulation: modulation, roundToBF16: roundToBF16) } }
    func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) { issue("gatedAdd") { [inner] in inner.gatedAdd(x, y, batch: batch, tokens: tokens, width: width, modulation: modulation, roundToBF16: roundToBF16) } }
    func geluTanh(_ x: TensorRef, count: Int) { issue("geluTanh") { [inner] in inner.geluTanh(x, count: count) } }
    func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) { issue("geluTanhMul") { [inner] in inner.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16, out: out, ldOut: ldOut) } }
    func silu(_ x: TensorRef, count: Int) { issue("silu") { [inner] in inner.silu(x, count: count) } }
    func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) { issue("add") { [inner] in inner.add(x, y, count: count, roundToBF16: roundToBF16) } }
    func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) { issue("addPeriodic") { [inner] in inner.addPeriodic(x, y, count: count, period: period) } }
    func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) { issue("scale") { [inner] in inner.scale(x, count: count, by: scale, roundToBF16: roundToBF16) } }
    func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) { issue("roundToBF16") { [inner] in inner.roundToBF16(x, rows: rows, width: width, ld: ld) } }
    func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) { issue("applyRoPE") { [inner] in inner.applyRoPE(x, rows: rows, heads: heads, headDim: headDim, stride: stride, cos: cos, sin: sin, roundToBF16: roundToBF16) } }
    func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) { issue("copy") { [inner] in inner.copy(source, sourceStride: sourceStride, to: destination, destinationStride: destinationStride, rows: rows, width: width) } }
    func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) { issue("embed") { [inner] in inner.embed(table, ids: ids, count: count, scale: scale, roundToBF16: roundToBF16, out: out, ldOut: ldOut) } }
    func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) { issue("patchify") { [inner] in inner.patchify(images, count: count, side: side, patch: patch, out: out) } }
    func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) { issue("timeEmbedding") { [inner] in inner.timeEmbedding(t: t, width: width, minPeriod: minPeriod, maxPeriod: maxPeriod, out: out) } }
    func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) { issue("eulerStep") { [inner] in inner.eulerStep(x, velocity: velocity, count: count, dt: dt) } }
    func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int, t: Float, guidance: Float) { issue("guideVelocity") { [inner] in inner.guideVelocity(x: x, velocity: velocity, target: target, weights: weights, rows: rows, width: width, t: t, guidance: guidance) } }
    func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) { issue("checkFinite") { [inner] in inner.checkFinite(x, count: count, status: status) } }
}
