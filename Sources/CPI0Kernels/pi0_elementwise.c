// Elementwise kernels (see include/pi0_elementwise.h). The AVX2 versions use a Cephes-style expf
// polynomial (≤ 2 ulp); sums are accumulated in double per row for the norms, as the plain Swift
// reference does, so both agree to float32 rounding.
#include "pi0_elementwise.h"
#include "pi0_numeric.h"
#pragma clang fp contract(off)
#include <math.h>
#include <stdint.h>
#include <string.h>

static const float kBeta2 = 2.0f * 0.7978845608028654f;   // 2·sqrt(2/π)
static const float kKappa = 0.044715f;

static inline float gelu_scalar(float x) {
    float inner = kBeta2 * (x + kKappa * x * x * x);
    return x / (1.0f + expf(-inner));
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

static int have_avx2(void) {
    static int cached = -1;
    if (cached < 0) { __builtin_cpu_init(); cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    return cached;
}

// exp(x), Cephes expf: range reduction by ln 2, degree-5 polynomial; clamps to [-88.4, 88.4].
AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    __m256 z = _mm256_mul_ps(x, x);
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

AVX2 static inline __m256 gelu8(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 inner = _mm256_mul_ps(_mm256_set1_ps(kBeta2), _mm256_fmadd_ps(_mm256_set1_ps(kKappa), x3, x));
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), inner));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2 static void gelu_mul_avx2(const float *g, const float *u, float *o, size_t n, int rb) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = gelu8(_mm256_loadu_ps(g + i));
        if (rb) a = pi0k_round_bf16_8(a);
        __m256 p = _mm256_mul_ps(a, _mm256_loadu_ps(u + i));
        if (rb) p = pi0k_round_bf16_8(p);
        _mm256_storeu_ps(o + i, p);
    }
    for (; i < n; i++) {
        float a = gelu_scalar(g[i]);
        if (rb) a = pi0k_round_bf16(a);
        float p = a * u[i];
        o[i] = rb ? pi0k_round_bf16(p) : p;
    }
}

AVX2 static void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_scalar(x[i]);
}

AVX2 static void silu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}
#endif

void pi0e_gelu_tanh_mul(const float *gate, const float *up, float *out, size_t n, int rb) {
#if defined(__x86_64__)
    if (have_avx2()) { gelu_mul_avx2(gate, up, out, n, rb); return; }
#endif
    for (size_t i = 0; i < n; i++) {
        float a = gelu_scalar(gate[i]);
        if (rb) a = pi0k_round_bf16(a);
        float p = a * up[i];
        out[i] = rb ? pi0k_round_bf16(p) : p;
    }
}

void pi0e_gelu_tanh(float *x, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) { gelu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = gelu_scalar(x[i]);
}

void pi0e_silu(float *x, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) { silu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

#if defined(__x86_64__)
AVX2 static void round_rows_avx2(float *x, size_t rows, size_t width, size_t ld) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        size_t i = 0;
        for (; i + 8 <= width; i += 8) _mm256_storeu_ps(row + i, pi0k_round_bf16_8(_mm256_loadu_ps(row + i)));
        for (; i < width; i++) row[i] = pi0k_round_bf16(row[i]);
    }
}
#endif

#if defined(__x86_64__)
AVX2 static void bf16_scores_avx2(float *x, size_t rows, size_t cols, size_t ld, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * ld;
        size_t i = 0;
        for (; i + 8 <= cols; i += 8)
            _mm256_storeu_ps(row + i, pi0k_round_bf16_8(_mm256_mul_ps(pi0k_round_bf16_8(_mm256_loadu_ps(row + i)), vs)));
        for (; i < cols; i++) row[i] = pi0k_round_bf16(pi0k_round_bf16(row[i]) * scale);
    }
}
#endif

void pi0e_bf16_scores(float *x, size_t rows, size_t cols, size_t ld, float scale) {
#if defined(__x86_64__)
    if (have_avx2()) { bf16_scores_avx2(x, rows, cols, ld, scale); return; }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < cols; i++) x[r * ld + i] = pi0k_round_bf16(pi0k_round_bf16(x[r * ld + i]) * scale);
}

void pi0e_round_bf16_rows(float *x, size_t rows, size_t width, size_t ld) {
#if defined(__x86_64__)
    if (have_avx2()) { round_rows_avx2(x, rows, width, ld); return; }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < width; i++) x[r * ld + i] = pi0k_round_bf16(x[r * ld + i]);
}

// π0.5's adaptive RMSNorm ops, ReferenceOps.adaptiveModulate / gatedAdd's float32 operations in their
// order (contraction is off in this file), 8 lanes at a time; columns [i0, w) of one row in plain C (the
// SIMD loops' tails and the portable path).
static void modulate_row(float *row, const float *scale, const float *shift, size_t i0, size_t w, int rb) {
    for (size_t i = i0; i < w; i++) {
        const float y = row[i] * (1.0f + scale[i]) + shift[i];
        row[i] = rb ? pi0k_round_bf16(y) : y;
    }
}

static void gated_add_row(float *xr, const float *yr, const float *gate, size_t i0, size_t w, int rb) {
    for (size_t i = i0; i < w; i++)
        xr[i] = rb ? pi0k_round_bf16(xr[i] + pi0k_round_bf16(yr[i] * pi0k_round_bf16(gate[i]))) : xr[i] + yr[i] * gate[i];
}

#if defined(__x86_64__)
AVX2 static void modulate_avx2(float *x, size_t rows, size_t w, const float *scale, const float *shift, int rb) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * w;
        size_t i = 0;
        for (; i + 8 <= w; i += 8) {
            const __m256 g = _mm256_add_ps(one, _mm256_loadu_ps(scale + i));
            __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(row + i), g), _mm256_loadu_ps(shift + i));
            if (rb) y = pi0k_round_bf16_8(y);
            _mm256_storeu_ps(row + i, y);
        }
        modulate_row(row, scale, shift, i, w, rb);
    }
}

AVX2 static void gated_add_avx2(float *x, const float *y, size_t rows, size_t w, const float *gate, int rb) {
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * w;
        const float *yr = y + r * w;
        size_t i = 0;
        for (; i + 8 <= w; i += 8) {
            __m256 g = _mm256_loadu_ps(gate + i);
            if (rb) g = pi0k_round_bf16_8(g);
            __m256 p = _mm256_mul_ps(_mm256_loadu_ps(yr + i), g);
            if (rb) p = pi0k_round_bf16_8(p);
            __m256 s = _mm256_add_ps(_mm256_loadu_ps(xr + i), p);
            if (rb) s = pi0k_round_bf16_8(s);
            _mm256_storeu_ps(xr + i, s);
        }
        gated_add_row(xr, yr, gate, i, w, rb);
    }
}
#endif

void pi0e_adaptive_modulate(float *x, size_t rows, size_t width, const float *scale, const float *shift, int rb) {
#if defined(__x86_64__)
    if (have_avx2()) { modulate_avx2(x, rows, width, scale, shift, rb); return; }
#endif
    for (size_t r = 0; r < rows; r++) modulate_row(x + r * width, scale, shift, 0, width, rb);
}

void pi0e_gated_add(float *x, const float *y, size_t rows, size_t width, const float *gate, int rb) {
#if defined(__x86_64__)
    if (have_avx2()) { gated_add_avx2(x, y, rows, width, gate, rb); return; }
#endif
    for (size_t r = 0; r < rows; r++) gated_add_row(x + r * width, y + r * width, gate, 0, width, rb);
}

void pi0e_add(float *x, const float *y, size_t n, int rb) {
    if (rb) { for (size_t i = 0; i < n; i++) x[i] = pi0k_round_bf16(x[i] + y[i]); }
    else { for (size_t i = 0; i < n; i++) x[i] += y[i]; }
}

// Columns [i0, width) of a normalised row: y = (x·rs)·(1 + w) (w NULL: w = 0), rounded when asked.
static void rmsnorm_scale_row(const float *xr, float *yr, const float *w, float rs, size_t i0, size_t width, int rb) {
    for (size_t i = i0; i < width; i++) {
        const float y = (xr[i] * rs) * (1.0f + (w ? w[i] : 0.0f));
        yr[i] = rb ? pi0k_round_bf16(y) : y;
    }
}

#if defined(__x86_64__)
// Σx² in double over 8 lanes and two accumulators (another order than the scalar loop: the op table's
// rmsNorm bound), then the row scaled in the scalar loop's float32 operations.
AVX2 static void rmsnorm_avx2(const float *x, size_t rows, size_t width, const float *w, float eps, int rb, float *out) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = out + r * width;
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        size_t i = 0;
        for (; i + 8 <= width; i += 8) {
            const __m256 v = _mm256_loadu_ps(xr + i);
            const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            a0 = _mm256_add_pd(a0, _mm256_mul_pd(lo, lo));
            a1 = _mm256_add_pd(a1, _mm256_mul_pd(hi, hi));
        }
        double lanes[4];
        _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
        double sq = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        for (; i < width; i++) sq += (double)xr[i] * (double)xr[i];
        const float variance = (float)(sq / (double)width);
        const float rs = 1.0f / sqrtf(variance + eps);
        const __m256 vrs = _mm256_set1_ps(rs);
        for (i = 0; i + 8 <= width; i += 8) {
            const __m256 g = w ? _mm256_add_ps(one, _mm256_loadu_ps(w + i)) : one;
            __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vrs), g);
            if (rb) y = pi0k_round_bf16_8(y);
            _mm256_storeu_ps(yr + i, y);
        }
        rmsnorm_scale_row(xr, yr, w, rs, i, width, rb);
    }
}
#endif

void pi0e_rmsnorm(const float *x, size_t rows, size_t width, const float *w, float eps, int rb, float *out) {
#if defined(__x86_64__)
    if (have_avx2()) { rmsnorm_avx2(x, rows, width, w, eps, rb, out); return; }
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = out + r * width;
        double sq = 0;
        for (size_t i = 0; i < width; i++) sq += (double)xr[i] * (double)xr[i];
        float variance = (float)(sq / (double)width);
        float rs = 1.0f / sqrtf(variance + eps);
        rmsnorm_scale_row(xr, yr, w, rs, 0, width, rb);
    }
}

void pi0e_layernorm(const float *x, size_t rows, size_t width, const float *w, const float *b, float eps, float *out) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = out + r * width;
        double sum = 0;
        for (size_t i = 0; i < width; i++) sum += xr[i];
        double mean = sum / (double)width, sq = 0;
        for (size_t i = 0; i < width; i++) { double d = xr[i] - mean; sq += d * d; }
        float rstd = (float)(1.0 / sqrt(sq / (double)width + (double)eps));
        float meanf = (float)mean;
        for (size_t i = 0; i < width; i++) yr[i] = (xr[i] - meanf) * rstd * w[i] + b[i];
    }
}
