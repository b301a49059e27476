// Backend storage in host memory, shared by the backends that compute on the CPU (reference, cpu):
// a 64-byte aligned float32 buffer behind `BackendStorage`, and the token table they gather from.
// Only backends resolve a `TensorRef` to a pointer; the model never does.

/// Host memory behind a `TensorRef` (reference and cpu backends).
public final class HostStorage: BackendStorage, @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Zero-filled storage for `count` floats.
    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        pointer = raw.assumingMemoryBound(to: Float.self)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

extension TensorRef {
    /// The host address of this position. Only for backends whose storage is `HostStorage`; anything
    /// else is a programming error (a tensor handed to the wrong backend).
    @inline(__always) public var hostPointer: UnsafeMutablePointer<Float> {
        guard let h = storage as? HostStorage else {
            preconditionFailure("a \(type(of: storage)) tensor was given to a host-memory backend")
        }
        precondition(offset >= 0 && offset <= h.count, "tensor offset \(offset) outside storage of \(h.count)")
        return h.pointer + offset
    }
}

/// A token table gathered on the host: the stored weight itself (float32 or bf16, usually memory-mapped).
public final class HostEmbedding: PreparedEmbedding, @unchecked Sendable {
    public let table: WeightTensor
    public let rows: Int, width: Int

    public init(_ table: WeightTensor) throws {
        guard table.shape.count == 2 else {
            throw BackendError.unsupportedWeight(name: table.name, reason: "expected [rows, width], got shape \(table.shape)")
        }
        self.table = table; rows = table.shape[0]; width = table.shape[1]
    }
}

extension ComputeBackend {
    /// Convenience (not a requirement): one weight, inputs not known to be bf16.
    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?) throws -> PreparedLinear {
        try prepareLinear([weight], biases: [bias], inputsAreBF16: false)
    }

    /// Convenience (not a requirement): one weight.
    public func prepareLinear(_ weight: WeightTensor, bias: WeightTensor?, inputsAreBF16: Bool) throws -> PreparedLinear {
        try prepareLinear([weight], biases: [bias], inputsAreBF16: inputsAreBF16)
    }

    /// Convenience (not a requirement): `count` floats from `source` into a new array.
    public func download(_ source: TensorRef, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, n in
            download(source, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            n = count
        }
    }
}

extension AttentionArgs {
    /// The host pointers of an `AttentionCall` on host storage.
    public init(resolving a: AttentionCall) {
        self.init(q: a.q.hostPointer, qStride: a.qStride, k: a.k.hostPointer, kStride: a.kStride,
                  v: a.v.hostPointer, vStride: a.vStride, mask: a.mask.map { UnsafePointer($0.hostPointer) },
                  maskStride: a.maskStride, out: a.out.hostPointer, outStride: a.outStride, queries: a.queries,
                  keys: a.keys, heads: a.heads, kvHeads: a.kvHeads, headDim: a.headDim, scale: a.scale,
                  roundToBF16: a.roundToBF16)
    }
}

/// `AttentionCall` resolved to host pointers: what the host backends' kernels and `ReferenceOps`
/// take (same geometry and semantics).
public struct AttentionArgs: @unchecked Sendable {
    public var q: UnsafePointer<Float>, qStride: Int
    public var k: UnsafePointer<Float>, kStride: Int
    public var v: UnsafePointer<Float>, vStride: Int
    public var mask: UnsafePointer<Float>?, maskStride: Int
    public var out: UnsafeMutablePointer<Float>, outStride: Int
    public var queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
    public var scale: Float
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

extension WeightTensor {
    /// The weights W_i [N_i, K…] stacked along N as one weight [ΣN_i, K] (and the biases as one [ΣN_i],
    /// zeros for a part without one, nil when no part has one): the rows of a fused projection. One part
    /// comes back as it is, without a copy; several are copied (in their common dtype, float32 if they
    /// differ). Errors name the tensor whose shape does not fit.
    public static func stacked(_ weights: [WeightTensor], biases: [WeightTensor?]) throws -> (weight: WeightTensor, bias: WeightTensor?) {
        guard let first = weights.first, weights.count == biases.count else {
            throw BackendError.unsupportedWeight(name: weights.first?.name ?? "(none)", reason: "\(weights.count) weights with \(biases.count) biases")
        }
        if weights.count == 1 { return (first, biases[0]) }   // the backend checks it as before
        let k = try first.linearShape(bias: biases[0]).k
        var rows = 0
        for (w, b) in zip(weights, biases) {
            let (n, kw) = try w.linearShape(bias: b)
            guard kw == k else { throw BackendError.unsupportedWeight(name: w.name, reason: "\(kw) inputs, but \(first.name) has \(k)") }
            rows += n
        }
        let dtype: WeightDType = weights.allSatisfy { $0.dtype == first.dtype } ? first.dtype : .float32
        let name = weights.map(\.name).joined(separator: "+")
        let box = OwnedBytes(byteCount: rows * k * dtype.byteSize)
        var offset = 0
        for w in weights {
            if w.dtype == dtype {
                (box.pointer + offset).copyMemory(from: w.pointer, byteCount: w.count * dtype.byteSize)
            } else {
                let f = w.floats()
                f.withUnsafeBytes { (box.pointer + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            offset += w.count * dtype.byteSize
        }
        let weight = WeightTensor(name: name, shape: [rows, k], dtype: dtype, pointer: UnsafeRawPointer(box.pointer), owner: box)
        guard biases.contains(where: { $0 != nil }) else { return (weight, nil) }
        let bias = zip(weights, biases).flatMap { w, b in b?.floats() ?? [Float](repeating: 0, count: w.shape[0]) }
        return (weight, WeightTensor(name: name + ".bias", shape: [rows], floats: bias))
    }
}
