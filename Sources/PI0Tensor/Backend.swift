// The interface between the model and whatever executes it.
//
// The model (target PI0) is written once against `ComputeBackend`. A backend owns the expensive
// kernels (linear layers with weights packed once, attention); the elementwise operations have plain
// CPU implementations in `ReferenceOps` that CPU backends share through the protocol extension below.
// Notation: M rows, K input features, N output features, T queries, S keys, H heads, D head dim.

/// A linear layer's weights prepared (packed) by a backend: y = x·Wᵀ + b with W stored [N, K].
public protocol PreparedLinear: AnyObject, Sendable {
    var outFeatures: Int { get }
    var inFeatures: Int { get }
    /// Bytes held by the prepared form (packed copy), for memory reports.
    var byteCount: Int { get }
}

/// Scaled dot-product attention over one batch row, all heads at once.
///
/// Queries `q`: T tokens, each `heads × headDim` floats (head h at offset h·headDim), token stride
/// `qStride`. Keys/values: S tokens, each `kvHeads × headDim` floats, token strides `kStride`/`vStride`;
/// query head h reads kv head `h / (heads / kvHeads)` (MQA when kvHeads = 1). Optional additive mask
/// [T, S] (row stride `maskStride`), added after scaling, as LeRobot/transformers' eager attention does.
/// Output: T tokens × heads·headDim at stride `outStride`.
public struct AttentionArgs: @unchecked Sendable {
    public var q: UnsafePointer<Float>, qStride: Int
    public var k: UnsafePointer<Float>, kStride: Int
    public var v: UnsafePointer<Float>, vStride: Int
    public var mask: UnsafePointer<Float>?, maskStride: Int
    public var out: UnsafeMutablePointer<Float>, outStride: Int
    public var queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    public var scale: Float
    /// bf16 data path: scores (q·kᵀ) and probabilities are rounded to bf16 and so is the output,
    /// as a bf16 eager attention in PyTorch does (docs/SPEC.md §7).
    public var roundToBF16: Bool

    public init(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int,
                v: UnsafePointer<Float>, vStride: Int, mask: UnsafePointer<Float>?, maskStride: Int,
                out: UnsafeMutablePointer<Float>, outStride: Int, queries: Int, keys: Int,
                heads: Int, kvHeads: Int, headDim: Int, scale: Float, roundToBF16: Bool) {
        self.q = q; self.qStride = qStride; self.k = k; self.kStride = kStride
        self.v = v; self.vStride = vStride; self.mask = mask; self.maskStride = maskStride
        self.out = out; self.outStride = outStride; self.queries = queries; self.keys = keys
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.scale = scale; self.roundToBF16 = roundToBF16
    }
}

public protocol ComputeBackend: AnyObject, Sendable {
    /// Human-readable name, e.g. "reference" or "cpu (avx2+fma, 2 threads)".
    var name: String { get }
    /// Packs W [N, K] (and bias [N]) once, at load. `inputsAreBF16`: the caller guarantees every input
    /// row is bf16-representable (bf16 mode), so bf16×bf16 products (e.g. `vdpbf16ps`) are exact.
    func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear
    /// y[m, n] = Σ_k x[m, k]·W[n, k] + b[n] for m < rows. Row strides `ldx`, `ldy` in floats.
    func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                y: UnsafeMutablePointer<Float>, ldy: Int)
    func attention(_ a: AttentionArgs)

    // Elementwise and normalisation operations; the defaults (protocol extension) are `ReferenceOps`.
    func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float], eps: Float,
                   out: UnsafeMutablePointer<Float>)
    func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, roundToBF16: Bool,
                 out: UnsafeMutablePointer<Float>)
    func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int)
    func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int, ldIn: Int,
                     roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int)
    func silu(_ x: UnsafeMutablePointer<Float>, count: Int)
    func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool)
    /// Rounds x[r·ld + i] (r < rows, i < width) to bf16 in place: a bf16 layer's output.
    func roundToBF16(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int)
}

/// Errors a backend raises when it cannot run.
public enum BackendError: Error, CustomStringConvertible, Equatable {
    case unavailable(backend: String, reason: String)
    case unsupportedWeight(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unavailable(b, r): return "backend \(b) is unavailable: \(r)"
        case let .unsupportedWeight(n, r): return "weight \(n) cannot be prepared: \(r)"
        }
    }
}

extension WeightTensor {
    /// (N, K) of a linear weight W [N, K…] (trailing dims flattened, e.g. a conv kernel), checking that
    /// the bias, if any, has N values. Errors name the tensor.
    public func linearShape(bias: WeightTensor?) throws -> (n: Int, k: Int) {
        guard shape.count >= 2 else {
            throw BackendError.unsupportedWeight(name: name, reason: "expected a matrix, got shape \(shape)")
        }
        let n = shape[0], k = shape.dropFirst().reduce(1, *)
        if let b = bias, b.count != n {
            throw BackendError.unsupportedWeight(name: b.name, reason: "bias has \(b.count) values for \(n) outputs")
        }
        return (n, k)
    }
}

extension ComputeBackend {
    public func roundToBF16(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int) {
        for r in 0..<rows { BFloat16.round(x + r * ld, count: width) }
    }
    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float], eps: Float,
                          out: UnsafeMutablePointer<Float>) {
        ReferenceOps.layerNorm(x, rows: rows, width: width, weight: weight, bias: bias, eps: eps, out: out)
    }
    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, roundToBF16: Bool,
                        out: UnsafeMutablePointer<Float>) {
        ReferenceOps.rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: out)
    }
    public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) { ReferenceOps.geluTanh(x, count: count) }
    public func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int, ldIn: Int,
                            roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        ReferenceOps.geluTanhMul(gate: gate, up: up, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16, out: out, ldOut: ldOut)
    }
    public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) { ReferenceOps.silu(x, count: count) }
    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        ReferenceOps.add(x, y, count: count, roundToBF16: roundToBF16)
    }

    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?) throws -> PreparedLinear {
        try prepareLinear(weight, bias: bias, inputsAreBF16: false)
    }

    /// Convenience: x and y as whole tensors [rows, K] -> [rows, N].
    public func linear(_ w: PreparedLinear, _ x: Tensor, into y: Tensor) {
        let rows = x.count / w.inFeatures
        precondition(x.count == rows * w.inFeatures && y.capacity >= rows * w.outFeatures,
                     "linear: x \(x.shape) does not fit \(w.inFeatures)->\(w.outFeatures)")
        linear(w, x: x.data, rows: rows, ldx: w.inFeatures, y: y.data, ldy: w.outFeatures)
    }
}
