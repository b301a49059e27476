// A compute backend that runs another one and adds up the wall time of every call, per operation:
// what `pi0 bench --profile` prints. Linear layers are keyed by their shape (rows × in → out), so the
// VLM's, SigLIP's and the action expert's products show up separately; attention by its geometry.
//
// The model does not know it is being profiled (it only sees a `ComputeBackend`). What the model does
// outside the backend (RoPE, embedding lookups, the Euler update, im2col) is not listed: it is the
// stage time minus the listed operations. Profiling builds a key string per call, so the denoise loop
// allocates while it is on; it changes no result (every call is forwarded unchanged).
import Foundation
import PI0Tensor

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

    private func timed(_ op: String, flops: Double = 0, _ body: () -> Void) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        lock.withLock {
            entries[op, default: Entry()].calls += 1
            entries[op, default: Entry()].seconds += seconds
            entries[op, default: Entry()].flops += flops
        }
    }

    // MARK: ComputeBackend (every call forwarded unchanged)

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        try inner.prepareLinear(weight, bias: bias, inputsAreBF16: inputsAreBF16)   // load time, not profiled
    }

    public func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        timed("linear \(rows)×\(w.inFeatures)→\(w.outFeatures)", flops: 2 * Double(rows) * Double(w.inFeatures) * Double(w.outFeatures)) {
            inner.linear(w, x: x, rows: rows, ldx: ldx, y: y, ldy: ldy)
        }
    }

    public func attention(_ a: AttentionArgs) {
        timed("attention \(a.queries)×\(a.keys) heads \(a.heads)/\(a.kvHeads) dim \(a.headDim)",
              flops: 4 * Double(a.queries) * Double(a.keys) * Double(a.heads) * Double(a.headDim)) { inner.attention(a) }
    }

    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float], eps: Float,
                          out: UnsafeMutablePointer<Float>) {
        timed("layerNorm") { inner.layerNorm(x, rows: rows, width: width, weight: weight, bias: bias, eps: eps, out: out) }
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, roundToBF16: Bool,
                        out: UnsafeMutablePointer<Float>) {
        timed("rmsNorm") { inner.rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: out) }
    }

    public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        timed("geluTanh") { inner.geluTanh(x, count: count) }
    }

    public func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int, ldIn: Int,
                            roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        timed("geluTanhMul") {
            inner.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16, out: out, ldOut: ldOut)
        }
    }

    public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        timed("silu") { inner.silu(x, count: count) }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        timed("add") { inner.add(x, y, count: count, roundToBF16: roundToBF16) }
    }

    public func roundToBF16(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int) {
        timed("roundToBF16") { inner.roundToBF16(x, rows: rows, width: width, ld: ld) }
    }
}
