// Attention without a mask, keys as rows (SigLIP: 16 heads of 256 x 256 x 72, no mask).
//
// The query-rows form (Attention.mqa's masked path) computes S = Q·Kᵀ, softmax along S's rows, then P·V
// with N = D: SigLIP's D = 72 pads to 80 (AVX2 panels of 16) or 128 (AVX-512 panels of 64), and the
// products have K = 72, so every tile reloads and stores C after only 72 steps. Here both products put
// the keys or the head dim on the tile's rows and the queries on its panel columns:
//   Sᵀ[j, t] = scale · K[j, :]·Q[t, :]    rows j < S (K packed once as MR-row micro-panels), columns: a
//                                          panel of NR queries (Q packed as one weight panel)
//   Pᵀ = exp(Sᵀ − max_j) down each column (one lane per query: vector max, exp and sum over rows)
//   Oᵀ[d, t] = Vᵀ[d, :]·Pᵀ[:, t]          rows d < D (Vᵀ packed once as micro-panels: D = 72 is 12 tiles
//                                          of 6), the panel Pᵀ [S, NR] is already in the packed-weight
//                                          layout, so nothing is packed per query panel but Q
//   out[t, d] = Oᵀ[d, t] / Σ_j Pᵀ[j, t]    (transposed on the way out)
// No dimension is padded beyond the row tile (S = 256 → 258 rows) and the query panels (T = 256 = 4 × 64).
// Each query's column goes through the same instructions whatever panel or lane it lands in (lanes are
// independent; sums run over j in order), so any split of queries across threads gives the same bits.
#include "pi0_kernels.h"
#include "pi0_internal.h"
#include "pi0_numeric.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))
#endif

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

#if defined(__x86_64__)
// dst[j*6 + r] = v[j*ldv + r], r < 6, j < s: one masked 6-float load and an 8-float store per j (its last two
// floats are overwritten by the next j's; the last j's store is masked). memcpy calls here cost 5 %.
AVX2 static void pack_vt6_avx2(const float *v, size_t ldv, size_t s, float *dst) {
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    size_t j = 0;
    for (; j + 1 < s; j++) _mm256_storeu_ps(dst + j * 6, _mm256_maskload_ps(v + j * ldv, six));
    if (j < s) _mm256_maskstore_ps(dst + j * 6, six, _mm256_maskload_ps(v + j * ldv, six));
}
#endif

size_t pi0k_attn_keys_count(int path, size_t s, size_t d) {
    const pi0k_path_desc *pd = pi0k_desc(path);
    return round_up(round_up(s, pd->mr) * d, 16) + round_up(d, pd->mr) * s;
}

// Per task: the Q panel [d, NR], Sᵀ/Pᵀ [round_up(s, MR), NR], Oᵀ [round_up(d, MR), NR] and 1/sums [NR],
// each 64-byte aligned.
size_t pi0k_attn_task_count(int path, size_t s, size_t d) {
    const pi0k_path_desc *pd = pi0k_desc(path);
    const size_t nr = pd->nr;
    return round_up(d * nr, 16) + round_up(s, pd->mr) * nr + round_up(d, pd->mr) * nr + round_up(nr, 16);
}

void pi0k_attn_pack_keys(int path, const float *k, size_t ldk, const float *v, size_t ldv, size_t s, size_t d,
                         float *keys) {
    const pi0k_path_desc *pd = pi0k_desc(path);
    const size_t mr = pd->mr;
    pi0k_pack_a(pd, k, ldk, 0, s, 0, d, keys);
    float *vt = keys + round_up(round_up(s, mr) * d, 16);
    for (size_t d0 = 0; d0 < d; d0 += mr) { // micro-panel of Vᵀ rows [d0, d0+mr): element (r, j) at [j*mr + r]
        float *tile = vt + d0 * s;
        const size_t rows = d - d0 < mr ? d - d0 : mr;
#if defined(__x86_64__)
        if (rows == 6 && (path == PI0K_PATH_AVX2 || path == PI0K_PATH_AVX512)) {
            pack_vt6_avx2(v + d0, ldv, s, tile);
            continue;
        }
#endif
        for (size_t j = 0; j < s; j++)
            for (size_t r = 0; r < mr; r++) tile[j * mr + r] = r < rows ? v[j * ldv + d0 + r] : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Column softmax of Sᵀ [rows, NR] in place (unnormalised: exp(x − column max)), 1/column sums into inv.

static void softmax_cols_portable(float *st, size_t rows, size_t nr, float *inv) {
    for (size_t c = 0; c < nr; c++) {
        float mx = -INFINITY, sum = 0.0f;
        for (size_t j = 0; j < rows; j++) mx = st[j * nr + c] > mx ? st[j * nr + c] : mx;
        for (size_t j = 0; j < rows; j++) {
            const float e = expf(st[j * nr + c] - mx);
            st[j * nr + c] = e;
            sum += e;
        }
        inv[c] = 1.0f / sum;
    }
}

#if defined(__x86_64__)
// AVX-512: 2^n applied with vscalefps (one instruction instead of convert, add, shift and multiply); below
// the clamp at -87.3 it returns exp(-87.3) ≈ 1e-38 instead of 0, which no sum of exps ≥ 1 can notice.
AVX512 INLINE __m512 exp16_neg(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// NR = 16 (the AVX2 path): two 8-lane columns blocks per row.
AVX2 static void softmax_cols_avx2(float *st, size_t rows, float *inv) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    for (size_t j = 0; j < rows; j++) {
        m0 = _mm256_max_ps(m0, _mm256_load_ps(st + j * 16));
        m1 = _mm256_max_ps(m1, _mm256_load_ps(st + j * 16 + 8));
    }
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (size_t j = 0; j < rows; j++) {
        const __m256 e0 = pi0k_exp8_neg(_mm256_sub_ps(_mm256_load_ps(st + j * 16), m0));
        const __m256 e1 = pi0k_exp8_neg(_mm256_sub_ps(_mm256_load_ps(st + j * 16 + 8), m1));
        _mm256_store_ps(st + j * 16, e0);
        _mm256_store_ps(st + j * 16 + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    const __m256 one = _mm256_set1_ps(1.0f);
    _mm256_store_ps(inv, _mm256_div_ps(one, s0));
    _mm256_store_ps(inv + 8, _mm256_div_ps(one, s1));
}

// NR = 64 (the AVX-512 path): four 16-lane column blocks per row.
AVX512 static void softmax_cols_avx512(float *st, size_t rows, float *inv) {
    __m512 m[4], s[4];
    for (int q = 0; q < 4; q++) { m[q] = _mm512_set1_ps(-INFINITY); s[q] = _mm512_setzero_ps(); }
    for (size_t j = 0; j < rows; j++)
        for (int q = 0; q < 4; q++) m[q] = _mm512_max_ps(m[q], _mm512_load_ps(st + j * 64 + 16 * q));
    for (size_t j = 0; j < rows; j++)
        for (int q = 0; q < 4; q++) {
            const __m512 e = exp16_neg(_mm512_sub_ps(_mm512_load_ps(st + j * 64 + 16 * q), m[q]));
            _mm512_store_ps(st + j * 64 + 16 * q, e);
            s[q] = _mm512_add_ps(s[q], e);
        }
    for (int q = 0; q < 4; q++) _mm512_store_ps(inv + 16 * q, _mm512_div_ps(_mm512_set1_ps(1.0f), s[q]));
}
#endif

static void softmax_cols(int path, float *st, size_t rows, size_t nr, float *inv) {
#if defined(__x86_64__)
    if (path == PI0K_PATH_AVX512 && nr == 64) { softmax_cols_avx512(st, rows, inv); return; }
    if (path == PI0K_PATH_AVX2 && nr == 16) { softmax_cols_avx2(st, rows, inv); return; }
#endif
    (void)path;
    softmax_cols_portable(st, rows, nr, inv);
}

// ---------------------------------------------------------------------------------------------------------
// dst[c, r] = src[r, c] (· colscale[c] when given) for r < rows, c < cols. AVX2: 8 x 8 blocks in registers.

#if defined(__x86_64__)
AVX2 static void transpose_avx2(const float *src, size_t lds, size_t rows, size_t cols, float *dst, size_t ldd,
                                const float *colscale) {
    size_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        size_t c0 = 0;
        for (; c0 + 8 <= cols; c0 += 8) {
            const float *s0 = src + r0 * lds + c0;
            __m256 a[8];
            for (int i = 0; i < 8; i++) {
                a[i] = _mm256_loadu_ps(s0 + i * lds);
                if (colscale) a[i] = _mm256_mul_ps(a[i], _mm256_loadu_ps(colscale + c0));
            }
            const __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
            const __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
            const __m256 t4 = _mm256_unpacklo_ps(a[4], a[5]), t5 = _mm256_unpackhi_ps(a[4], a[5]);
            const __m256 t6 = _mm256_unpacklo_ps(a[6], a[7]), t7 = _mm256_unpackhi_ps(a[6], a[7]);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            float *d0 = dst + c0 * ldd + r0;
            _mm256_storeu_ps(d0, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d0 + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d0 + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d0 + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d0 + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d0 + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d0 + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d0 + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; c0 < cols; c0++)
            for (size_t r = r0; r < r0 + 8; r++) dst[c0 * ldd + r] = src[r * lds + c0] * (colscale ? colscale[c0] : 1.0f);
    }
    for (; r0 < rows; r0++)
        for (size_t c = 0; c < cols; c++) dst[c * ldd + r0] = src[r0 * lds + c] * (colscale ? colscale[c] : 1.0f);
}
#endif

static void transpose_block(int path, const float *src, size_t lds, size_t rows, size_t cols, float *dst, size_t ldd,
                            const float *colscale) {
#if defined(__x86_64__)
    if (path == PI0K_PATH_AVX2 || path == PI0K_PATH_AVX512) { transpose_avx2(src, lds, rows, cols, dst, ldd, colscale); return; }
#endif
    (void)path;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c] * (colscale ? colscale[c] : 1.0f);
}

// ---------------------------------------------------------------------------------------------------------

int pi0k_attn_queries(int path, const float *keys, const float *q, size_t ldq, size_t t0, size_t t1, size_t s,
                      size_t d, float scale, float *out, size_t ldo, float *work) {
    const pi0k_path_desc *pd = pi0k_desc(path);
    const pi0k_tile_fn tile = pd->tile_f32;
    if (!tile || pd->x_elem_size != 4) return -2;
    const size_t mr = pd->mr, nr = pd->nr, dpad = round_up(d, mr);
    const float *kp = keys, *vt = keys + round_up(round_up(s, mr) * d, 16);
    float *qp = work, *st = qp + round_up(d * nr, 16), *ot = st + round_up(s, mr) * nr, *inv = ot + dpad * nr;
    for (size_t tp = t0; tp < t1; tp += nr) {
        const size_t nq = t1 - tp < nr ? t1 - tp : nr;
        // Q panel: qp[kk*NR + c] = q[tp + c, kk], columns past nq zero (their lanes compute exp(0)·0).
        transpose_block(path, q + tp * ldq, ldq, nq, d, qp, nr, NULL);
        for (size_t c = nq; c < nr; c++)
            for (size_t kk = 0; kk < d; kk++) qp[kk * nr + c] = 0.0f;
        // Sᵀ = scale · K·Q-panelᵀ: all NR columns are written (zero columns give 0), so every lane is finite.
        // The last row tile is computed whole (K's packed rows past s are zero; st has room for them).
        for (size_t j0 = 0; j0 < s; j0 += mr) tile(d, kp + j0 * d, mr, qp, NULL, st + j0 * nr, nr, nr, 1, 1, scale, NULL);
        softmax_cols(path, st, s, nr, inv);
        // Oᵀ = Vᵀ·Pᵀ: the panel Pᵀ [s, NR] is a packed weight panel with k = s.
        for (size_t d0 = 0; d0 < d; d0 += mr)
            tile(s, vt + d0 * s, d - d0 < mr ? d - d0 : mr, st, NULL, ot + d0 * nr, nr, nq, 1, 1, 1.0f, NULL);
        transpose_block(path, ot, nr, d, nq, out + tp * ldo, ldo, inv);
    }
    return 0;
}
