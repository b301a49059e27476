// The model-specific kernels: normalisation (LayerNorm, Gemma RMSNorm, π0.5's adaptive RMSNorm
// halves), RoPE, row copies, the token gather and image patching. Same rules as Kernels.swift.

extension CUDAKernels {
    static let modelNames = [
        "pi0_rms_norm", "pi0_rms_norm_bf16", "pi0_layer_norm", "pi0_adaptive_modulate", "pi0_gated_add", "pi0_rope",
        "pi0_copy_rows", "pi0_embed_f32", "pi0_embed_bf16", "pi0_patchify",
    ]

    static let modelSource = #"""
// ReferenceOps.rmsNorm, one block of PI0_THREADS per row: var = mean(x²) (double sum, cast to float),
// rs = 1/sqrt(var + eps), y = (x·rs)·(1 + w) (w = 0 when null), optionally bf16-rounded. In place allowed.
// `bits` (may be null): the bf16 bits of every output too, dense [rows, width]: the cuBLAS bf16 GEMM's
// operand, exactly what pi0_f32_to_bf16 makes of `out` (RMSNorm fused into the following GEMMs).
__device__ void rms_norm_rows(const float* x, int rows, int width, const float* w, float eps, int roundBF16, float* out,
                              u16* bits) {
    __shared__ double scratch[PI0_THREADS];
    for (long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + r * width;
        float* yr = out + r * width;
        double sq = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) { double d = (double)xr[i]; sq += d * d; }
        sq = block_sum_d(sq, scratch);
        float variance = (float)(sq / (double)width);
        float rs = 1.0f / sqrtf(variance + eps);
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            float n = xr[i] * rs;
            float y = rnd(n * (1.0f + (w ? w[i] : 0.0f)), roundBF16);
            yr[i] = y;
            if (bits) bits[r * width + i] = bf16_bits(y);
        }
    }
}
extern "C" __global__ void pi0_rms_norm(const float* x, int rows, int width, const float* w, float eps,
                                        int roundBF16, float* out) {
    rms_norm_rows(x, rows, width, w, eps, roundBF16, out, 0);
}
extern "C" __global__ void pi0_rms_norm_bf16(const float* x, int rows, int width, const float* w, float eps,
                                             int roundBF16, float* out, u16* bits) {
    rms_norm_rows(x, rows, width, w, eps, roundBF16, out, bits);
}

// ReferenceOps.layerNorm, one block per row: mean and biased variance in double, y = (x−mean)·rstd·w + b.
extern "C" __global__ void pi0_layer_norm(const float* x, int rows, int width, const float* w, const float* b,
                                          float eps, float* out) {
    __shared__ double scratch[PI0_THREADS];
    for (long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + r * width;
        float* yr = out + r * width;
        double s = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) s += (double)xr[i];
        double mean = block_sum_d(s, scratch) / (double)width;
        double sq = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) { double d = (double)xr[i] - mean; sq += d * d; }
        sq = block_sum_d(sq, scratch);
        float rstd = (float)(1.0 / sqrt(sq / (double)width + (double)eps));
        float meanF = (float)mean;
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            float c = xr[i] - meanF;
            float n = c * rstd;
            float m = n * w[i];
            yr[i] = m + b[i];
        }
    }
}

// ReferenceOps.adaptiveModulate: row r of x [B·T, W] (batch b = r / T) ← x·(1 + scale) + shift,
// modulation [B, 3W] = scale | shift | gate.
extern "C" __global__ void pi0_adaptive_modulate(float* x, int batch, int tokens, int width, const float* m, int roundBF16) {
    GRID_STRIDE(idx, (long)batch * tokens * width) {
        long r = idx / width; int i = (int)(idx % width);
        const float* scale = m + (r / tokens) * 3L * width;
        float g = 1.0f + scale[i];
        float p = x[idx] * g;
        float y = p + scale[width + i];
        x[idx] = rnd(y, roundBF16);
    }
}

// ReferenceOps.gatedAdd: x ← x + y·gate, gate = modulation[b, 2W..<3W] (each op rounded in bf16 mode).
extern "C" __global__ void pi0_gated_add(float* x, const float* y, int batch, int tokens, int width, const float* m,
                                         int roundBF16) {
    GRID_STRIDE(idx, (long)batch * tokens * width) {
        long r = idx / width; int i = (int)(idx % width);
        float gate = m[(r / tokens) * 3L * width + 2L * width + i];
        if (roundBF16) {
            x[idx] = bf16r(x[idx] + bf16r(y[idx] * bf16r(gate)));
        } else {
            float p = y[idx] * gate;
            x[idx] = x[idx] + p;
        }
    }
}

// ReferenceOps.applyRoPE (half-split), in place; one thread per (row, head, i < headDim/2) pair.
extern "C" __global__ void pi0_rope(float* x, int rows, int heads, int headDim, long stride,
                                    const float* cosT, const float* sinT, int roundBF16) {
    int half = headDim / 2;
    GRID_STRIDE(idx, (long)rows * heads * half) {
        int i = (int)(idx % half);
        long th = idx / half;
        int h = (int)(th % heads);
        long t = th / heads;
        float* v = x + t * stride + (long)h * headDim;
        const float* c = cosT + t * headDim;
        const float* s = sinT + t * headDim;
        float lo = v[i], hi = v[i + half];
        if (roundBF16) {
            v[i] = bf16r(bf16r(lo * c[i]) + bf16r(-hi * s[i]));
            v[i + half] = bf16r(bf16r(hi * c[i + half]) + bf16r(lo * s[i + half]));
        } else {
            float a = lo * c[i], b = -hi * s[i];
            float a2 = hi * c[i + half], b2 = lo * s[i + half];
            v[i] = a + b;
            v[i + half] = a2 + b2;
        }
    }
}

// ReferenceOps.copy: dst[r·dstStride + i] = src[r·srcStride + i]; srcStride 0 broadcasts one row.
extern "C" __global__ void pi0_copy_rows(const float* src, long srcStride, float* dst, long dstStride, int rows, int width) {
    GRID_STRIDE(idx, (long)rows * width) {
        long r = idx / width, i = idx % width;
        dst[r * dstStride + i] = src[r * srcStride + i];
    }
}

// ReferenceOps.embed: out[j] = table[ids[j]]·scale (rounded when asked). The model checks ids against the
// vocabulary before uploading them; an id outside the table here writes a NaN row, which checkFinite reports.
template <typename T> __device__ __forceinline__ float table_load(const T* p, long i);
template <> __device__ __forceinline__ float table_load<float>(const float* p, long i) { return p[i]; }
template <> __device__ __forceinline__ float table_load<u16>(const u16* p, long i) { return bf16_float(p[i]); }

template <typename T>
__device__ void embed_rows(const T* table, int tableRows, int width, const float* ids, int count, float scale,
                           int roundBF16, float* out, long ldOut) {
    GRID_STRIDE(idx, (long)count * width) {
        long j = idx / width, i = idx % width;
        float f = ids[j];
        int id = (int)f;
        bool ok = f >= 0.0f && f < (float)tableRows && (float)id == f;
        float y = ok ? table_load<T>(table, (long)id * width + i) * scale : __uint_as_float(0x7fc00000u);
        out[j * ldOut + i] = rnd(y, roundBF16);
    }
}
extern "C" __global__ void pi0_embed_f32(const float* table, int tableRows, int width, const float* ids, int count,
                                         float scale, int roundBF16, float* out, long ldOut) {
    embed_rows<float>(table, tableRows, width, ids, count, scale, roundBF16, out, ldOut);
}
extern "C" __global__ void pi0_embed_bf16(const u16* table, int tableRows, int width, const float* ids, int count,
                                          float scale, int roundBF16, float* out, long ldOut) {
    embed_rows<u16>(table, tableRows, width, ids, count, scale, roundBF16, out, ldOut);
}

// ReferenceOps.patchify (im2col): patch (gy, gx) of image i → row i·G² + gy·G + gx, ordered (c, ky, kx).
extern "C" __global__ void pi0_patchify(const float* images, int count, int side, int patch, float* out) {
    int g = side / patch, width = 3 * patch * patch;
    GRID_STRIDE(idx, (long)count * g * g * width) {
        long row = idx / width; int col = (int)(idx % width);
        long i = row / (g * g); int p = (int)(row % (g * g));
        int gy = p / g, gx = p % g;
        int c = col / (patch * patch), rem = col % (patch * patch), ky = rem / patch, kx = rem % patch;
        out[idx] = images[i * 3L * side * side + (long)c * side * side + (long)(gy * patch + ky) * side + gx * patch + kx];
    }
}

"""#
}
