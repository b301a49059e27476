// Every other `ComputeBackend` operation as one kernel launch on the stream (Kernels*.swift hold the
// kernels; ReferenceOps the semantics they reproduce). No transfer, no synchronisation, no allocation.
import PI0Tensor

extension CUDABackend {
    @inline(__always) func flag(_ b: Bool) -> KernelArg { .i32(b ? 1 : 0) }

    // MARK: Normalisation

    public func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_layer_norm", grid: (min(rows, 65_535), 1),
               [.ptr(x.devicePointer), .i32(rows), .i32(width), .ptr(weight.devicePointer), .ptr(bias.devicePointer),
                .f32(eps), .ptr(out.devicePointer)])
    }

    public func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_rms_norm", grid: (min(rows, 65_535), 1),
               [.ptr(x.devicePointer), .i32(rows), .i32(width), .ptr(weight.devicePointer), .f32(eps), flag(roundToBF16),
                .ptr(out.devicePointer)])
    }

    public func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        let n = batch * tokens * width
        guard n > 0 else { return }
        launch("pi0_adaptive_modulate", grid: Self.grid1D(n),
               [.ptr(x.devicePointer), .i32(batch), .i32(tokens), .i32(width), .ptr(modulation.devicePointer), flag(roundToBF16)])
    }

    public func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        let n = batch * tokens * width
        guard n > 0 else { return }
        launch("pi0_gated_add", grid: Self.grid1D(n),
               [.ptr(x.devicePointer), .ptr(y.devicePointer), .i32(batch), .i32(tokens), .i32(width),
                .ptr(modulation.devicePointer), flag(roundToBF16)])
    }

    // MARK: Elementwise

    public func geluTanh(_ x: TensorRef, count: Int) {
        guard count > 0 else { return }
        launch("pi0_gelu_tanh", grid: Self.grid1D(count), [.ptr(x.devicePointer), .i64(count)])
    }

    public func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_gelu_tanh_mul", grid: Self.grid1D(rows * width),
               [.ptr(gate.devicePointer), .ptr(up.devicePointer), .i32(rows), .i32(width), .i64(ldIn), flag(roundToBF16),
                .ptr(out.devicePointer), .i64(ldOut)])
    }

    public func silu(_ x: TensorRef, count: Int) {
        guard count > 0 else { return }
        launch("pi0_silu", grid: Self.grid1D(count), [.ptr(x.devicePointer), .i64(count)])
    }

    public func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        guard count > 0 else { return }
        launch("pi0_add", grid: Self.grid1D(count), [.ptr(x.devicePointer), .ptr(y.devicePointer), .i64(count), flag(roundToBF16)])
    }

    public func addPeriodic(_ x: TensorRef, _ y: TensorRef, count: Int, period: Int) {
        guard count > 0 else { return }
        precondition(period > 0, "addPeriodic: period \(period)")
        launch("pi0_add_periodic", grid: Self.grid1D(count), [.ptr(x.devicePointer), .ptr(y.devicePointer), .i64(count), .i64(period)])
    }

    public func scale(_ x: TensorRef, count: Int, by scale: Float, roundToBF16: Bool) {
        guard count > 0 else { return }
        launch("pi0_scale", grid: Self.grid1D(count), [.ptr(x.devicePointer), .i64(count), .f32(scale), flag(roundToBF16)])
    }

    public func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_bf16_round_rows", grid: Self.grid1D(rows * width), [.ptr(x.devicePointer), .i32(rows), .i32(width), .i64(ld)])
    }

    // MARK: Positions, gathers and copies

    public func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef, roundToBF16: Bool) {
        precondition(headDim % 2 == 0, "applyRoPE: odd head dim \(headDim)")
        let pairs = rows * heads * (headDim / 2)
        guard pairs > 0 else { return }
        launch("pi0_rope", grid: Self.grid1D(pairs),
               [.ptr(x.devicePointer), .i32(rows), .i32(heads), .i32(headDim), .i64(stride), .ptr(cos.devicePointer),
                .ptr(sin.devicePointer), flag(roundToBF16)])
    }

    public func copy(_ source: TensorRef, sourceStride: Int, to destination: TensorRef, destinationStride: Int, rows: Int, width: Int) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_copy_rows", grid: Self.grid1D(rows * width),
               [.ptr(source.devicePointer), .i64(sourceStride), .ptr(destination.devicePointer), .i64(destinationStride),
                .i32(rows), .i32(width)])
    }

    public func embed(_ table: PreparedEmbedding, ids: TensorRef, count: Int, scale: Float, roundToBF16: Bool, out: TensorRef, ldOut: Int) {
        guard let t = table as? CUDAEmbedding else { preconditionFailure("CUDABackend got a foreign PreparedEmbedding") }
        guard count > 0 && t.width > 0 else { return }
        launch(t.dtype == .bfloat16 ? "pi0_embed_bf16" : "pi0_embed_f32", grid: Self.grid1D(count * t.width),
               [.ptr(t.table.pointer), .i32(t.rows), .i32(t.width), .ptr(ids.devicePointer), .i32(count), .f32(scale),
                flag(roundToBF16), .ptr(out.devicePointer), .i64(ldOut)])
    }

    public func patchify(_ images: TensorRef, count: Int, side: Int, patch: Int, out: TensorRef) {
        let g = side / max(patch, 1)
        guard count > 0 && g > 0 else { return }
        launch("pi0_patchify", grid: Self.grid1D(count * g * g * 3 * patch * patch),
               [.ptr(images.devicePointer), .i32(count), .i32(side), .i32(patch), .ptr(out.devicePointer)])
    }

    // MARK: Flow matching

    public func timeEmbedding(t: Float, width: Int, minPeriod: Double, maxPeriod: Double, out: TensorRef) {
        guard width >= 2 else { return }
        launch("pi0_time_embedding", grid: Self.grid1D(width / 2),
               [.f32(t), .i32(width), .f64(minPeriod), .f64(maxPeriod), .ptr(out.devicePointer)])
    }

    public func eulerStep(_ x: TensorRef, velocity: TensorRef, count: Int, dt: Float) {
        guard count > 0 else { return }
        launch("pi0_euler_step", grid: Self.grid1D(count), [.ptr(x.devicePointer), .ptr(velocity.devicePointer), .i64(count), .f32(dt)])
    }

    public func guideVelocity(x: TensorRef, velocity: TensorRef, target: TensorRef, weights: TensorRef, rows: Int, width: Int,
                              t: Float, guidance: Float) {
        guard rows > 0 && width > 0 else { return }
        launch("pi0_guide_velocity", grid: Self.grid1D(rows * width),
               [.ptr(x.devicePointer), .ptr(velocity.devicePointer), .ptr(target.devicePointer), .ptr(weights.devicePointer),
                .i32(rows), .i32(width), .f32(t), .f32(guidance)])
    }

    /// One block: the status is written on the device (no transfer; the caller downloads it with the results).
    public func checkFinite(_ x: TensorRef, count: Int, status: TensorRef) {
        launch("pi0_check_finite", grid: (1, 1), [.ptr(x.devicePointer), .i64(max(count, 0)), .ptr(status.devicePointer)])
    }
}
