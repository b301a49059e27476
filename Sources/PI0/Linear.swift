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
        var (w, b) = try scope.linear(name, out: out, in: inFeatures, bias: bias, role: role, hint: hint)
        if bf16, w.dtype == .float32 {
            w = WeightTensor(name: w.name, shape: w.shape, floats: w.floats().map(BFloat16.round), dtype: .bfloat16)
        }
        if let bb = b, bb.dtype != .float32 { b = bb.toFloat32() }
        prepared = try backend.prepareLinear(w, bias: b, inputsAreBF16: bf16)
        // The packed copy is what runs; drop the mapped source pages now so that loading never holds
        // the checkpoint twice (they are re-read from the file if anything touches them again).
        scope.release(w)
        self.backend = backend
        self.roundToBF16 = bf16
    }

    /// x: [rows, in] (stride ldx) -> y: [rows, out] (stride ldy), backend tensors.
    func callAsFunction(_ x: TensorRef, rows: Int, ldx: Int? = nil, into y: TensorRef, ldy: Int? = nil) {
        let ldy = ldy ?? outFeatures
        backend.linear(prepared, x: x, rows: rows, ldx: ldx ?? inFeatures, y: y, ldy: ldy)
        if roundToBF16 { backend.roundToBF16(y, rows: rows, width: outFeatures, ld: ldy) }
    }
}
