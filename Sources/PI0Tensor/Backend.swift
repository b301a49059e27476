// The interface between the model and whatever executes it (docs/ARCHITECTURE.md, "Backends").
//
// The model (target PI0) is written once against `ComputeBackend` and computes on tensors the backend
// owns: it allocates them through the backend, passes `TensorRef`s (storage + element offset) to
// operations, and never reads or writes activation memory itself. Host↔backend traffic is explicit:
// `upload` (weights at load, the observation per call) and `download` (the actions, recorded
// intermediates). So the same model runs on host memory (reference, cpu), on a device (cuda) and on a
// test arena that counts every transfer.
//
// The protocol has no default implementations: a backend implements every operation or does not
// compile, so a method whose signature drifts can never fall back silently to another backend.
// Notation: M rows, K input features, N output features, T queries, S keys, H heads, D head dim,
// B batch rows. Every count and stride is in float32 elements.

/// Memory a backend owns (host memory, a device allocation, a test arena). Opaque to the model.
public protocol BackendStorage: AnyObject, Sendable {
    /// Capacity in float32 elements.
    var count: Int { get }
}

/// A position in backend storage: the model's only handle on activation memory.
public struct TensorRef: @unchecked Sendable {
    public let storage: BackendStorage
    public let offset: Int

    public init(storage: BackendStorage, offset: Int = 0) {
        self.storage = storage; self.offset = offset
    }

    /// The position `n` elements further on (the model's only "pointer arithmetic").
    @inline(__always) public static func + (r: TensorRef, n: Int) -> TensorRef {
        TensorRef(storage: r.storage, offset: r.offset + n)
    }
}

/// A tensor in backend storage: a shape over storage the backend allocated (zero-filled).
public final class DeviceTensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let storage: BackendStorage

    public init(shape: [Int], backend: ComputeBackend) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        storage = backend.allocate(count: max(shape.reduce(1, *), 1))
    }

    /// A tensor holding `values`, uploaded once (weights and constants at load).
    public convenience init(shape: [Int], uploading values: [Float], backend: ComputeBackend) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape, backend: backend)
        values.withUnsafeBufferPointer { backend.upload($0, to: ref) }
    }

    public var ref: TensorRef { TensorRef(storage: storage, offset: 0) }
    public var count: Int { shape.reduce(1, *) }
    public var capacity: Int { storage.count }

    /// Reinterprets the same storage with another shape of equal or smaller element count.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) <= capacity, "reshape \(shape) -> \(newShape) exceeds capacity \(capacity)")
        shape = newShape
    }

    /// `ref + n`.
    @inline(__always) public static func + (t: DeviceTensor, n: Int) -> TensorRef { t.ref + n }
}

/// A linear layer's weights prepared (packed, uploaded) by a backend: y = x·Wᵀ + b with W stored [N, K].
public protocol PreparedLinear: AnyObject, Sendable {
    var outFeatures: Int { get }
    var inFeatures: Int { get }
    /// Bytes held by the prepared form (packed copy), for memory reports.
    var byteCount: Int { get }
}

/// A token embedding table [rows, width] prepared by a backend (rows are gathered, never multiplied).
public protocol PreparedEmbedding: AnyObject, Sendable {
    var rows: Int { get }
    var width: Int { get }
}

/// Scaled dot-product attention over one batch row, all heads at once, on backend tensors (the
/// geometry of `AttentionArgs`, which host backends receive after resolving the references).
///
/// Queries `q`: T tokens, each `heads × headDim` floats (head h at offset h·headDim), token stride
/// `qStride`. Keys/values: S tokens, each `kvHeads × headDim` floats, token strides `kStride`/`vStride`;
/// query head h reads kv head `h / (heads / kvHeads)` (MQA when kvHeads = 1). Optional additive mask
/// [T, S] (row stride `maskStride`), added after scaling, as LeRobot/transformers' eager attention does.
/// Output: T tokens × heads·headDim at stride `outStride`. `roundToBF16`: scores, probabilities and the
/// output are rounded to bf16 as a bf16 eager attention in PyTorch does (docs/SPEC.md §7).
public struct AttentionCall: @unchecked Sendable {
    public var q: TensorRef, qStride: Int
    public var k: TensorRef, kStride: Int
    public var v: TensorRef, vStride: Int
    public var mask: TensorRef?, maskStride: Int
    public var out: TensorRef, outStride: Int
    public var queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    public var scale: Float
    public var roundToBF16: Bool

    public init(q: TensorRef, qStride: Int, k: TensorRef, kStride: Int, v: TensorRef, vStride: Int,
                mask: TensorRef?, maskStride: Int, out: TensorRef, outStride: Int, queries: Int, keys: Int,
                heads: Int, kvHeads: Int, headDim: Int, scale: Float, roundToBF16: Bool) {
        self.q = q; self.qStride = qStride; self.k = k; self.kStride = kStride
        self.v = v; self.vStride = vStride; self.mask = mask; self.maskStride = maskStride
        self.out = out; self.outStride = outStride; self.queries = queries; self.keys = keys
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.scale = scale; self.roundToBF16 = roundToBF16
    }
}

/// One product of `rmsNormLinear`: y = normed·Wᵀ + b, `rows` rows at row stride `ldy`.
public struct NormedProduct: @unchecked Sendable {
    public var linear: PreparedLinear
    public var y: TensorRef
    public var ldy: Int

    public init(linear: PreparedLinear, y: TensorRef, ldy: Int) { self.linear = linear; self.y = y; self.ldy = ldy }
}

/// Every requirement has a row in the op-conformance table (Tests/PI0TestSupport/OpConformanceTable.swift);
/// Tests/PI0CPUTests/BackendConformanceTests.swift reads this declaration to check that: add the row with the requirement.
public protocol ComputeBackend: TensorUploading, Sendable {
    /// Human-readable name, e.g. "reference" or "cpu (avx2+fma, 2 threads)".
    var name: String { get }

    // MARK: Memory and transfers

    /// Zero-filled storage for `count` floats.
    func allocate(count: Int) -> BackendStorage
    /// Host → backend: `source.count` floats into `destination`.
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: TensorRef)
    /// Backend → host: `destination.count` floats from `source` (waits for pending work).
    func download(_ source: TensorRef, into destination: UnsafeMutableBufferPointer<Float>)
    /// Waits until every operation issued so far has finished.
    func synchronize()

    // MARK: Weights (load time)

    /// Packs the weights W_i [N_i, K…] (and biases [N_i]) once, stacked along N into one product: a fused
    /// projection (K|V, gate|up) whose outputs come in the order given; one weight is a plain linear layer
    /// (`WeightTensor.stacked` does the stacking for backends that need the rows in one place).
    /// `inputsAreBF16`: the caller guarantees every input row is bf16-representable (bf16 mode), so
    /// bf16×bf16 products (e.g. `vdpbf16ps`) are exact.
    func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear
    /// Makes a token embedding table [rows, width] (kept in its stored dtype) available to `embed`.
    func prepareEmbedding(_ table: WeightTensor) throws -> PreparedEmbedding

    // MARK: Products

    /// y[m, n] = Σ_k x[m, k]·W[n, k] + b[n] for m < rows. Row strides `ldx`, `ldy`.
    func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int)
    func attention(_ a: AttentionCall)

    // MARK: Normalisation

    /// LayerNorm of `rows` rows of `width` (contiguous) with affine weight and bias [width].
    func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef)
    /// Gemma RMSNorm: x̂·(1 + w) in float32, then bf16 when asked. `weight` nil: w = 0 (x̂ alone, the
    /// adaptive norm's first half).
    func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef)
    /// `rmsNorm` into `normed` [rows, width], then the products that read it: exactly
    /// `linear(p.linear, x: normed, rows: rows, ldx: width, y: p.y, ldy: p.ldy)` for `first`, then for
    /// `second` when given (a Gemma layer's K|V and Q, or gate|up). A backend may fuse the norm into the
    /// products' operand (cuda: the norm kernel writes the bf16 GEMM operand once for both products);
    /// every output, `normed` included, must be bit-identical to that backend's own composition.
    func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                       _ first: NormedProduct, _ second: NormedProduct?)
    /// π0.5 adaptive RMSNorm's second half, in place on x̂ [B·T, W]: x̂·(1 + scale) + shift, with
    /// modulation [B, 3W] = scale | shift | gate (row r uses batch row r / T).
    func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool)
    /// The gated residual x ← x + y·gate, gate = modulation[b, 2W..<3W] (AdaptiveRMSNorm in PI0).
    func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool)

    // MARK: Elementwise

    func geluTanh(_ x: TensorRef, count: Int)
    /// out[r] = gelu_tanh(gate[r])·up[r] for `rows` rows of `width` (row strides ldIn / ldOut).
    func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int)
    func silu(_ x: TensorRef, count: Int)
    /// x ← x + y (each sum rounded to bf16 when asked).
    func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool)
    /// x[i] ← x[i] + y[i mod period] for i < count (a position embedding added to every image).
    func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int)
    /// x[i] ← x[i]·scale (rounded to bf16 when asked).
    func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool)
    /// Rounds x[r·ld + i] (r < rows, i < width) to bf16 in place: a bf16 layer's output.
    func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int)

    // MARK: Positions, gathers and copies

    /// Rotary embedding in place on `rows` rows (row stride `stride`) of `heads` heads of `headDim`;
    /// row r uses cos/sin row r of [rows, headDim] tables (docs/SPEC.md §4, "RoPE").
    func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool)
    /// dst[r·dstStride + i] = src[r·srcStride + i] for r < rows, i < width; `srcStride` 0 broadcasts one row.
    func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int)
    /// out[j] = table[ids[j]]·scale for j < count (row stride `ldOut`); ids are float32 holding exact
    /// integers (< 2²⁴); each product rounded to bf16 when asked.
    func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int)
    /// im2col of `count` images [3, side, side]: patch (gy, gx) of image i → row i·G² + gy·G + gx of
    /// `out`, ordered (c, ky, kx), G = side / patch.
    func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef)

    // MARK: Flow matching

    /// Sinusoidal time embedding of t (width floats), computed in float64 and cast to float32
    /// (`FlowMatching` in PI0 has the formula).
    func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef)
    /// x ← x + dt·v in float32.
    func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float)
    /// Real-time chunking's guidance on rows [B·H] of `width` (docs/RTC.md): for a row of weight w ≠ 0,
    /// x1 = x − t·v, err = (target − x1)·w, v ← v − guidance·err; a row of weight 0 is left untouched.
    func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                       t: Float, guidance: Float)
    /// Scans `count` floats; writes [1, first index, its value] into status[0..<3] if any is NaN or
    /// ±inf, else [0, 0, 0]. Issues no transfer: the caller downloads the status with the results.
    func checkFinite(_ x: TensorRef, count: Int, status: TensorRef)
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

/// Work recorded by a `GraphCapturing` backend, replayable without re-issuing its operations.
public protocol CapturedWork: AnyObject, Sendable {}

/// A backend that can record a sequence of operations once and replay it (CUDA graphs). The model
/// never sees this: `PI0Runtime` captures a sampling plan's `enqueue` and replays it for every later
/// observation of the same shape. During capture the backend must not allocate and must not transfer.
public protocol GraphCapturing: ComputeBackend {
    /// Records every operation `body` issues (nothing runs yet) and returns the replayable work.
    func capture(_ body: () throws -> Void) throws -> CapturedWork
    /// Runs captured work (asynchronously: a later `download` or `synchronize` waits for it).
    func replay(_ work: CapturedWork) throws
}
