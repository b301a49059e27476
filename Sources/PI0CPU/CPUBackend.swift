// The fast CPU backend: linear layers on weights packed once into the kernels' panel layout
// (bf16 weights stay bf16 and are widened in the kernel), attention as two threaded matrix products
// per pass (MQA folds the heads into the rows: Q [T·H, D]·Kᵀ, then P [T·H, S]·V), softmax threaded
// over rows. Results agree with `ReferenceBackend` to float32 rounding (tests in PI0CPUTests).
import Dispatch
import Foundation
import PI0Tensor
import CPI0Kernels

final class PackedLinear: PreparedLinear, @unchecked Sendable {
    let weight: PackedWeight
    let bias: [Float]?
    var outFeatures: Int { weight.n }
    var inFeatures: Int { weight.k }
    var byteCount: Int { weight.byteCount + (bias?.count ?? 0) * 4 }
    init(weight: PackedWeight, bias: [Float]?) { self.weight = weight; self.bias = bias }
}

public final class CPUBackend: ComputeBackend, @unchecked Sendable {
    public let threads: Int
    private let lock = NSLock()
    private var scores: UnsafeMutablePointer<Float>?
    private var scoresCapacity = 0

    /// threads <= 0: all cores (or PI0_NUM_THREADS).
    public init(threads: Int = 0) {
        self.threads = threads > 0 ? threads : Threading.defaultThreadCount
    }

    deinit { scores?.deallocate() }

    public var name: String { "cpu (\(CPUFeatures.summary), \(KernelPath.best), \(threads) thread\(threads == 1 ? "" : "s"))" }

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        let (n, k) = try weight.linearShape(bias: bias)
        // bf16×bf16 products round the activations: only allowed when they are bf16 already.
        var path = KernelPath.best
        if path == .avx512bf16 && !(inputsAreBF16 && weight.dtype == .bfloat16) {
            path = KernelPath.usable.contains(.avx512) ? .avx512 : .avx2
        }
        let packed: PackedWeight
        switch weight.dtype {
        case .float32:
            packed = PackedWeight(float32: weight.pointer.assumingMemoryBound(to: Float.self), n: n, k: k, path: path)
        case .bfloat16:
            packed = PackedWeight(bfloat16: weight.pointer.assumingMemoryBound(to: UInt16.self), n: n, k: k, path: path)
        }
        return PackedLinear(weight: packed, bias: bias?.floats())
    }

    public func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let p = w as? PackedLinear else { preconditionFailure("CPUBackend got a foreign PreparedLinear") }
        if let b = p.bias {
            b.withUnsafeBufferPointer { GEMM.linear(x: x, m: rows, ldx: ldx, weight: p.weight, bias: $0.baseAddress, y: y, ldy: ldy, threads: threads) }
        } else {
            GEMM.linear(x: x, m: rows, ldx: ldx, weight: p.weight, bias: nil, y: y, ldy: ldy, threads: threads)
        }
    }

    private func scoreBuffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if scoresCapacity < count {
            scores?.deallocate()
            scores = .allocate(capacity: count)
            scoresCapacity = count
        }
        return scores!
    }

    public func attention(_ a: AttentionArgs) {
        lock.lock(); defer { lock.unlock() }
        let hd = a.headDim, group = a.heads / a.kvHeads
        if !a.roundToBF16 {
            // float32: the kernels' fused MQA (packed GEMMs + vectorised softmax), once per KV head.
            for g in 0..<a.kvHeads {
                Attention.mqa(q: a.q + g * group * hd, k: a.k + g * hd, v: a.v + g * hd, mask: a.mask, out: a.out + g * group * hd,
                              t: a.queries, s: a.keys, heads: group, headDim: hd, scale: a.scale,
                              qStrideT: a.qStride, qStrideH: hd, ldk: a.kStride, ldv: a.vStride, ldMask: a.mask == nil ? nil : a.maskStride,
                              outStrideT: a.outStride, outStrideH: hd, threads: threads)
            }
            return
        }
        // bf16: scores and probabilities are rounded between the products, as PyTorch's bf16 eager attention.
        // MQA with contiguous heads: all heads of all queries are rows of one product.
        if a.kvHeads == 1 && a.qStride == a.heads * hd && a.outStride == a.heads * hd {
            let rows = a.queries * a.heads
            let s = scoreBuffer(rows * a.keys)
            GEMM.matmulABt(a: a.q, m: rows, lda: hd, b: a.k, n: a.keys, ldb: a.kStride, k: hd, alpha: 1, c: s, ldc: a.keys, threads: threads)
            softmaxRows(s, rows: rows, keys: a.keys, args: a) { $0 / a.heads }
            GEMM.matmulAB(a: s, m: rows, lda: a.keys, b: a.v, k: a.keys, ldb: a.vStride, n: hd, alpha: 1, c: a.out, ldc: hd, threads: threads)
            if a.roundToBF16 { BFloat16.round(a.out, count: rows * hd) }
            return
        }
        let s = scoreBuffer(a.queries * a.keys)
        for h in 0..<a.heads {
            let kvh = h / group
            GEMM.matmulABt(a: a.q + h * hd, m: a.queries, lda: a.qStride, b: a.k + kvh * hd, n: a.keys, ldb: a.kStride, k: hd,
                           alpha: 1, c: s, ldc: a.keys, threads: threads)
            softmaxRows(s, rows: a.queries, keys: a.keys, args: a) { $0 }
            GEMM.matmulAB(a: s, m: a.queries, lda: a.keys, b: a.v + kvh * hd, k: a.keys, ldb: a.vStride, n: hd, alpha: 1,
                          c: a.out + h * hd, ldc: a.outStride, threads: threads)
            if a.roundToBF16 { for t in 0..<a.queries { BFloat16.round(a.out + t * a.outStride + h * hd, count: hd) } }
        }
    }

    /// Per row: (bf16-rounded) score·scale + mask, softmax, (bf16-rounded) probabilities, as the reference.
    private func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, keys: Int, args a: AttentionArgs, query: (Int) -> Int) {
        let sp = SendablePointer(s), maskP = SendablePointer(a.mask)
        let parts = min(threads, max(1, rows / 16))
        let queryOf = (0..<rows).map(query)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let r = Threading.split(rows, parts: parts, part: part)
            for row in r {
                let x = sp.value + row * keys
                let mrow = maskP.value.map { $0 + queryOf[row] * a.maskStride }
                for j in 0..<keys {
                    var v = x[j]
                    if a.roundToBF16 { v = BFloat16.round(v) }
                    v *= a.scale
                    if a.roundToBF16 { v = BFloat16.round(v) }
                    if let m = mrow { v += m[j] }
                    x[j] = v
                }
                CPUOps.softmax(x, count: keys)
                if a.roundToBF16 { BFloat16.round(x, count: keys) }
            }
        }
    }
}

// Elementwise operations: vectorised C kernels, rows (or flat ranges) split across the threads.
extension CPUBackend {
    /// Runs body(range) over 0..<count in `threads` chunks of at least `grain` elements.
    func parallel(_ count: Int, grain: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count / max(grain, 1)))
        if parts == 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: parts) { body(Threading.split(count, parts: parts, part: $0)) }
    }

    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float], eps: Float,
                          out: UnsafeMutablePointer<Float>) {
        let xp = SendablePointer(x), op = SendablePointer(out)
        parallel(rows, grain: 8) { r in
            weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
                pi0e_layernorm(xp.value + r.lowerBound * width, r.count, width, w.baseAddress, b.baseAddress, eps,
                               op.value + r.lowerBound * width)
            } }
        }
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, roundToBF16: Bool,
                        out: UnsafeMutablePointer<Float>) {
        let xp = SendablePointer(x), op = SendablePointer(out)
        parallel(rows, grain: 8) { r in
            weight.withUnsafeBufferPointer { w in
                pi0e_rmsnorm(xp.value + r.lowerBound * width, r.count, width, w.baseAddress, eps, roundToBF16 ? 1 : 0,
                             op.value + r.lowerBound * width)
            }
        }
    }

    public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let xp = SendablePointer(x)
        parallel(count, grain: 1 << 14) { r in pi0e_gelu_tanh(xp.value + r.lowerBound, r.count) }
    }

    public func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int, ldIn: Int,
                            roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let g = SendablePointer(gate), u = SendablePointer(up), o = SendablePointer(out)
        parallel(rows, grain: max(1, (1 << 14) / max(width, 1))) { r in
            for row in r {
                pi0e_gelu_tanh_mul(g.value + row * ldIn, u.value + row * ldIn, o.value + row * ldOut, width, roundToBF16 ? 1 : 0)
            }
        }
    }

    public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let xp = SendablePointer(x)
        parallel(count, grain: 1 << 14) { r in pi0e_silu(xp.value + r.lowerBound, r.count) }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        let xp = SendablePointer(x), yp = SendablePointer(y)
        parallel(count, grain: 1 << 15) { r in pi0e_add(xp.value + r.lowerBound, yp.value + r.lowerBound, r.count, roundToBF16 ? 1 : 0) }
    }
}
