// Rotary embedding (half-split, "rotate_half"), vectorised: the same per-element formula as
// ReferenceOps.applyRoPE (Sources/PI0Tensor/ReferenceOps.swift), so the results are bit-identical:
//   out[i]        = lo·c[i] + (−hi)·s[i]          (lo = x[i], hi = x[i + half])
//   out[i + half] = hi·c[i + half] + lo·s[i + half]
// each product and the sum rounded once in float32 (no fused multiply-add: contraction is off below), and in
// bf16 mode each of the three results rounded to bf16 (nearest-even, NaN kept), as three PyTorch bf16 ops.
#include "pi0_elementwise.h"
#include "pi0_kernels.h"
#include "pi0_numeric.h"
#pragma clang fp contract(off)
#include <stdint.h>
#include <string.h>

static void rope_scalar(float *v, const float *c, const float *s, size_t i0, size_t half, int rb) {
    for (size_t i = i0; i < half; i++) {
        const float lo = v[i], hi = v[i + half];
        if (rb) {
            v[i] = pi0k_round_bf16(pi0k_round_bf16(lo * c[i]) + pi0k_round_bf16(-hi * s[i]));
            v[i + half] = pi0k_round_bf16(pi0k_round_bf16(hi * c[i + half]) + pi0k_round_bf16(lo * s[i + half]));
        } else {
            const float a = lo * c[i], b = -hi * s[i];
            const float a2 = hi * c[i + half], b2 = lo * s[i + half];
            v[i] = a + b;
            v[i + half] = a2 + b2;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// 2: AVX-512, 1: AVX2, 0: neither (the GEMM's own feature checks, pi0_kernels.c).
static int simd_level(void) {
    return pi0k_path_supported(PI0K_PATH_AVX512) ? 2 : pi0k_path_supported(PI0K_PATH_AVX2) ? 1 : 0;
}

AVX2 static void rope_avx2(float *v, const float *c, const float *s, size_t half, int rb) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    size_t i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 lo = _mm256_loadu_ps(v + i), hi = _mm256_loadu_ps(v + i + half);
        __m256 a = _mm256_mul_ps(lo, _mm256_loadu_ps(c + i));
        __m256 b = _mm256_mul_ps(_mm256_xor_ps(hi, sign), _mm256_loadu_ps(s + i));
        __m256 a2 = _mm256_mul_ps(hi, _mm256_loadu_ps(c + i + half));
        __m256 b2 = _mm256_mul_ps(lo, _mm256_loadu_ps(s + i + half));
        if (rb) { a = pi0k_round_bf16_8(a); b = pi0k_round_bf16_8(b); a2 = pi0k_round_bf16_8(a2); b2 = pi0k_round_bf16_8(b2); }
        __m256 o = _mm256_add_ps(a, b), o2 = _mm256_add_ps(a2, b2);
        if (rb) { o = pi0k_round_bf16_8(o); o2 = pi0k_round_bf16_8(o2); }
        _mm256_storeu_ps(v + i, o);
        _mm256_storeu_ps(v + i + half, o2);
    }
    rope_scalar(v, c, s, i, half, rb);
}

AVX512 static void rope_avx512(float *v, const float *c, const float *s, size_t half, int rb) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    size_t i = 0;
    for (; i + 16 <= half; i += 16) {
        const __m512 lo = _mm512_loadu_ps(v + i), hi = _mm512_loadu_ps(v + i + half);
        __m512 a = _mm512_mul_ps(lo, _mm512_loadu_ps(c + i));
        __m512 b = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(hi), sign)), _mm512_loadu_ps(s + i));
        __m512 a2 = _mm512_mul_ps(hi, _mm512_loadu_ps(c + i + half));
        __m512 b2 = _mm512_mul_ps(lo, _mm512_loadu_ps(s + i + half));
        if (rb) { a = pi0k_round_bf16_16(a); b = pi0k_round_bf16_16(b); a2 = pi0k_round_bf16_16(a2); b2 = pi0k_round_bf16_16(b2); }
        __m512 o = _mm512_add_ps(a, b), o2 = _mm512_add_ps(a2, b2);
        if (rb) { o = pi0k_round_bf16_16(o); o2 = pi0k_round_bf16_16(o2); }
        _mm512_storeu_ps(v + i, o);
        _mm512_storeu_ps(v + i + half, o2);
    }
    rope_scalar(v, c, s, i, half, rb);
}
#endif

void pi0e_rope(float *x, size_t tokens, size_t heads, size_t head_dim, size_t stride, const float *cos,
               const float *sin, int round_bf16, int max_simd) {
    const size_t half = head_dim / 2;
#if defined(__x86_64__)
    const int level = simd_level(), simd = level < max_simd ? level : max_simd;
#else
    (void)max_simd;
#endif
    for (size_t t = 0; t < tokens; t++) {
        const float *c = cos + t * head_dim, *s = sin + t * head_dim;
        for (size_t h = 0; h < heads; h++) {
            float *v = x + t * stride + h * head_dim;
#if defined(__x86_64__)
            if (simd == 2) { rope_avx512(v, c, s, half, round_bf16); continue; }
            if (simd == 1) { rope_avx2(v, c, s, half, round_bf16); continue; }
#endif
            rope_scalar(v, c, s, 0, half, round_bf16);
        }
    }
}
