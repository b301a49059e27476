// A compute backend that runs another one and adds up the wall time of every call, per operation:
// what `pi0 bench --profile` prints. Linear layers are keyed by their shape (rows × in → out), so the
// VLM's, SigLIP's and the action expert's products show up separately; attention by its geometry; every
// other operation (norms, activations, RoPE, gathers, copies, the Euler step, transfers) by its name.
//
// The model does not know it is being profiled (it only sees a `ComputeBackend`), and since everything
// the model computes is a backend operation, the listed times add up to the compute; what is left of a
// stage is host-side bookkeeping. Each operation is followed by `synchronize()` inside its timed span, so
// an asynchronous backend (cuda) is charged for its work, not for queueing it; a host backend's
// `synchronize` does nothing. Weight preparation is not profiled (load time). Profiling builds a key
// string per call, so the denoise loop allocates while it is on; it changes no result (every call is
// forwarded unchanged). It is not `GraphCapturing`: a profiled run executes eagerly, operation by operation.
import Foundation

public final class ProfilingBackend: ComputeBackend, @unchecked Sendable {
    /// One operation's totals since the last `reset()`.
    public struct Entry: Sendable, Equatable {
        public var calls = 0
        public var seconds = 0.0
        /// Floating-point operations (2·M·N·K for linear layers, 4·T·S·H·D for attention; 0 for the rest).
        public var flops = 0.0
    }

    public let inner: ComputeBackend
    private var entries: [String: Entry] = [:]
    private let lock = NSLock()

    public init(wrapping inner: ComputeBackend) { self.inner = inner }

    public var name: String { inner.name }

    /// Forgets everything recorded so far (e.g. after a warm-up run).
    public func reset() { lock.withLock { entries = [:] } }

    /// The recorded operations, most time first.
    public func snapshot() -> [(op: String, entry: Entry)] {
        lock.withLock { entries.map { (op: $0.key, entry: $0.value) } }
            .sorted { $0.entry.seconds != $1.entry.seconds ? $0.entry.seconds > $1.entry.seconds : $0.op < $1.op }
    }

    /// Runs `body` and the inner backend's `synchronize()`, and charges the time to `op`.
    private func timed(_ op: String, flops: Double = 0, _ body: () -> Void) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        inner.synchronize()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        lock.withLock {
            entries[op, default: Entry()].calls += 1
            entries[op, default: Entry()].seconds += seconds
            entries[op, default: Entry()].flops += flops
        }
    }

    // MARK: Memory and transfers

    public func allocate(count: Int) -> BackendStorage {
        var storage: BackendStorage?
        timed("allocate") { storage = inner.allocate(count: count) }
        return storage!
    }
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef) {
        timed("upload") { inner.upload(source, to: destination) }
    }
    public func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>) {
        timed("download") { inner.download(source, into: destination) }
    }
    public func synchronize() { timed("synchronize") {} }

    // MARK: Weights (load time, not profiled)

    public func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        try inner.prepareLinear(weights, biases: biases, inputsAreBF16: inputsAreBF16)
    }
    public func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding { try inner.prepareEmbedding(table) }

    // MARK: Products

    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) {
        timed("linear \(rows)×\(w.inFeatures)→\(w.outFeatures)", flops: 2 * Double(rows) * Double(w.inFeatures) * Double(w.outFeatures)) {
            inner.linear(w, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy)
        }
    }
    public func attention(_ a: AttentionCall) {
        timed("attention \(a.queries)×\(a.keys) heads \(a.heads)/\(a.kvHeads) dim \(a.headDim)",
              flops: 4 * Double(a.queries) * Double(a.keys) * Double(a.heads) * Double(a.headDim)) { inner.attention(a) }
    }

    // MARK: Normalisation

    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        timed("layerNorm") { inner.layerNorm(x, rows: rows, width: width, weight: weight, bias: bias, eps: eps, out: out) }
    }
    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        timed("rmsNorm") { inner.rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: out) }
    }
    /// One timed entry for the fused call (forwarded unchanged, so a backend that fuses keeps fusing):
    /// "rmsNormLinear R×K→N1|N2" (the out features of each product).
    public func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                              _ first: NormedProduct, _ second: NormedProduct?) {
        let n = first.linear.outFeatures + (second?.linear.outFeatures ?? 0)
        let outs = [first.linear.outFeatures] + (second.map { [$0.linear.outFeatures] } ?? [])
        timed("rmsNormLinear \(rows)×\(width)→\(outs.map(String.init).joined(separator: "|"))", flops: 2 * Double(rows) * Double(width) * Double(n)) {
            inner.rmsNormLinear(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, normed: normed, first, second)
        }
    }
    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        timed("adaptiveModulate") {
            inner.adaptiveModulate(x, batch: batch, tokens: tokens, width: width, modulation: modulation, roundToBF16: roundToBF16)
        }
    }
    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        timed("gatedAdd") {
            inner.gatedAdd(x, y, batch: batch, tokens: tokens, width: width, modulation: modulation, roundToBF16: roundToBF16)
        }
    }

    // MARK: Elementwise

    public func geluTanh(_ x: TensorRef, count: Int) { timed("geluTanh") { inner.geluTanh(x, count: count) } }
    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        timed("geluTanhMul") {
            inner.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16, out: out, ldOut: ldOut)
        }
    }
    public func silu(_ x: TensorRef, count: Int) { timed("silu") { inner.silu(x, count: count) } }
    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        timed("add") { inner.add(x, y, count: count, roundToBF16: roundToBF16) }
    }
    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) {
        timed("addPeriodic") { inner.addPeriodic(x, y, count: count, period: period) }
    }
    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) {
        timed("scale") { inner.scale(x, count: count, by: scale, roundToBF16: roundToBF16) }
    }
    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        timed("roundToBF16") { inner.roundToBF16(x, rows: rows, width: width, ld: ld) }
    }

    // MARK: Positions, gathers and copies

    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        timed("applyRoPE") {
            inner.applyRoPE(x, rows: rows, heads: heads, headDim: headDim, stride: stride, cos: cos, sin: sin, roundToBF16: roundToBF16)
        }
    }
    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        timed("copy") {
            inner.copy(source, sourceStride: sourceStride, to: destination, destinationStride: destinationStride, rows: rows, width: width)
        }
    }
    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        timed("embed") { inner.embed(table, ids: ids, count: count, scale: scale, roundToBF16: roundToBF16, out: out, ldOut: ldOut) }
    }
    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) {
        timed("patchify") { inner.patchify(images, count: count, side: side, patch: patch, out: out) }
    }

    // MARK: Flow matching

    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) {
        timed("timeEmbedding") { inner.timeEmbedding(t: t, width: width, minPeriod: minPeriod, maxPeriod: maxPeriod, out: out) }
    }
    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) {
        timed("eulerStep") { inner.eulerStep(x, velocity: velocity, count: count, dt: dt) }
    }
    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        timed("guideVelocity") {
            inner.guideVelocity(x: x, velocity: velocity, target: target, weights: weights, rows: rows, width: width, t: t, guidance: guidance)
        }
    }
    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) {
        timed("checkFinite") { inner.checkFinite(x, count: count, status: status) }
    }
}
