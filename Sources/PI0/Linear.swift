// A linear layer bound to a backend: y = x·Wᵀ + b, optionally rounding its output to bf16
// (a bf16 `nn.Linear` in PyTorch accumulates in float32 and rounds the result once).
import PI0Tensor

struct Linear: @unchecked Sendable {
    let prepared: PreparedLinear
    let backend: ComputeBackend
    let roundToBF16: Bool

    var inFeatures: Int { prepared.inFeatures }
    var outFeatures: Int { prepared.outFeatures }

    init(prepared: PreparedLinear, backend: ComputeBackend, roundToBF16: Bool) {
        self.prepared = prepared; self.backend = backend; self.roundToBF16 = roundToBF16
    }

    /// Loads `name.weight` (+ `name.bias`) from `scope`; in bf16 mode (`bf16Weights`) the weight is
    /// rounded to bf16 first, as LeRobot's `.to(torch.bfloat16)` would do to a float32 checkpoint.
    /// `role`: the weight's role when it is not a plain linear layer (see `WeightScope.linear`).
    init(_ scope: WeightScope, _ name: String, out: Int, in inFeatures: Int, bias: Bool,
         backend: ComputeBackend, bf16: Bool, role: CheckpointTensor.Role? = nil, hint: String = "") throws {
        try self.init(scope, fusing: [(name, out, hint)], in: inFeatures, bias: bias, backend: backend, bf16: bf16, role: role)
    }

    /// Several layers over the same input fused into one product (K|V, gate|up): `parts` (name, out
    /// features, hint) in output order, each still declared and checked under its own checkpoint key.
    /// Exact: each output is the same dot product it would be alone.
    init(_ scope: WeightScope, fusing parts: [(name: String, out: Int, hint: String)], in inFeatures: Int, bias: Bool,
         backend: ComputeBackend, bf16: Bool, role: CheckpointTensor.Role? = nil) throws {
        var weights: [WeightTensor] = [], biases: [WeightTensor?] = []
        for part in parts {
            var (w, b) = try scope.linear(part.name, out: part.out, in: inFeatures, bias: bias, role: role, hint: part.hint)
            if bf16, w.dtype == .float32 {
                w = WeightTensor(name: w.name, shape: w.shape, floats: w.floats().map(BFloat16.round), dtype: .bfloat16)
            }
            if let bb = b, bb.dtype != .float32 { b = bb.toFloat32() }
            weights.append(w); biases.append(b)
        }
        prepared = try backend.prepareLinear(weights, biases: biases, inputsAreBF16: bf16)
        // The packed copy is what runs; drop the mapped source pages now so that loading never holds
        // the checkpoint twice (they are re-read from the file if anything touches them again).
        weights.forEach { scope.release($0) }
        self.backend = backend
        self.roundToBF16 = bf16
    }

    /// This layer as a product of `ComputeBackend.rmsNormLinear` writing y at row stride `outFeatures`
    /// (`roundOutput` then does what `callAsFunction` does after its product).
    func product(into y: TensorRef) -> NormedProduct { NormedProduct(linear: prepared, y: y, ldy: outFeatures) }
    func roundOutput(_ y: TensorRef, rows: Int) {
        if roundToBF16 { backend.roundToBF16(y, rows: rows, width: outFeatures, ld: outFeatures) }
    }

    /// x: [rows, in] (stride ldx) -> y: [rows, out] (stride ldy), backend tensors.
    func callAsFunction(_ x: TensorRef, rows: Int, ldx: Int? = nil, into y: TensorRef, ldy: Int? = nil) {
        let ldy = ldy ?? outFeatures
        backend.linear(prepared, x: x, rows: rows, ldx: ldx ?? inFeatures, y: y, ldy: ldy)
        if roundToBF16 { backend.roundToBF16(y, rows: rows, width: outFeatures, ld: ldy) }
    }
}
