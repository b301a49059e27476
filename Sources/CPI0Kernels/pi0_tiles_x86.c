// x86 SIMD register tiles (AVX2+FMA, AVX-512, AVX-512 BF16), the peak-FMA loop and a vector softmax row.
// Each function carries its own target attribute; pi0_kernels.c calls them only after
// __builtin_cpu_supports says the CPU has the instructions.
//
// Tile shape (AVX2): 6 rows x 16 columns = 12 ymm accumulators + 2 for the B row + 1 broadcast (15 of 16).
// Tile shape (AVX-512): 6 rows x 64 columns = 24 zmm accumulators + 4 for the B row + 1 broadcast (29 of 32).
// bf16 weights stay bf16 in the panel and are widened in the loop: bf16 -> f32 is (uint32)b << 16.
#include "pi0_internal.h"
#include "pi0_numeric.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

// ---------------------------------------------------------------------------------------------------------
// AVX2 + FMA, 6 x 16

enum { A2_MR = 6, A2_NR = 16 };

AVX2 INLINE void avx2_tile(const int bf16, size_t kc, const void *av, size_t mr, const void *b,
                           const void *b_next, float *c, size_t ldc, size_t nr, int first, int last,
                           float alpha, const float *bias) {
    const float *a6 = (const float *)av;
    const int partial = mr < A2_MR || nr < A2_NR;
    if (!partial && !first)
        for (int r = 0; r < A2_MR; r++) { // C is added after the K loop: fetch it meanwhile
            _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + A2_NR - 1), _MM_HINT_T0);
        }
    __m256 acc[A2_MR][2];
    for (int r = 0; r < A2_MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const size_t bstride = A2_NR * (bf16 ? 2 : 4); // bytes of one K row of the panel
    const char *pf = b_next ? (const char *)b_next : (const char *)b; // branch-free: re-touching b is harmless
#pragma clang loop unroll_count(4)
    for (size_t k = 0; k < kc; k++) {
        __m256 b0, b1;
        if (bf16) {
            const uint16_t *bh = (const uint16_t *)b + k * A2_NR;
            b0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)bh)), 16));
            b1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(bh + 8))), 16));
        } else {
            b0 = _mm256_load_ps((const float *)b + k * A2_NR);
            b1 = _mm256_load_ps((const float *)b + k * A2_NR + 8);
        }
        _mm_prefetch(pf + k * bstride, _MM_HINT_T1);
        for (int r = 0; r < A2_MR; r++) {
            const __m256 a = _mm256_broadcast_ss(a6 + k * A2_MR + r);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    // Epilogue: y = (previous K blocks' partial sum + this block's), then alpha and bias on the last block.
    float tmp[A2_MR * A2_NR] __attribute__((aligned(32)));
    float *cc = c;
    size_t ldcc = ldc;
    if (partial) { // work on a full-size copy; only the valid part is read and written back
        memset(tmp, 0, sizeof tmp);
        if (!first)
            for (size_t r = 0; r < mr; r++) memcpy(tmp + r * A2_NR, c + r * ldc, nr * sizeof(float));
        cc = tmp;
        ldcc = A2_NR;
    }
    const __m256 va = _mm256_set1_ps(alpha);
    for (int r = 0; r < A2_MR; r++) {
        __m256 v0 = acc[r][0], v1 = acc[r][1];
        if (!first) {
            v0 = _mm256_add_ps(_mm256_loadu_ps(cc + r * ldcc), v0);
            v1 = _mm256_add_ps(_mm256_loadu_ps(cc + r * ldcc + 8), v1);
        }
        if (last && alpha != 1.0f) { v0 = _mm256_mul_ps(v0, va); v1 = _mm256_mul_ps(v1, va); }
        if (last && bias) { v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias)); v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8)); }
        _mm256_storeu_ps(cc + r * ldcc, v0);
        _mm256_storeu_ps(cc + r * ldcc + 8, v1);
    }
    if (partial)
        for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, tmp + r * A2_NR, nr * sizeof(float));
}

AVX2 void pi0k_tile_avx2_f32(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                             size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx2_tile(0, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}
AVX2 void pi0k_tile_avx2_bf16(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                              size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx2_tile(1, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}

AVX2 float pi0k_peak_fma_avx2(uint64_t iters) {
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.999999f), d = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (uint64_t it = 0; it < iters; it++) {
        a[0] = _mm256_fmadd_ps(a[0], m, d); a[1] = _mm256_fmadd_ps(a[1], m, d);
        a[2] = _mm256_fmadd_ps(a[2], m, d); a[3] = _mm256_fmadd_ps(a[3], m, d);
        a[4] = _mm256_fmadd_ps(a[4], m, d); a[5] = _mm256_fmadd_ps(a[5], m, d);
        a[6] = _mm256_fmadd_ps(a[6], m, d); a[7] = _mm256_fmadd_ps(a[7], m, d);
        a[8] = _mm256_fmadd_ps(a[8], m, d); a[9] = _mm256_fmadd_ps(a[9], m, d);
        a[10] = _mm256_fmadd_ps(a[10], m, d); a[11] = _mm256_fmadd_ps(a[11], m, d);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]));
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

AVX2 void pi0k_softmax_row_avx2(float *s, size_t cols, const float *mask) {
    size_t j = 0;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (; j + 8 <= cols; j += 8) {
        __m256 v = _mm256_loadu_ps(s + j);
        if (mask) v = _mm256_add_ps(v, _mm256_loadu_ps(mask + j));
        _mm256_storeu_ps(s + j, v);
        vmax = _mm256_max_ps(vmax, v);
    }
    float mx, lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    mx = lanes[0];
    for (int i = 1; i < 8; i++) mx = lanes[i] > mx ? lanes[i] : mx;
    for (; j < cols; j++) {
        if (mask) s[j] += mask[j];
        if (s[j] > mx) mx = s[j];
    }
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= cols; j += 8) {
        const __m256 e = pi0k_exp8_neg(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    _mm256_storeu_ps(lanes, vsum);
    float sum = 0.0f;
    for (int i = 0; i < 8; i++) sum += lanes[i];
    for (; j < cols; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    const float inv = 1.0f / sum;
    const __m256 vi = _mm256_set1_ps(inv);
    for (j = 0; j + 8 <= cols; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), vi));
    for (; j < cols; j++) s[j] *= inv;
}

// ---------------------------------------------------------------------------------------------------------
// AVX-512, 6 x 64. Same structure as the AVX2 tile, arrays instead of named registers (clang fully unrolls
// the constant-trip loops and keeps acc[][] in registers). First run on a Zen 4 (2026-12-03), where a
// 12 x 32 tile reached 80-85 % of the FMA peak on one core against 91-94 % for 6 x 64 (C harness,
// docs/PERFORMANCE_KERNELS.md): half the broadcasts per FMA, and M = 51 (the expert) wastes 3 of 54 rows
// instead of 9 of 60. Zen 4 runs a zmm FMA as two 256-bit halves, so its fp32 peak equals AVX2's; the gain
// over AVX2 is the vdpbf16ps path below (twice the multiply-adds per instruction).

enum { A5_MR = 6, A5_NR = 64 };

#define A5_TILE_PROLOGUE(MRV)                                                                                   \
    const int partial = mr < MRV || nr < A5_NR;                                                           \
    if (!partial && !first)                                                                                 \
        for (int r = 0; r < MRV; r++) { /* C is added after the K loop: fetch its four lines meanwhile */  \
            for (int q = 0; q < A5_NR; q += 16) _mm_prefetch((const char *)(c + r * ldc + q), _MM_HINT_T0);  \
        }                                                                                                   \
    __m512 acc[MRV][4];                                                                                   \
    for (int r = 0; r < MRV; r++) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();    \
    const char *pf = b_next ? (const char *)b_next : (const char *)b;

#define A5_TILE_EPILOGUE(MRV)                                                                                    \
    float tmp[MRV * A5_NR] __attribute__((aligned(64)));                                                  \
    float *cc = c;                                                                                          \
    size_t ldcc = ldc;                                                                                      \
    if (partial) {                                                                                          \
        memset(tmp, 0, sizeof tmp);                                                                         \
        if (!first)                                                                                         \
            for (size_t r = 0; r < mr; r++) memcpy(tmp + r * A5_NR, c + r * ldc, nr * sizeof(float));       \
        cc = tmp;                                                                                           \
        ldcc = A5_NR;                                                                                       \
    }                                                                                                       \
    const __m512 va = _mm512_set1_ps(alpha);                                                                \
    for (int r = 0; r < MRV; r++)                                                                         \
        for (int q = 0; q < 4; q++) {                                                                       \
            __m512 v = acc[r][q];                                                                           \
            if (!first) v = _mm512_add_ps(_mm512_loadu_ps(cc + r * ldcc + 16 * q), v);                      \
            if (last && alpha != 1.0f) v = _mm512_mul_ps(v, va);                                            \
            if (last && bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + 16 * q));                         \
            _mm512_storeu_ps(cc + r * ldcc + 16 * q, v);                                                    \
        }                                                                                                   \
    if (partial)                                                                                            \
        for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, tmp + r * A5_NR, nr * sizeof(float));

AVX512 INLINE void avx512_tile(const int bf16, size_t kc, const void *av, size_t mr,
                               const void *b, const void *b_next, float *c, size_t ldc, size_t nr, int first, int last,
                               float alpha, const float *bias) {
    A5_TILE_PROLOGUE(A5_MR)
    const float *a6 = (const float *)av;
    for (size_t k = 0; k < kc; k++) {
        __m512 bv[4];
        for (int q = 0; q < 4; q++) {
            if (bf16) {
                const uint16_t *bh = (const uint16_t *)b + k * A5_NR + 16 * q;
                bv[q] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)bh)), 16));
            } else {
                bv[q] = _mm512_loadu_ps((const float *)b + k * A5_NR + 16 * q);
            }
        }
        _mm_prefetch(pf + k * A5_NR * (bf16 ? 2 : 4), _MM_HINT_T1);
        _mm_prefetch(pf + k * A5_NR * (bf16 ? 2 : 4) + 64, _MM_HINT_T1);
        for (int r = 0; r < A5_MR; r++) {
            const __m512 a = _mm512_set1_ps(a6[k * A5_MR + r]);
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(a, bv[q], acc[r][q]);
        }
    }
    A5_TILE_EPILOGUE(A5_MR)
}

AVX512 void pi0k_tile_avx512_f32(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                                 size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512_tile(0, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}
AVX512 void pi0k_tile_avx512_bf16(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                                  size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512_tile(1, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}

// vdpbf16ps: acc[j] += x[2i]*w[2i][j] + x[2i+1]*w[2i+1][j], x rounded to bf16 beforehand. The panel holds
// K pairs interleaved per column (see pi0k_pack_bf16); kc is even. A holds bf16 pairs per row. MRV rows:
// 6 (the default) or 5 (`PI0K_PATH_AVX512BF16_MR5`: M = 50, the action expert's chunk, fills 10 tiles of 5
// exactly instead of 9 of 6 with 4 rows of padding); the same packed weights serve both.
AVX512BF16 INLINE void avx512bf16_dot_tile(const int MRV, size_t kc, const void *av, size_t mr, const void *b,
                                           const void *b_next, float *c, size_t ldc, size_t nr, int first, int last,
                                           float alpha, const float *bias) {
    A5_TILE_PROLOGUE(MRV)
    const uint16_t *a6 = (const uint16_t *)av;
    const uint16_t *bh = (const uint16_t *)b;
    for (size_t k = 0; k < kc; k += 2) {
        __m512i bq[4];
        for (int q = 0; q < 4; q++) bq[q] = _mm512_loadu_si512((const void *)(bh + k * A5_NR + 32 * q));
        _mm_prefetch(pf + k * A5_NR * 2, _MM_HINT_T1); // one of the pair row's 4 lines (pi0k_gemm spreads them)
        for (int r = 0; r < MRV; r++) {
            uint32_t pair;
            memcpy(&pair, a6 + k * MRV + 2 * r, 4); // pair (k, k+1) of row r
            const __m512i a = _mm512_set1_epi32((int)pair);
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], (__m512bh)a, (__m512bh)bq[q]);
        }
    }
    A5_TILE_EPILOGUE(MRV)
}

AVX512BF16 void pi0k_tile_avx512bf16_dot(size_t kc, const void *av, size_t mr, const void *b, const void *b_next, float *c,
                                         size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512bf16_dot_tile(6, kc, av, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}
AVX512BF16 void pi0k_tile_avx512bf16_dot5(size_t kc, const void *av, size_t mr, const void *b, const void *b_next, float *c,
                                          size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512bf16_dot_tile(5, kc, av, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}

// One row of fp32 to bf16, round to nearest even, exactly as the scalar pi0k_bf16_bits (pi0_numeric.h)
// (NaN stays a quiet NaN; integer arithmetic, so no DAZ/FTZ): 16 values per step, the tail scalar.
AVX512 void pi0k_round_row_bf16_avx512(const float *x, size_t k, uint16_t *dst) {
    size_t i = 0;
    for (; i + 16 <= k; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(pi0k_bf16_bits_16(_mm512_loadu_si512((const void *)(x + i)))));
    for (; i < k; i++) dst[i] = pi0k_bf16_bits(x[i]);
}

AVX512 float pi0k_peak_fma_avx512(uint64_t iters) {
    __m512 a[12];
    const __m512 m = _mm512_set1_ps(0.999999f), d = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (uint64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, d);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

// ---------------------------------------------------------------------------------------------------------
// Packing six rows of fp32 x into an AVX2 micro-panel: dst[k*6 + r] = x[r*ldx + k], k < kc. Eight
// columns at a time: load 8 floats of each row (rows 6 and 7 are zero), transpose 8 x 8 in registers and
// store the eight 6-float columns with overlapping 8-float stores (each store's last two lanes are
// overwritten by the next; the final column of a group uses a masked store so nothing past dst[kc*6]
// is written). `next` (may be NULL): the next tile's first row, prefetched meanwhile (stride ldx).

AVX2 void pi0k_pack_a6_avx2(const float *x, size_t ldx, size_t kc, float *dst, const float *next) {
    const __m256 z = _mm256_setzero_ps();
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    size_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        if (next && (k & 15) == 0)
            for (int r = 0; r < 6; r++) _mm_prefetch((const char *)(next + r * ldx + k), _MM_HINT_T0);
        const __m256 r0 = _mm256_loadu_ps(x + k), r1 = _mm256_loadu_ps(x + ldx + k);
        const __m256 r2 = _mm256_loadu_ps(x + 2 * ldx + k), r3 = _mm256_loadu_ps(x + 3 * ldx + k);
        const __m256 r4 = _mm256_loadu_ps(x + 4 * ldx + k), r5 = _mm256_loadu_ps(x + 5 * ldx + k);
        const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s4 = _mm256_shuffle_ps(t4, z, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, z, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s6 = _mm256_shuffle_ps(t5, z, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, z, _MM_SHUFFLE(3, 2, 3, 2));
        float *d = dst + k * 6;
        _mm256_storeu_ps(d, _mm256_permute2f128_ps(s0, s4, 0x20));
        _mm256_storeu_ps(d + 6, _mm256_permute2f128_ps(s1, s5, 0x20));
        _mm256_storeu_ps(d + 12, _mm256_permute2f128_ps(s2, s6, 0x20));
        _mm256_storeu_ps(d + 18, _mm256_permute2f128_ps(s3, s7, 0x20));
        _mm256_storeu_ps(d + 24, _mm256_permute2f128_ps(s0, s4, 0x31));
        _mm256_storeu_ps(d + 30, _mm256_permute2f128_ps(s1, s5, 0x31));
        _mm256_storeu_ps(d + 36, _mm256_permute2f128_ps(s2, s6, 0x31));
        _mm256_maskstore_ps(d + 42, six, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
    for (; k < kc; k++)
        for (int r = 0; r < 6; r++) dst[k * 6 + r] = x[r * ldx + k];
}

#endif // __x86_64__
