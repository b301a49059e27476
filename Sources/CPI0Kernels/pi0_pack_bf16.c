// Packing of fp32 operands that hold bf16 values (attention's K and V in bfloat16 mode) into a path's bf16
// panel layout, so the products can run on the vdpbf16ps tile (see pi0_kernels.c, "Packing"). Every value
// is rounded to bf16 to nearest-even on the way (NaN stays NaN): for a value that is bf16 already this is
// exact (the low 16 bits are zero, so nothing rounds), and a value that is not gets the same rounding as
// the x side of the vdpbf16ps GEMM (pi0k_round_rows_bf16).
#include "pi0_kernels.h"
#include "pi0_internal.h"
#include "pi0_numeric.h"
#include <string.h>

// Index of W[col = p*NR + j, kk] in the packed panels (kp: K padded to the path's k_align).
static inline size_t packed_index(const pi0k_path_desc *d, size_t p, size_t j, size_t kk, size_t kp) {
    const size_t nr = d->nr;
    return d->k_align == 2 ? p * nr * kp + (kk / 2) * 2 * nr + j * 2 + (kk & 1) : p * nr * kp + kk * nr + j;
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// B[k, n] as W = Bᵀ, pair layout: the 32-bit word (kk/2, j) of a panel is bf16(B[kk, c0+j]) | bf16(B[kk+1, c0+j]) << 16,
// words contiguous over j, so rows kk and kk+1 of B convert 16 columns at a time with no transpose.
AVX512 static void pack_kn_pairs_avx512(const float *b, size_t ldb, size_t k, size_t n, size_t nr, size_t kp,
                                        uint16_t *dst, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        uint32_t *pd = (uint32_t *)(dst + p * nr * kp);
        const size_t c0 = p * nr, cols = n - c0 < nr ? n - c0 : nr;
        for (size_t kk = 0; kk < kp; kk += 2) {
            const float *r0 = b + kk * ldb + c0, *r1 = kk + 1 < k ? r0 + ldb : NULL;
            uint32_t *w = pd + (kk / 2) * nr;
            for (size_t j = 0; j < nr; j += 16) {
                const size_t left = cols > j ? cols - j : 0;
                const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                const __m512i lo = pi0k_bf16_bits_16(_mm512_maskz_loadu_epi32(m, r0 + j));
                const __m512i hi = r1 ? pi0k_bf16_bits_16(_mm512_maskz_loadu_epi32(m, r1 + j)) : _mm512_setzero_si512();
                // masked-off lanes load 0.0f, whose bf16 is 0: the padding columns come out zero
                _mm512_storeu_si512((void *)(w + j), _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
            }
        }
    }
}

// W[n, k] rows, pair layout: each row is rounded to bf16 in 32-value steps (pairs in order are the 32-bit
// words of the row) and its words stored down the panel column at a stride of NR words.
AVX512 static void pack_rows_pairs_avx512(const float *w, size_t ldw, size_t n, size_t k, size_t nr, size_t kp,
                                          uint16_t *dst, size_t p0, size_t p1) {
    uint32_t words[16];
    for (size_t p = p0; p < p1; p++) {
        uint32_t *pd = (uint32_t *)(dst + p * nr * kp);
        for (size_t j = 0; j < nr; j++) {
            const size_t col = p * nr + j;
            if (col >= n) {
                for (size_t q = 0; q < kp / 2; q++) pd[q * nr + j] = 0;
                continue;
            }
            const float *src = w + col * ldw;
            for (size_t kk = 0; kk < kp; kk += 32) {
                const size_t left = k > kk ? k - kk : 0;
                const __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                const __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
                const __m256i a = _mm512_cvtepi32_epi16(pi0k_bf16_bits_16(_mm512_maskz_loadu_epi32(m0, src + kk)));
                const __m256i b = _mm512_cvtepi32_epi16(pi0k_bf16_bits_16(_mm512_maskz_loadu_epi32(m1, src + kk + 16)));
                _mm256_storeu_si256((__m256i *)words, a);
                _mm256_storeu_si256((__m256i *)(words + 8), b);
                const size_t q0 = kk / 2, qn = (kp - kk) / 2 < 16 ? (kp - kk) / 2 : 16;
                for (size_t q = 0; q < qn; q++) pd[(q0 + q) * nr + j] = words[q];
            }
        }
    }
}
#endif

void pi0k_pack_f32_as_bf16(int path, const float *w, size_t ldw, size_t n, size_t k, uint16_t *dst, size_t p0, size_t p1) {
    const pi0k_path_desc *d = pi0k_desc(path);
    const size_t nr = d->nr, kp = (k + d->k_align - 1) / d->k_align * d->k_align, panels = (n + nr - 1) / nr;
    if (p1 > panels) p1 = panels;
#if defined(__x86_64__)
    if (d->k_align == 2 && pi0k_path_supported(PI0K_PATH_AVX512)) {
        pack_rows_pairs_avx512(w, ldw, n, k, nr, kp, dst, p0, p1);
        return;
    }
#endif
    for (size_t p = p0; p < p1; p++) {
        for (size_t j = 0; j < nr; j++) {
            const size_t col = p * nr + j;
            for (size_t kk = 0; kk < kp; kk++)
                dst[packed_index(d, p, j, kk, kp)] = col < n && kk < k ? pi0k_bf16_bits(w[col * ldw + kk]) : 0;
        }
    }
}

void pi0k_pack_f32_kn_as_bf16(int path, const float *b, size_t ldb, size_t k, size_t n, uint16_t *dst, size_t p0, size_t p1) {
    const pi0k_path_desc *d = pi0k_desc(path);
    const size_t nr = d->nr, kp = (k + d->k_align - 1) / d->k_align * d->k_align, panels = (n + nr - 1) / nr;
    if (p1 > panels) p1 = panels;
#if defined(__x86_64__)
    if (d->k_align == 2 && nr % 16 == 0 && pi0k_path_supported(PI0K_PATH_AVX512)) {
        pack_kn_pairs_avx512(b, ldb, k, n, nr, kp, dst, p0, p1);
        return;
    }
#endif
    for (size_t p = p0; p < p1; p++) {
        for (size_t kk = 0; kk < kp; kk++) {
            for (size_t j = 0; j < nr; j++) {
                const size_t col = p * nr + j;
                dst[packed_index(d, p, j, kk, kp)] = col < n && kk < k ? pi0k_bf16_bits(b[kk * ldb + col]) : 0;
            }
        }
    }
}
