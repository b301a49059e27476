// Numeric building blocks shared by the CPI0Kernels C files (internal, not part of the public header): the
// one float32 -> bf16 rounding every kernel uses (nearest-even; a NaN stays a NaN with its quiet bit set;
// integer arithmetic, so no DAZ/FTZ), scalar and on 8 / 16 lanes, and the softmax exp on 8 lanes.
#pragma once
#include <stdint.h>
#include <string.h>

/// bf16 bits of f, rounded to nearest-even (NaN → quiet NaN with f's sign and top payload bits).
static inline uint16_t pi0k_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// f rounded to the nearest bf16 value, as a float.
static inline float pi0k_round_bf16(float f) {
    const uint32_t u = (uint32_t)pi0k_bf16_bits(f) << 16;
    memcpy(&f, &u, 4);
    return f;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// `pi0k_round_bf16` on 8 lanes.
__attribute__((target("avx2"))) static inline __m256 pi0k_round_bf16_8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i out = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), nan);
    return _mm256_castsi256_ps(_mm256_and_si256(out, _mm256_set1_epi32((int)0xffff0000u)));
}

/// `pi0k_bf16_bits` of 16 floats (given as their bits), in the low half of each 32-bit lane.
__attribute__((target("avx512f"))) static inline __m512i pi0k_bf16_bits_16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

/// `pi0k_round_bf16` on 16 lanes.
__attribute__((target("avx512f"))) static inline __m512 pi0k_round_bf16_16(__m512 v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(pi0k_bf16_bits_16(_mm512_castps_si512(v)), 16));
}

/// exp(x) for x <= 0 (softmax arguments), Cephes expf polynomial (~1-2 ulp); 0 below -87.3.
__attribute__((target("avx2,fma"))) static inline __m256 pi0k_exp8_neg(__m256 x) {
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
#endif
