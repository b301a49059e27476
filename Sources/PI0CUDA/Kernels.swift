// CUDA C++ source of every kernel cuBLAS does not provide, compiled by NVRTC at start-up for the
// device's architecture (KernelModule.swift caches the result on disk). The source is self-contained
// (no #include: NVRTC's built-in math functions and intrinsics only), so it compiles with NVRTC alone.
//
// Numerics follow Sources/PI0Tensor/ReferenceOps.swift operation by operation (compiled with --fmad=false,
// so no multiply-add is contracted; IEEE division and square root are NVRTC's defaults):
//  * bf16 rounding = round-to-nearest-even of the top 16 bits, NaN kept NaN (BFloat16.swift);
//  * RMSNorm / LayerNorm statistics accumulate in double (as ReferenceOps), reduced as a tree rather than
//    in index order, so a statistic may differ from the CPU's by one double rounding (invisible after
//    the cast to float in practice);
//  * attention scores and the probs·V sums run in index order per thread (bit-identical to the
//    reference); the softmax max/sum are block reductions (sum order differs: a few float ulps);
//  * expf/tanhf are CUDA's (≤ 2 ulp) rather than glibc's.
// Linear layers: `linear_f32w` / `linear_bf16w` are a plain 16×16-tiled fallback for when cuBLAS is
// not installed; each output is summed in index order (bit-identical to ReferenceBackend).
//
// Limits (documented in docs/CUDA.md): attention is one block per (head, query) holding the query
// vector, all S scores and a 32-float scratch in shared memory: (headDim + S + 32)·4 bytes must fit the
// 48 KiB default (S ≲ 11,900 keys at headDim 256; π0 needs ≤ 866 with 3 cameras). It re-reads K and V
// from global memory per query: simple and correct, not fast (a flash-style kernel is future work).

enum CUDAKernels {
    /// Kernel entry points (extern "C", unmangled) the backend resolves after loading the module.
    static let names = [
        "bf16_round", "f32_to_bf16", "bias_add", "residual_add", "euler_update", "silu", "gelu_tanh",
        "gelu_tanh_mul", "rms_norm", "layer_norm", "rope_half", "attention", "linear_f32w", "linear_bf16w",
    ]

    static let source = #"""
// pi0-swift CUDA kernels (generated from Sources/PI0CUDA/Kernels.swift; keep in sync with ReferenceOps.swift)
typedef unsigned short u16;
typedef unsigned int u32;

__device__ __forceinline__ u16 bf16_bits(float x) {
    u32 u = __float_as_uint(x);
    if (x != x) return (u16)((u >> 16) | 0x40u);
    u32 rounding = 0x7FFFu + ((u >> 16) & 1u);
    return (u16)((u + rounding) >> 16);
}
__device__ __forceinline__ float bf16_round(float x) { return __uint_as_float(((u32)bf16_bits(x)) << 16); }
__device__ __forceinline__ float bf16_float(u16 b) { return __uint_as_float(((u32)b) << 16); }

// Block-wide reductions for blockDim.x a multiple of 32 (≤ 1024); `scratch` holds ≥ 32 values.
__device__ double block_sum_d(double v, double* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < warps; ++i) t += scratch[i];
    return t;
}
__device__ float block_reduce_f(float v, float* scratch, bool isMax) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = isMax ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = scratch[0];
    for (int i = 1; i < warps; ++i) t = isMax ? fmaxf(t, scratch[i]) : t + scratch[i];
    return t;
}

extern "C" __global__ void bf16_round(float* x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) x[i] = bf16_round(x[i]);
}

// dense [rows, cols] bf16 bits from a float matrix with row stride ld (exact when x is bf16-representable).
extern "C" __global__ void f32_to_bf16(const float* x, int rows, int cols, int ld, u16* out) {
    long n = (long)rows * cols;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long r = i / cols, c = i % cols;
        out[i] = bf16_bits(x[r * ld + c]);
    }
}

// y[r, c] = y[r, c] + b[c] (row stride ld), the bias of a linear layer after cuBLAS.
extern "C" __global__ void bias_add(float* y, int rows, int cols, int ld, const float* b) {
    long n = (long)rows * cols;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long r = i / cols, c = i % cols;
        y[r * ld + c] = y[r * ld + c] + b[c];
    }
}

// ReferenceOps.add: x += y, rounded to bf16 when asked.
extern "C" __global__ void residual_add(float* x, const float* y, long n, int roundBF16) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float s = x[i] + y[i];
        x[i] = roundBF16 ? bf16_round(s) : s;
    }
}

// FlowMatching.eulerUpdate: d = dt·v, x = x + d (float32).
extern "C" __global__ void euler_update(float* x, const float* v, float dt, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float d = dt * v[i];
        x[i] = x[i] + d;
    }
}

// ReferenceOps.silu: x / (1 + exp(-x)).
extern "C" __global__ void silu(float* x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float v = x[i];
        x[i] = v / (1.0f + expf(-v));
    }
}

__device__ __forceinline__ float gelu_tanh_f(float x) {
    const float kBeta = 0.7978845608028654f, kKappa = 0.044715f;
    float cube = kKappa * x * x * x;
    float inner = kBeta * (x + cube);
    return 0.5f * x * (1.0f + tanhf(inner));
}

extern "C" __global__ void gelu_tanh(float* x, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) x[i] = gelu_tanh_f(x[i]);
}

// ReferenceOps.geluTanhMul: out = gelu(gate)·up; in bf16 mode gelu's output and the product are rounded.
extern "C" __global__ void gelu_tanh_mul(const float* gate, const float* up, int rows, int width, int ldIn,
                                         int roundBF16, float* out, int ldOut) {
    long n = (long)rows * width;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long r = i / width, c = i % width;
        float g = gelu_tanh_f(gate[r * ldIn + c]), u = up[r * ldIn + c];
        out[r * ldOut + c] = roundBF16 ? bf16_round(bf16_round(g) * u) : g * u;
    }
}

// ReferenceOps.rmsNorm, one block per row: var = mean(x²) (double sum, cast to float), rs = 1/sqrt(var+eps),
// y = (x·rs)·(1+w), optionally bf16-rounded.
extern "C" __global__ void rms_norm(const float* x, int rows, int width, const float* w, float eps, int roundBF16, float* out) {
    __shared__ double scratch[32];
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (long)r * width;
    float* yr = out + (long)r * width;
    double sq = 0.0;
    for (int i = threadIdx.x; i < width; i += blockDim.x) { double d = (double)xr[i]; sq += d * d; }
    sq = block_sum_d(sq, scratch);
    float variance = (float)(sq / (double)width);
    float rs = 1.0f / sqrtf(variance + eps);
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        float n = xr[i] * rs;
        float y = n * (1.0f + w[i]);
        yr[i] = roundBF16 ? bf16_round(y) : y;
    }
}

// ReferenceOps.layerNorm, one block per row: mean and biased variance in double, y = (x−mean)·rstd·w + b.
extern "C" __global__ void layer_norm(const float* x, int rows, int width, const float* w, const float* b, float eps, float* out) {
    __shared__ double scratch[32];
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (long)r * width;
    float* yr = out + (long)r * width;
    double s = 0.0;
    for (int i = threadIdx.x; i < width; i += blockDim.x) s += (double)xr[i];
    double mean = block_sum_d(s, scratch) / (double)width;
    double sq = 0.0;
    for (int i = threadIdx.x; i < width; i += blockDim.x) { double d = (double)xr[i] - mean; sq += d * d; }
    sq = block_sum_d(sq, scratch);
    float rstd = (float)(1.0 / sqrt(sq / (double)width + (double)eps));
    float meanF = (float)mean;
    for (int i = threadIdx.x; i < width; i += blockDim.x) yr[i] = (xr[i] - meanF) * rstd * w[i] + b[i];
}

// ReferenceOps.applyRoPE (half-split), in place; one thread per (token, head, i < headDim/2) pair.
extern "C" __global__ void rope_half(float* x, int tokens, int heads, int headDim, int stride,
                                     const float* cosT, const float* sinT, int roundBF16) {
    int half = headDim / 2;
    long n = (long)tokens * heads * half;
    for (long idx = blockIdx.x * (long)blockDim.x + threadIdx.x; idx < n; idx += (long)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        long th = idx / half;
        int h = (int)(th % heads);
        long t = th / heads;
        float* v = x + t * stride + (long)h * headDim;
        const float* c = cosT + t * headDim;
        const float* s = sinT + t * headDim;
        float a = v[i], b = v[i + half];
        float lo, hi;
        if (roundBF16) {
            lo = bf16_round(bf16_round(a * c[i]) + bf16_round(-b * s[i]));
            hi = bf16_round(bf16_round(b * c[i + half]) + bf16_round(a * s[i + half]));
        } else {
            float p = a * c[i], q = -b * s[i];
            lo = p + q;
            float p2 = b * c[i + half], q2 = a * s[i + half];
            hi = p2 + q2;
        }
        v[i] = lo;
        v[i + half] = hi;
    }
}

// ReferenceOps.referenceAttention: grid (heads, queries), one block per (head, query), blockDim a multiple
// of 32. Dynamic shared memory: (headDim + keys + 32) floats.
extern "C" __global__ void attention(const float* q, int qStride, const float* k, int kStride,
                                     const float* v, int vStride, const float* mask, int maskStride,
                                     float* out, int outStride, int queries, int keys, int heads, int kvHeads,
                                     int headDim, float scale, int roundBF16) {
    extern __shared__ float sm[];
    float* qs = sm;
    float* s = sm + headDim;
    float* scratch = s + keys;
    int h = blockIdx.x, t = blockIdx.y;
    if (h >= heads || t >= queries) return;
    int kvh = h / (heads / kvHeads);
    const float* qv = q + (long)t * qStride + (long)h * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) qs[d] = qv[d];
    __syncthreads();
    float localMax = __int_as_float(0xff800000); // -inf
    for (int j = threadIdx.x; j < keys; j += blockDim.x) {
        const float* kv = k + (long)j * kStride + (long)kvh * headDim;
        float acc = 0.0f;
        for (int d = 0; d < headDim; ++d) acc += qs[d] * kv[d];
        if (roundBF16) acc = bf16_round(acc);
        float x = acc * scale;
        if (roundBF16) x = bf16_round(x);
        if (mask) x += mask[(long)t * maskStride + j];
        s[j] = x;
        localMax = fmaxf(localMax, x);
    }
    float m = block_reduce_f(localMax, scratch, true);
    float localSum = 0.0f;
    for (int j = threadIdx.x; j < keys; j += blockDim.x) { float e = expf(s[j] - m); s[j] = e; localSum += e; }
    float sum = block_reduce_f(localSum, scratch, false);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < keys; j += blockDim.x) {
        float p = s[j] * inv;
        s[j] = roundBF16 ? bf16_round(p) : p;
    }
    __syncthreads();
    float* o = out + (long)t * outStride + (long)h * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        const float* vc = v + (long)kvh * headDim + d;
        float acc = 0.0f;
        for (int j = 0; j < keys; ++j) acc += s[j] * vc[(long)j * vStride];
        o[d] = roundBF16 ? bf16_round(acc) : acc;
    }
}

// Fallback linear y[m, n] = Σ_k x[m, k]·W[n, k] + b[n] (W row-major [N, K], float32 or bf16 bits),
// block (16, 16), grid (ceil(N/16), ceil(M/16)); every output summed in index order.
template <typename W> __device__ __forceinline__ float wload(const W* p, long i);
template <> __device__ __forceinline__ float wload<float>(const float* p, long i) { return p[i]; }
template <> __device__ __forceinline__ float wload<u16>(const u16* p, long i) { return bf16_float(p[i]); }

template <typename W>
__device__ void linear_tiled(const float* x, int M, int K, int ldx, const W* w, int N, const float* bias, float* y, int ldy) {
    __shared__ float xs[16][17];
    __shared__ float ws[16][17];
    int tx = threadIdx.x, ty = threadIdx.y;
    int m = blockIdx.y * 16 + ty, n = blockIdx.x * 16 + tx, nw = blockIdx.x * 16 + ty;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += 16) {
        int kx = k0 + tx;
        xs[ty][tx] = (m < M && kx < K) ? x[(long)m * ldx + kx] : 0.0f;
        ws[ty][tx] = (nw < N && kx < K) ? wload<W>(w, (long)nw * K + kx) : 0.0f;
        __syncthreads();
        int kend = min(16, K - k0);
        for (int kk = 0; kk < kend; ++kk) acc += xs[ty][kk] * ws[tx][kk];
        __syncthreads();
    }
    if (m < M && n < N) y[(long)m * ldy + n] = acc + (bias ? bias[n] : 0.0f);
}

extern "C" __global__ void linear_f32w(const float* x, int M, int K, int ldx, const float* w, int N, const float* bias, float* y, int ldy) {
    linear_tiled<float>(x, M, K, ldx, w, N, bias, y, ldy);
}
extern "C" __global__ void linear_bf16w(const float* x, int M, int K, int ldx, const u16* w, int N, const float* bias, float* y, int ldy) {
    linear_tiled<u16>(x, M, K, ldx, w, N, bias, y, ldy);
}
"""#
}
