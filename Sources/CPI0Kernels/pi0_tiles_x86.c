// x86 SIMD register tiles (AVX2+FMA, AVX-512, AVX-512 BF16), the peak-FMA loop and a vector softmax row.
// Each function carries its own target attribute; pi0_kernels.c calls them only after
// __builtin_cpu_supports says the CPU has the instructions.
//
// Tile shape (AVX2): 6 rows x 16 columns = 12 ymm accumulators + 2 for the B row + 1 broadcast (15 of 16).
// Tile shape (AVX-512): 12 rows x 32 columns = 24 zmm accumulators + 2 + 1 (27 of 32).
// bf16 weights stay bf16 in the panel and are widened in the loop: bf16 -> f32 is (uint32)b << 16.
#include "pi0_internal.h"
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
                           float *c, size_t ldc, size_t nr, int first, int last, float alpha,
                           const float *bias) {
    float tmp[A2_MR * A2_NR] __attribute__((aligned(32)));
    const int partial = mr < A2_MR || nr < A2_NR;
    float *cc = c;
    size_t ldcc = ldc;
    if (partial) { // compute on a full-size copy; only the valid part is read and written back
        memset(tmp, 0, sizeof tmp);
        if (!first)
            for (size_t r = 0; r < mr; r++) memcpy(tmp + r * A2_NR, c + r * ldc, nr * sizeof(float));
        cc = tmp;
        ldcc = A2_NR;
    }
    const float *a6 = (const float *)av;
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (first) {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    } else {
        c00 = _mm256_loadu_ps(cc + 0 * ldcc); c01 = _mm256_loadu_ps(cc + 0 * ldcc + 8);
        c10 = _mm256_loadu_ps(cc + 1 * ldcc); c11 = _mm256_loadu_ps(cc + 1 * ldcc + 8);
        c20 = _mm256_loadu_ps(cc + 2 * ldcc); c21 = _mm256_loadu_ps(cc + 2 * ldcc + 8);
        c30 = _mm256_loadu_ps(cc + 3 * ldcc); c31 = _mm256_loadu_ps(cc + 3 * ldcc + 8);
        c40 = _mm256_loadu_ps(cc + 4 * ldcc); c41 = _mm256_loadu_ps(cc + 4 * ldcc + 8);
        c50 = _mm256_loadu_ps(cc + 5 * ldcc); c51 = _mm256_loadu_ps(cc + 5 * ldcc + 8);
    }
    const float *bf = (const float *)b;
    const uint16_t *bh = (const uint16_t *)b;
    for (size_t k = 0; k < kc; k++) {
        __m256 b0, b1;
        if (bf16) {
            b0 = _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(bh + k * A2_NR))), 16));
            b1 = _mm256_castsi256_ps(_mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(bh + k * A2_NR + 8))), 16));
        } else {
            b0 = _mm256_load_ps(bf + k * A2_NR);
            b1 = _mm256_load_ps(bf + k * A2_NR + 8);
        }
        __m256 a;
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(a6 + k * A2_MR + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    if (last) {
        if (alpha != 1.0f) {
            const __m256 va = _mm256_set1_ps(alpha);
            c00 = _mm256_mul_ps(c00, va); c01 = _mm256_mul_ps(c01, va); c10 = _mm256_mul_ps(c10, va);
            c11 = _mm256_mul_ps(c11, va); c20 = _mm256_mul_ps(c20, va); c21 = _mm256_mul_ps(c21, va);
            c30 = _mm256_mul_ps(c30, va); c31 = _mm256_mul_ps(c31, va); c40 = _mm256_mul_ps(c40, va);
            c41 = _mm256_mul_ps(c41, va); c50 = _mm256_mul_ps(c50, va); c51 = _mm256_mul_ps(c51, va);
        }
        if (bias) {
            const __m256 v0 = _mm256_loadu_ps(bias), v1 = _mm256_loadu_ps(bias + 8);
            c00 = _mm256_add_ps(c00, v0); c01 = _mm256_add_ps(c01, v1); c10 = _mm256_add_ps(c10, v0);
            c11 = _mm256_add_ps(c11, v1); c20 = _mm256_add_ps(c20, v0); c21 = _mm256_add_ps(c21, v1);
            c30 = _mm256_add_ps(c30, v0); c31 = _mm256_add_ps(c31, v1); c40 = _mm256_add_ps(c40, v0);
            c41 = _mm256_add_ps(c41, v1); c50 = _mm256_add_ps(c50, v0); c51 = _mm256_add_ps(c51, v1);
        }
    }
    if (partial) { // all six rows of tmp are writable; rows past mr are dropped below
        _mm256_storeu_ps(cc + 0 * ldcc, c00); _mm256_storeu_ps(cc + 0 * ldcc + 8, c01);
        _mm256_storeu_ps(cc + 1 * ldcc, c10); _mm256_storeu_ps(cc + 1 * ldcc + 8, c11);
        _mm256_storeu_ps(cc + 2 * ldcc, c20); _mm256_storeu_ps(cc + 2 * ldcc + 8, c21);
        _mm256_storeu_ps(cc + 3 * ldcc, c30); _mm256_storeu_ps(cc + 3 * ldcc + 8, c31);
        _mm256_storeu_ps(cc + 4 * ldcc, c40); _mm256_storeu_ps(cc + 4 * ldcc + 8, c41);
        _mm256_storeu_ps(cc + 5 * ldcc, c50); _mm256_storeu_ps(cc + 5 * ldcc + 8, c51);
        for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, tmp + r * A2_NR, nr * sizeof(float));
    } else {
        _mm256_storeu_ps(c + 0 * ldc, c00); _mm256_storeu_ps(c + 0 * ldc + 8, c01);
        _mm256_storeu_ps(c + 1 * ldc, c10); _mm256_storeu_ps(c + 1 * ldc + 8, c11);
        _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);
        _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);
        _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);
        _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);
    }
}

AVX2 void pi0k_tile_avx2_f32(size_t kc, const void *x, size_t mr, const void *b, float *c,
                             size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx2_tile(0, kc, x, mr, b, c, ldc, nr, first, last, alpha, bias);
}
AVX2 void pi0k_tile_avx2_bf16(size_t kc, const void *x, size_t mr, const void *b, float *c,
                              size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx2_tile(1, kc, x, mr, b, c, ldc, nr, first, last, alpha, bias);
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

// exp(x) for x <= 0 (softmax arguments), Cephes expf polynomial (~1-2 ulp); 0 below -87.3.
AVX2 INLINE __m256 exp_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
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
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
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
// AVX-512, 12 x 32 (NOT run on the development machine, which has no AVX-512; PI0CPU self-checks every
// path against the portable one before using it). Same structure as the AVX2 tile, arrays instead of
// named registers (clang fully unrolls the constant-trip row loops and keeps acc[][] in registers).

enum { A5_MR = 12, A5_NR = 32 };

#define A5_TILE_PROLOGUE                                                                                    \
    float tmp[A5_MR * A5_NR] __attribute__((aligned(64)));                                                  \
    const int partial = mr < A5_MR || nr < A5_NR;                                                           \
    float *cc = c;                                                                                          \
    size_t ldcc = ldc;                                                                                      \
    if (partial) {                                                                                          \
        memset(tmp, 0, sizeof tmp);                                                                         \
        if (!first)                                                                                         \
            for (size_t r = 0; r < mr; r++) memcpy(tmp + r * A5_NR, c + r * ldc, nr * sizeof(float));       \
        cc = tmp;                                                                                           \
        ldcc = A5_NR;                                                                                       \
    }                                                                                                       \
    __m512 acc[A5_MR][2];                                                                                   \
    for (int r = 0; r < A5_MR; r++) {                                                                       \
        acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(cc + r * ldcc);                          \
        acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(cc + r * ldcc + 16);                     \
    }

#define A5_TILE_EPILOGUE                                                                                    \
    if (last) {                                                                                             \
        const __m512 va = _mm512_set1_ps(alpha);                                                            \
        for (int r = 0; r < A5_MR; r++) {                                                                   \
            if (alpha != 1.0f) {                                                                            \
                acc[r][0] = _mm512_mul_ps(acc[r][0], va);                                                   \
                acc[r][1] = _mm512_mul_ps(acc[r][1], va);                                                   \
            }                                                                                               \
            if (bias) {                                                                                     \
                acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(bias));                                \
                acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(bias + 16));                           \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    if (partial) {                                                                                          \
        for (int r = 0; r < A5_MR; r++) {                                                                   \
            _mm512_storeu_ps(cc + r * ldcc, acc[r][0]);                                                     \
            _mm512_storeu_ps(cc + r * ldcc + 16, acc[r][1]);                                                \
        }                                                                                                   \
        for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, tmp + r * A5_NR, nr * sizeof(float));           \
    } else {                                                                                                \
        for (int r = 0; r < A5_MR; r++) {                                                                   \
            _mm512_storeu_ps(c + r * ldc, acc[r][0]);                                                       \
            _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);                                                  \
        }                                                                                                   \
    }

AVX512 INLINE void avx512_tile(const int bf16, size_t kc, const void *av, size_t mr,
                               const void *b, float *c, size_t ldc, size_t nr, int first, int last,
                               float alpha, const float *bias) {
    A5_TILE_PROLOGUE
    const float *a12 = (const float *)av;
    for (size_t k = 0; k < kc; k++) {
        __m512 b0, b1;
        if (bf16) {
            const uint16_t *bh = (const uint16_t *)b + k * A5_NR;
            b0 = _mm512_castsi512_ps(_mm512_slli_epi32(
                _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)bh)), 16));
            b1 = _mm512_castsi512_ps(_mm512_slli_epi32(
                _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(bh + 16))), 16));
        } else {
            b0 = _mm512_loadu_ps((const float *)b + k * A5_NR);
            b1 = _mm512_loadu_ps((const float *)b + k * A5_NR + 16);
        }
        for (int r = 0; r < A5_MR; r++) {
            const __m512 a = _mm512_set1_ps(a12[k * A5_MR + r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    A5_TILE_EPILOGUE
}

AVX512 void pi0k_tile_avx512_f32(size_t kc, const void *x, size_t mr, const void *b, float *c,
                                 size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512_tile(0, kc, x, mr, b, c, ldc, nr, first, last, alpha, bias);
}
AVX512 void pi0k_tile_avx512_bf16(size_t kc, const void *x, size_t mr, const void *b, float *c,
                                  size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    avx512_tile(1, kc, x, mr, b, c, ldc, nr, first, last, alpha, bias);
}

// vdpbf16ps: acc[j] += x[2i]*w[2i][j] + x[2i+1]*w[2i+1][j], x rounded to bf16 beforehand. The panel holds
// K pairs interleaved per column (see pi0k_pack_bf16); kc is even. A holds bf16 pairs per row.
AVX512BF16 void pi0k_tile_avx512bf16_dot(size_t kc, const void *av, size_t mr, const void *b,
                                         float *c, size_t ldc, size_t nr, int first, int last, float alpha,
                                         const float *bias) {
    A5_TILE_PROLOGUE
    const uint16_t *a12 = (const uint16_t *)av;
    const uint16_t *bh = (const uint16_t *)b;
    for (size_t k = 0; k < kc; k += 2) {
        const __m512i b0 = _mm512_loadu_si512((const void *)(bh + k * A5_NR));
        const __m512i b1 = _mm512_loadu_si512((const void *)(bh + k * A5_NR + 32));
        for (int r = 0; r < A5_MR; r++) {
            uint32_t pair;
            memcpy(&pair, a12 + k * A5_MR + 2 * r, 4); // pair (k, k+1) of row r
            const __m512i a = _mm512_set1_epi32((int)pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)a, (__m512bh)b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)a, (__m512bh)b1);
        }
    }
    A5_TILE_EPILOGUE
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

#endif // __x86_64__
