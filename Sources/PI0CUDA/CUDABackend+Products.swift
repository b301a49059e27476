// Linear layers (cuBLAS, bf16 tensor-core GEMM for bf16 weights and activations, or the fallback
// kernels) and the tiled attention kernel, on device tensors. Nothing here waits or allocates during a
// capture (the bf16 activation scratch is sized eagerly; a capture that finds it short is redone).
import PI0Tensor

extension CUDABackend {
    public func linear(_ w: PreparedLinear, x: TensorRef, rows: Int, ldx: Int, y: TensorRef, ldy: Int) {
        guard let p = w as? CUDALinear else { preconditionFailure("CUDABackend got a foreign PreparedLinear") }
        guard rows > 0 else { return }
        let n = p.outFeatures, k = p.inFeatures
        let dx = x.devicePointer, dy = y.devicePointer
        run("linear \(rows)x\(k)->\(n)") {
            guard let cublas else {
                let kernel = p.weightType == CUBLAS.r16BF ? "pi0_linear_bf16w" : "pi0_linear_f32w"
                try device.launchKernel(kernel, LaunchShape(grid: ((n + 15) / 16, (rows + 15) / 16), block: (16, 16)), sharedBytes: 0,
                                        [.ptr(dx), .i32(rows), .i32(k), .i64(ldx), .ptr(p.weight.pointer), .i32(n),
                                         .ptr(p.bias?.pointer ?? 0), .ptr(dy), .i64(ldy)])
                return
            }
            var xPtr = dx, xType = CUBLAS.r32F, xld = ldx
            if p.bf16Inputs {
                // Exact conversion (the inputs are bf16 values), then bf16 × bf16 on the tensor cores, fp32 accumulation.
                guard let scratch = try bf16Scratch(bytes: rows * k * 2) else { return }
                xPtr = scratch; xType = CUBLAS.r16BF; xld = k
                try device.launchKernel("pi0_f32_to_bf16", LaunchShape(grid: Self.grid1D(rows * k), block: (256, 1)), sharedBytes: 0,
                                        [.ptr(dx), .i32(rows), .i32(k), .i64(ldx), .ptr(xPtr)])
            }
            try gemm(cublas, p, x: xPtr, xType: xType, ldx: xld, rows: rows, y: dy, ldy: ldy)
        }
    }

    /// cublasGemmEx y = x·Wᵀ, then the bias (inside `run`).
    private func gemm(_ cublas: CUBLAS, _ p: CUDALinear, x: CUdeviceptr, xType: Int32, ldx: Int, rows: Int, y: CUdeviceptr, ldy: Int) throws {
        let n = p.outFeatures
        let s = cublas.linear(w: p.weight.pointer, wType: p.weightType, x: x, xType: xType, m: rows, n: n, k: p.inFeatures,
                              ldx: ldx, y: y, ldy: ldy)
        guard s == 0 else { throw BackendError.unavailable(backend: "cuda", reason: "cublasGemmEx failed with status \(s)") }
        if let b = p.bias {
            try device.launchKernel("pi0_bias_add", LaunchShape(grid: Self.grid1D(rows * n), block: (256, 1)), sharedBytes: 0,
                                    [.ptr(y), .i32(rows), .i32(n), .i64(ldy), .ptr(b.pointer)])
        }
    }

    /// RMSNorm fused into the following GEMMs where that is exact: with cuBLAS and bf16 inputs, a product
    /// converts its activations to bf16 (`pi0_f32_to_bf16`) before the tensor-core GEMM; here the norm
    /// kernel writes those bf16 operand bits itself (`pi0_rms_norm_bf16`, the same arithmetic as
    /// `pi0_rms_norm`), once for both products, which then read it. Launches per call: 1 + P instead of
    /// 1 + 2P, and the normalised rows are not read back. Everything else (float32 activations, the
    /// fallback GEMM) is the plain composition. Bit-identical to the composition either way.
    public func rmsNormLinear(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, normed: TensorRef,
                              _ first: NormedProduct, _ second: NormedProduct?) {
        guard let p1 = first.linear as? CUDALinear else { preconditionFailure("CUDABackend got a foreign PreparedLinear") }
        let p2 = second.map { s -> CUDALinear in
            guard let p = s.linear as? CUDALinear else { preconditionFailure("CUDABackend got a foreign PreparedLinear") }
            return p
        }
        guard let cublas, rows > 0, width > 0, p1.bf16Inputs, p1.inFeatures == width,
              p2.map({ $0.bf16Inputs && $0.inFeatures == width }) ?? true else {
            rmsNorm(x, rows: rows, width: width, weight: weight, eps: eps, roundToBF16: roundToBF16, out: normed)
            linear(first.linear, x: normed, rows: rows, ldx: width, y: first.y, ldy: first.ldy)
            if let second { linear(second.linear, x: normed, rows: rows, ldx: width, y: second.y, ldy: second.ldy) }
            return
        }
        let dx = x.devicePointer, dw = weight.devicePointer, dn = normed.devicePointer
        let y1 = first.y.devicePointer, y2 = second?.y.devicePointer ?? 0
        run("rmsNormLinear \(rows)x\(width)") {
            guard let bits = try bf16Scratch(bytes: rows * width * 2) else { return }   // short in a capture: it is redone
            try device.launchKernel("pi0_rms_norm_bf16", LaunchShape(grid: (min(rows, 65_535), 1), block: (256, 1)), sharedBytes: 0,
                                    [.ptr(dx), .i32(rows), .i32(width), .ptr(dw), .f32(eps), .i32(roundToBF16 ? 1 : 0), .ptr(dn), .ptr(bits)])
            try gemm(cublas, p1, x: bits, xType: CUBLAS.r16BF, ldx: width, rows: rows, y: y1, ldy: first.ldy)
            if let p2, let second { try gemm(cublas, p2, x: bits, xType: CUBLAS.r16BF, ldx: width, rows: rows, y: y2, ldy: second.ldy) }
        }
    }

    /// The bf16 activation scratch of at least `bytes`; grown (after the stream drains) outside a capture.
    /// During a capture a short scratch records the shortfall and returns nil (the capture is redone).
    func bf16Scratch(bytes: Int) throws -> CUdeviceptr? {
        if let s = bf16Scratch, s.byteCount >= bytes { return s.pointer }
        if capturing { scratchShortfall = max(scratchShortfall, bytes); return nil }
        try growBF16Scratch(bytes)
        return bf16Scratch!.pointer
    }

    func growBF16Scratch(_ bytes: Int) throws {
        if bf16Scratch != nil { try device.streamSynchronize() }   // pending GEMMs may still read the old one
        bf16Scratch = nil
        bf16Scratch = try memory.allocate(bytes: max(bytes, 1 << 20))
    }

    /// Queries per attention block: bounded by the outputs a thread keeps (tq·D ≤ 32·128), 16, the
    /// query count, and the shared memory limit (tq·(D + 1 + S + 2) + 16·(D + 1) floats). 0 when nothing fits.
    static func attentionQueryTile(queries: Int, keys: Int, headDim: Int, sharedLimit: Int) -> Int {
        let byOutputs = CUDAKernels.attentionMaxOutputsPerThread * CUDAKernels.attentionThreads / headDim
        let byShared = (sharedLimit / 4 - CUDAKernels.attentionKeyTile * (headDim + 1)) / (headDim + 1 + keys + 2)
        return max(0, min(16, queries, byOutputs, byShared))
    }

    public func attention(_ a: AttentionCall) {
        guard a.queries > 0 && a.keys > 0 && a.heads > 0 else { return }
        precondition(a.kvHeads > 0 && a.heads % a.kvHeads == 0, "attention: \(a.heads) heads over \(a.kvHeads) kv heads")
        let limit = device.attentionSharedLimit
        let tq = Self.attentionQueryTile(queries: a.queries, keys: a.keys, headDim: a.headDim, sharedLimit: limit)
        guard tq > 0 else {
            fatalError("cuda attention over \(a.keys) keys at head dim \(a.headDim) does not fit \(limit) bytes of shared memory")
        }
        let floats = (tq + CUDAKernels.attentionKeyTile) * (a.headDim + 1) + tq * a.keys + 2 * tq
        launch("pi0_attention", grid: ((a.queries + tq - 1) / tq, a.heads), block: (CUDAKernels.attentionThreads, 1),
               sharedBytes: floats * 4,
               [.ptr(a.q.devicePointer), .i32(a.qStride), .ptr(a.k.devicePointer), .i32(a.kStride),
                .ptr(a.v.devicePointer), .i32(a.vStride), .ptr(a.mask.devicePointer), .i32(a.maskStride),
                .ptr(a.out.devicePointer), .i32(a.outStride), .i32(a.queries), .i32(a.keys), .i32(a.heads),
                .i32(a.kvHeads), .i32(a.headDim), .f32(a.scale), .i32(a.roundToBF16 ? 1 : 0), .i32(tq)])
    }
}
