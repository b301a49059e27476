// The elementwise and normalisation kernels with the same host-pointer signatures as `ReferenceOps`, so the
// op table can be checked against the CPU implementations (CUDASelfTest) before the model moves its
// activations onto the device (docs/CUDA.md). Each call uploads, runs, downloads and synchronises.
import PI0Tensor

extension CUDABackend {
    /// Uploads `inputs` (host pointer, float count) into scratch buffers named by index, runs `body`
    /// with their device pointers, then downloads `outCount` floats of buffer `outIndex` into `out`.
    private func hostOp(_ what: String, inputs: [(UnsafePointer<Float>, Int)], outIndex: Int, outCount: Int,
                        into out: UnsafeMutablePointer<Float>, _ body: ([CUdeviceptr]) throws -> Void) {
        run(what) {
            var ptrs: [CUdeviceptr] = []
            for (i, (p, count)) in inputs.enumerated() {
                let d = try buffer("op\(i)", bytes: count * 4)
                try ctx.upload(p, bytes: count * 4, to: d)
                ptrs.append(d)
            }
            try body(ptrs)
            try ctx.download(ptrs[outIndex], bytes: outCount * 4, to: out)
            try ctx.synchronize()
        }
    }

    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float],
                          eps: Float, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            hostOp("layerNorm", inputs: [(x, rows * width), (w.baseAddress!, width), (b.baseAddress!, width), (UnsafePointer(out), rows * width)],
                   outIndex: 3, outCount: rows * width, into: out) { d in
                try ctx.launch("layer_norm", grid: (rows, 1), block: (256, 1),
                               [.ptr(d[0]), .i32(rows), .i32(width), .ptr(d[1]), .ptr(d[2]), .f32(eps), .ptr(d[3])])
            }
        } }
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float,
                        roundToBF16: Bool, out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            hostOp("rmsNorm", inputs: [(x, rows * width), (w.baseAddress!, width), (UnsafePointer(out), rows * width)],
                   outIndex: 2, outCount: rows * width, into: out) { d in
                try ctx.launch("rms_norm", grid: (rows, 1), block: (256, 1),
                               [.ptr(d[0]), .i32(rows), .i32(width), .ptr(d[1]), .f32(eps), .i32(roundToBF16 ? 1 : 0), .ptr(d[2])])
            }
        }
    }

    public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        hostOp("geluTanh", inputs: [(UnsafePointer(x), count)], outIndex: 0, outCount: count, into: x) { d in
            try ctx.launch("gelu_tanh", grid: CUDAContext.grid1D(count), block: (256, 1), [.ptr(d[0]), .i64(count)])
        }
    }

    /// Dense rows only (ldIn = ldOut = width), which is how the model calls it.
    public func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int,
                            roundToBF16: Bool, out: UnsafeMutablePointer<Float>) {
        let n = rows * width
        hostOp("geluTanhMul", inputs: [(gate, n), (up, n), (UnsafePointer(out), n)], outIndex: 2, outCount: n, into: out) { d in
            try ctx.launch("gelu_tanh_mul", grid: CUDAContext.grid1D(n), block: (256, 1),
                           [.ptr(d[0]), .ptr(d[1]), .i32(rows), .i32(width), .i32(width), .i32(roundToBF16 ? 1 : 0),
                            .ptr(d[2]), .i32(width)])
        }
    }

    public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        hostOp("silu", inputs: [(UnsafePointer(x), count)], outIndex: 0, outCount: count, into: x) { d in
            try ctx.launch("silu", grid: CUDAContext.grid1D(count), block: (256, 1), [.ptr(d[0]), .i64(count)])
        }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        hostOp("add", inputs: [(UnsafePointer(x), count), (y, count)], outIndex: 0, outCount: count, into: x) { d in
            try ctx.launch("residual_add", grid: CUDAContext.grid1D(count), block: (256, 1),
                           [.ptr(d[0]), .ptr(d[1]), .i64(count), .i32(roundToBF16 ? 1 : 0)])
        }
    }

    /// x ← x + dt·v, the Euler update (FlowMatching), dt already float32.
    public func eulerUpdate(_ x: UnsafeMutablePointer<Float>, velocity v: UnsafePointer<Float>, dt: Float, count: Int) {
        hostOp("euler", inputs: [(UnsafePointer(x), count), (v, count)], outIndex: 0, outCount: count, into: x) { d in
            try ctx.launch("euler_update", grid: CUDAContext.grid1D(count), block: (256, 1),
                           [.ptr(d[0]), .ptr(d[1]), .f32(dt), .i64(count)])
        }
    }

    public func roundToBF16(_ x: UnsafeMutablePointer<Float>, count: Int) {
        hostOp("bf16Round", inputs: [(UnsafePointer(x), count)], outIndex: 0, outCount: count, into: x) { d in
            try ctx.launch("bf16_round", grid: CUDAContext.grid1D(count), block: (256, 1), [.ptr(d[0]), .i64(count)])
        }
    }

    /// Dense x [tokens, stride] with stride ≥ heads·headDim; cos/sin [tokens, headDim].
    public func applyRoPE(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, headDim: Int, stride: Int,
                          cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, roundToBF16: Bool) {
        let n = tokens * stride, pairs = tokens * heads * (headDim / 2)
        hostOp("rope", inputs: [(UnsafePointer(x), n), (cos, tokens * headDim), (sin, tokens * headDim)], outIndex: 0, outCount: n, into: x) { d in
            try ctx.launch("rope_half", grid: CUDAContext.grid1D(pairs), block: (256, 1),
                           [.ptr(d[0]), .i32(tokens), .i32(heads), .i32(headDim), .i32(stride), .ptr(d[1]), .ptr(d[2]),
                            .i32(roundToBF16 ? 1 : 0)])
        }
    }
}
