// CUDA C++ source of every kernel cuBLAS does not provide, compiled by NVRTC at start-up for the
// device's architecture (KernelModule.swift caches the result on disk). The source is self-contained
// (no #include: NVRTC's built-in math functions only), so it compiles with NVRTC alone, and it compiles
// as plain C++ too: the tests run every kernel on the CPU through a grid/block emulation
// (Tests/PI0CUDATests/KernelEmulator.swift), so the kernels' arithmetic is checked without a GPU.
// Rules that keep both true: no warp intrinsics (block reductions go through shared memory), every
// __syncthreads reached by every thread of a block, dynamic shared memory through PI0_DYNAMIC_SHARED.
//
// Numerics follow Sources/PI0Tensor/ReferenceOps.swift (and ReferenceOps+Model.swift) operation by
// operation (compiled with --fmad=false, so no multiply-add is contracted; IEEE division and square root
// are NVRTC's defaults):
//  * bf16 rounding = round-to-nearest-even of the top 16 bits, NaN kept NaN (BFloat16.swift);
//  * RMSNorm / LayerNorm statistics accumulate in double as ReferenceOps does, reduced as a tree rather
//    than in index order (a statistic may differ by one double rounding, invisible after the float cast);
//  * attention sums (q·k, softmax sum, probs·V) run in index order, as the reference;
//  * expf/tanhf/sin/cos/pow are the device's (CUDA: expf ≤ 2 ulp) rather than glibc's.
// The source is split by topic: this file (helpers, elementwise, flow matching), Kernels+Model.swift
// (norms, RoPE, gathers), Kernels+Products.swift (attention, fallback linear).

enum CUDAKernels {
    /// Kernel entry points (extern "C", unmangled) the backend resolves after loading the module.
    static let names = [
        "pi0_bf16_round_rows", "pi0_f32_to_bf16", "pi0_bias_add", "pi0_add", "pi0_add_periodic", "pi0_scale",
        "pi0_silu", "pi0_gelu_tanh", "pi0_gelu_tanh_mul", "pi0_euler_step", "pi0_guide_velocity",
        "pi0_check_finite", "pi0_time_embedding",
    ] + modelNames + productNames

    static let source = prelude + elementwise + modelSource + productSource

    static let prelude = #"""
// pi0-swift CUDA kernels (generated from Sources/PI0CUDA/Kernels*.swift; keep in sync with ReferenceOps)
typedef unsigned short u16;
typedef unsigned int u32;
#ifndef PI0_EMULATION
#define PI0_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
#define PI0_THREADS 256
#define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

__device__ __forceinline__ u16 bf16_bits(float x) {
    u32 u = __float_as_uint(x);
    if (x != x) return (u16)((u >> 16) | 0x40u);
    u32 rounding = 0x7FFFu + ((u >> 16) & 1u);
    return (u16)((u + rounding) >> 16);
}
__device__ __forceinline__ float bf16r(float x) { return __uint_as_float(((u32)bf16_bits(x)) << 16); }
__device__ __forceinline__ float bf16_float(u16 b) { return __uint_as_float(((u32)b) << 16); }
__device__ __forceinline__ float rnd(float x, int roundBF16) { return roundBF16 ? bf16r(x) : x; }
__device__ __forceinline__ bool is_finite_f(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }

// Block-wide sum for blockDim.x a power of two ≤ PI0_THREADS; every thread gets the total. `s` holds
// blockDim.x values (shared).
__device__ double block_sum_d(double v, double* s) {
    int t = threadIdx.x;
    s[t] = v;
    __syncthreads();
    for (int o = blockDim.x >> 1; o > 0; o >>= 1) {
        if (t < o) s[t] += s[t + o];
        __syncthreads();
    }
    double r = s[0];
    __syncthreads();
    return r;
}

"""#

    static let elementwise = #"""
// ReferenceOps.roundToBF16: rows of `width` at stride ld, in place.
extern "C" __global__ void pi0_bf16_round_rows(float* x, int rows, int width, long ld) {
    GRID_STRIDE(i, (long)rows * width) { long r = i / width, c = i % width; x[r * ld + c] = bf16r(x[r * ld + c]); }
}

// Dense [rows, cols] bf16 bits from a float matrix with row stride ld (exact when x is bf16-representable).
extern "C" __global__ void pi0_f32_to_bf16(const float* x, int rows, int cols, long ld, u16* out) {
    GRID_STRIDE(i, (long)rows * cols) { long r = i / cols, c = i % cols; out[i] = bf16_bits(x[r * ld + c]); }
}

// y[r, c] = y[r, c] + b[c] (row stride ld): a linear layer's bias after cuBLAS.
extern "C" __global__ void pi0_bias_add(float* y, int rows, int cols, long ld, const float* b) {
    GRID_STRIDE(i, (long)rows * cols) { long r = i / cols, c = i % cols; y[r * ld + c] = y[r * ld + c] + b[c]; }
}

// ReferenceOps.add: x += y, rounded to bf16 when asked.
extern "C" __global__ void pi0_add(float* x, const float* y, long n, int roundBF16) {
    GRID_STRIDE(i, n) { float s = x[i] + y[i]; x[i] = rnd(s, roundBF16); }
}

// ReferenceOps.addPeriodic: x[i] += y[i mod period].
extern "C" __global__ void pi0_add_periodic(float* x, const float* y, long n, long period) {
    GRID_STRIDE(i, n) { x[i] = x[i] + y[i % period]; }
}

// ReferenceOps.scale: x·s, rounded when asked.
extern "C" __global__ void pi0_scale(float* x, long n, float s, int roundBF16) {
    GRID_STRIDE(i, n) { float y = x[i] * s; x[i] = rnd(y, roundBF16); }
}

// ReferenceOps.silu: x / (1 + exp(−x)).
extern "C" __global__ void pi0_silu(float* x, long n) {
    GRID_STRIDE(i, n) { float v = x[i]; x[i] = v / (1.0f + expf(-v)); }
}

// ReferenceOps.geluTanh: 0.5·x·(1 + tanh(β·(x + κ·x·x·x))), left to right as Swift evaluates it.
__device__ __forceinline__ float gelu_tanh_f(float x) {
    const float kBeta = 0.7978845608028654f, kKappa = 0.044715f;
    float cube = kKappa * x * x * x;
    float inner = kBeta * (x + cube);
    return 0.5f * x * (1.0f + tanhf(inner));
}

extern "C" __global__ void pi0_gelu_tanh(float* x, long n) {
    GRID_STRIDE(i, n) { x[i] = gelu_tanh_f(x[i]); }
}

// ReferenceOps.geluTanhMul: out = gelu(gate)·up; in bf16 mode gelu's output and the product are rounded.
extern "C" __global__ void pi0_gelu_tanh_mul(const float* gate, const float* up, int rows, int width, long ldIn,
                                             int roundBF16, float* out, long ldOut) {
    GRID_STRIDE(i, (long)rows * width) {
        long r = i / width, c = i % width;
        float g = gelu_tanh_f(gate[r * ldIn + c]), u = up[r * ldIn + c];
        out[r * ldOut + c] = roundBF16 ? bf16r(bf16r(g) * u) : g * u;
    }
}

// ReferenceOps.eulerStep: d = dt·v, x = x + d (two float32 roundings).
extern "C" __global__ void pi0_euler_step(float* x, const float* v, long n, float dt) {
    GRID_STRIDE(i, n) { float d = dt * v[i]; x[i] = x[i] + d; }
}

// ReferenceOps.guideVelocity (RTC, docs/RTC.md): rows of weight 0 untouched.
extern "C" __global__ void pi0_guide_velocity(const float* x, float* v, const float* y, const float* w,
                                              int rows, int width, float t, float g) {
    GRID_STRIDE(i, (long)rows * width) {
        float wr = w[i / width];
        if (wr != 0.0f) {
            float tv = t * v[i];
            float x1 = x[i] - tv;
            float err = (y[i] - x1) * wr;
            float ge = g * err;
            v[i] = v[i] - ge;
        }
    }
}

// ReferenceOps.checkFinite, one block of PI0_THREADS threads: status = [1, first index, value] at the
// first NaN/±inf, else [0, 0, 0]. Each thread scans a stride (its first hit is its smallest); the block
// takes the minimum. Writes the status on the device: no transfer.
extern "C" __global__ void pi0_check_finite(const float* x, long n, float* status) {
    __shared__ long first[PI0_THREADS];
    int t = threadIdx.x;
    long mine = n;
    for (long i = t; i < n; i += blockDim.x) if (!is_finite_f(x[i])) { mine = i; break; }
    first[t] = mine;
    __syncthreads();
    for (int o = blockDim.x >> 1; o > 0; o >>= 1) {
        if (t < o && first[t + o] < first[t]) first[t] = first[t + o];
        __syncthreads();
    }
    if (t == 0) {
        long f = first[0];
        if (f < n) { status[0] = 1.0f; status[1] = (float)f; status[2] = x[f]; }
        else { status[0] = 0.0f; status[1] = 0.0f; status[2] = 0.0f; }
    }
}

// ReferenceOps.timeEmbedding in float64, cast to float32: [sin(a_j), cos(a_j)], a_j = t·2π/period_j,
// period_j = min·(max/min)^(j/(h−1)), h = width/2.
extern "C" __global__ void pi0_time_embedding(float t, int width, double minPeriod, double maxPeriod, float* out) {
    int half = width / 2;
    double time = (double)t;
    GRID_STRIDE(j, (long)half) {
        double fraction = half > 1 ? (double)j / (double)(half - 1) : 0.0;
        double period = minPeriod * pow(maxPeriod / minPeriod, fraction);
        double scaling = 1.0 / period * 2.0 * 3.141592653589793;
        double a = scaling * time;
        out[j] = (float)sin(a);
        out[half + j] = (float)cos(a);
    }
}

"""#
}
