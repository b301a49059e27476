// The products: tiled attention and the fallback linear kernels (cuBLAS does the linear layers when
// installed). Same rules as Kernels.swift.

extension CUDAKernels {
    static let productNames = ["pi0_attention", "pi0_linear_f32w", "pi0_linear_bf16w"]

    /// Keys per shared-memory K/V tile, and the most outputs one attention thread accumulates.
    static let attentionKeyTile = 16, attentionMaxOutputsPerThread = 32, attentionThreads = 128

    static let productSource = #"""
// ReferenceOps.referenceAttention, tiled: one block of 128 threads per (tile of `tq` queries, head).
// Grid (ceil(T / tq), heads). Dynamic shared memory, in floats: tq·(D+1) (queries) + KT·(D+1) (a K or V
// tile) + tq·S (scores, then probabilities) + 2·tq (row max, 1/sum); rows padded to D+1 floats so that
// the threads of a warp reading d of different rows hit different banks. Each K and V tile is loaded once per block
// and used by all tq queries. Every sum runs in index order as in the reference: q·k over d, the softmax
// sum over keys (one thread per query), probs·V over keys (a thread owns up to 32 outputs of the tile and
// walks the V tiles in order). The host picks tq with tq·D ≤ 32·128 and the shared size within the limit.
#define ATT_KT 16
#define ATT_MAXO 32
extern "C" __global__ void pi0_attention(const float* q, int qStride, const float* k, int kStride,
                                         const float* v, int vStride, const float* mask, int maskStride,
                                         float* out, int outStride, int queries, int keys, int heads, int kvHeads,
                                         int headDim, float scale, int roundBF16, int tq) {
    PI0_DYNAMIC_SHARED(float, sm);
    const int D = headDim, DP = headDim + 1, S = keys, tid = threadIdx.x, nt = blockDim.x;
    float* qs = sm;                        // [tq][DP]
    float* ts = qs + tq * DP;              // [KT][DP]
    float* sc = ts + ATT_KT * DP;          // [tq][S]
    float* rowMax = sc + (long)tq * S;     // [tq]
    float* rowInv = rowMax + tq;           // [tq]
    const int h = blockIdx.y, t0 = blockIdx.x * tq;
    const int kvh = h / (heads / kvHeads);
    const int nq = min(tq, queries - t0);
    for (int e = tid; e < nq * D; e += nt) qs[(e / D) * DP + e % D] = q[(long)(t0 + e / D) * qStride + (long)h * D + e % D];
    // Scores: (q·k)·scale (+ mask), rounded as a bf16 eager attention does.
    for (int j0 = 0; j0 < S; j0 += ATT_KT) {
        int kt = min(ATT_KT, S - j0);
        __syncthreads();
        for (int e = tid; e < kt * D; e += nt) ts[(e / D) * DP + e % D] = k[(long)(j0 + e / D) * kStride + (long)kvh * D + e % D];
        __syncthreads();
        for (int e = tid; e < nq * kt; e += nt) {
            int i = e / kt, jj = e % kt;
            const float* qv = qs + i * DP;
            const float* kv = ts + jj * DP;
            float acc = 0.0f;
            for (int d = 0; d < D; ++d) acc += qv[d] * kv[d];
            if (roundBF16) acc = bf16r(acc);
            float x = acc * scale;
            if (roundBF16) x = bf16r(x);
            if (mask) x += mask[(long)(t0 + i) * maskStride + j0 + jj];
            sc[(long)i * S + j0 + jj] = x;
        }
    }
    __syncthreads();
    // Softmax per query row (ReferenceOps.softmax): max, exp(x − max), sum in index order, ·(1/sum).
    for (int i = tid; i < nq; i += nt) {
        float m = __uint_as_float(0xff800000u);
        for (int j = 0; j < S; ++j) m = fmaxf(m, sc[(long)i * S + j]);
        rowMax[i] = m;
    }
    __syncthreads();
    for (long e = tid; e < (long)nq * S; e += nt) sc[e] = expf(sc[e] - rowMax[e / S]);
    __syncthreads();
    for (int i = tid; i < nq; i += nt) {
        float sum = 0.0f;
        for (int j = 0; j < S; ++j) sum += sc[(long)i * S + j];
        rowInv[i] = 1.0f / sum;
    }
    __syncthreads();
    for (long e = tid; e < (long)nq * S; e += nt) { float p = sc[e] * rowInv[e / S]; sc[e] = rnd(p, roundBF16); }
    // out = probs·V: thread `tid` owns outputs e = tid + r·nt of the nq × D tile.
    float acc[ATT_MAXO];
#pragma unroll
    for (int r = 0; r < ATT_MAXO; ++r) acc[r] = 0.0f;
    for (int j0 = 0; j0 < S; j0 += ATT_KT) {
        int kt = min(ATT_KT, S - j0);
        __syncthreads();
        for (int e = tid; e < kt * D; e += nt) ts[(e / D) * DP + e % D] = v[(long)(j0 + e / D) * vStride + (long)kvh * D + e % D];
        __syncthreads();
#pragma unroll
        for (int r = 0; r < ATT_MAXO; ++r) {
            int e = tid + r * nt;
            if (e < nq * D) {
                const float* p = sc + (long)(e / D) * S + j0;
                const float* vc = ts + e % D;
                float a = acc[r];
                for (int jj = 0; jj < kt; ++jj) a += p[jj] * vc[jj * DP];
                acc[r] = a;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < ATT_MAXO; ++r) {
        int e = tid + r * nt;
        if (e < nq * D) out[(long)(t0 + e / D) * outStride + (long)h * D + e % D] = rnd(acc[r], roundBF16);
    }
}

// Fallback linear y[m, n] = Σ_k x[m, k]·W[n, k] + b[n] (W row-major [N, K], float32 or bf16 bits),
// block (16, 16), grid (ceil(N/16), ceil(M/16)); every output summed in index order (as ReferenceBackend).
template <typename W> __device__ __forceinline__ float wload(const W* p, long i);
template <> __device__ __forceinline__ float wload<float>(const float* p, long i) { return p[i]; }
template <> __device__ __forceinline__ float wload<u16>(const u16* p, long i) { return bf16_float(p[i]); }

template <typename W>
__device__ void linear_tiled(const float* x, int M, int K, long ldx, const W* w, int N, const float* bias, float* y, long ldy) {
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

extern "C" __global__ void pi0_linear_f32w(const float* x, int M, int K, long ldx, const float* w, int N,
                                           const float* bias, float* y, long ldy) {
    linear_tiled<float>(x, M, K, ldx, w, N, bias, y, ldy);
}
extern "C" __global__ void pi0_linear_bf16w(const float* x, int M, int K, long ldx, const u16* w, int N,
                                            const float* bias, float* y, long ldy) {
    linear_tiled<u16>(x, M, K, ldx, w, N, bias, y, ldy);
}
"""#
}
