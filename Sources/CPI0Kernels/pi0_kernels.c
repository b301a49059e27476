// Run-time dispatch, weight packing, the blocked GEMM driver and the portable (scalar) tile.
// The x86 SIMD tiles live in pi0_tiles_x86.c.
#include "pi0_kernels.h"
#include "pi0_internal.h"
#include "pi0_numeric.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------------
// CPU features

#if defined(__x86_64__)
// __builtin_cpu_supports also checks that the OS saves the wider register state (XCR0), via libgcc /
// compiler-rt's cpu model initialiser.
static int has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
static int has_avx512bf16(void) {
    __builtin_cpu_init();
    return has_avx512() && __builtin_cpu_supports("avx512bf16");
}
#endif

int pi0k_path_supported(int path) {
    switch (path) {
    case PI0K_PATH_SCALAR: return 1;
#if defined(__x86_64__)
    case PI0K_PATH_AVX2: return has_avx2_fma();
    case PI0K_PATH_AVX512: return has_avx512();
    case PI0K_PATH_AVX512BF16:
    case PI0K_PATH_AVX512BF16_MR5: return has_avx512bf16();
#endif
    default: return 0;
    }
}

const char *pi0k_cpu_summary(void) {
#if defined(__x86_64__)
    if (has_avx512bf16()) return "avx512f+bw+vl+bf16";
    if (has_avx512()) return "avx512f+bw+vl";
    if (has_avx2_fma()) return "avx2+fma";
    return "x86_64 (no avx2)";
#elif defined(__aarch64__)
    return "arm64 (portable kernels)";
#else
    return "portable";
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Portable tile: MR = 4, NR = 16. Plain loops the compiler can vectorise (NEON on arm64, SSE on x86).

enum { SC_MR = 4, SC_NR = 16 };

static inline void scalar_tile(const int bf16, size_t kc, const void *av, size_t mr,
                               const void *b, const void *b_next, float *c, size_t ldc, size_t nr, int first, int last,
                               float alpha, const float *bias) {
    float acc[SC_MR][SC_NR];
    const float *a4 = (const float *)av;
    for (size_t r = 0; r < SC_MR; r++)
        for (size_t j = 0; j < SC_NR; j++)
            acc[r][j] = 0.0f;
    (void)b_next;
    for (size_t kk = 0; kk < kc; kk++) {
        float bv[SC_NR];
        if (bf16) {
            const uint16_t *bh = (const uint16_t *)b + kk * SC_NR;
            for (size_t j = 0; j < SC_NR; j++) {
                uint32_t u = (uint32_t)bh[j] << 16;
                memcpy(&bv[j], &u, 4);
            }
        } else {
            memcpy(bv, (const float *)b + kk * SC_NR, sizeof bv);
        }
        for (size_t r = 0; r < SC_MR; r++) {
            const float a = a4[kk * SC_MR + r];
            for (size_t j = 0; j < SC_NR; j++) acc[r][j] += a * bv[j];
        }
    }
    if (!first) // add the earlier K blocks' sum after this block's (same order as the SIMD tiles)
        for (size_t r = 0; r < mr; r++)
            for (size_t j = 0; j < nr; j++) acc[r][j] = c[r * ldc + j] + acc[r][j];
    if (last) {
        for (size_t r = 0; r < SC_MR; r++)
            for (size_t j = 0; j < SC_NR; j++) {
                float v = acc[r][j];
                if (alpha != 1.0f) v *= alpha;
                if (bias) v += bias[j];
                acc[r][j] = v;
            }
    }
    for (size_t r = 0; r < mr; r++)
        for (size_t j = 0; j < nr; j++) c[r * ldc + j] = acc[r][j];
}

static void scalar_tile_f32(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                            size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    scalar_tile(0, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}
static void scalar_tile_bf16(size_t kc, const void *x, size_t mr, const void *b, const void *b_next, float *c,
                             size_t ldc, size_t nr, int first, int last, float alpha, const float *bias) {
    scalar_tile(1, kc, x, mr, b, b_next, c, ldc, nr, first, last, alpha, bias);
}

// ---------------------------------------------------------------------------------------------------------
// Path table. KC: the B micro-panel block (KC x NR) stays in L1 while it is reused across row tiles
// (AVX2: 256 x 16 x 4 B = 16 KiB of a 32 KiB L1d). Deep products (k >= PI0K_DEEP_K: the VLM's MLP down
// projection, K = 16384) use kc_deep: every K block reads and writes all of y once, and with K = 16384
// that traffic (64 passes over y) cost more than the B panel's L1 residency gains; AVX2 KC = 512 measured
// +4-6 % on 788 x 16384 -> 1024 (C harness, interleaved best-of runs), neutral for K = 2048 and 4096.
// AVX-512 (6 x 64, Zen 4): KC = 512 for every K. The 128 KiB B block then streams from the 1 MiB L2
// instead of sitting in L1, which cost nothing measurable, while the tile's C read-modify-write per K
// block halves: one core, C harness, 768 x 1152 -> 4304 104 -> 107 GFLOP/s, vdpbf16ps 190 -> 197.
// vdpbf16ps (Zen 4): KC = 2048 for every K and 1 MiB column chunks (4 panels of 2048 x 64 bf16 = 256 KiB).
// The tile's fixed cost (zeroing 24 accumulators, C read-modify-write) then spreads over 1024 pair steps
// instead of 256: the tile alone, B in L2, 90 % -> 95 % of the vdpbf16ps peak (233 GFLOP/s per core);
// in the GEMM, 2 threads, C harness best-of-3 interleaved: 306 x 2048 -> 32768 356 -> 408 GFLOP/s,
// 306 x 16384 -> 2048 313 -> 338, 50 x 4096 -> 1024 250 -> 304 (docs/PERFORMANCE_KERNELS.md).
// pf_split: the next panel's prefetch is spread over the first row tiles, each taking every pf_split-th
// line of a panel row (vdpbf16ps: a pair row is 4 lines, one per tile), instead of the first tile asking
// for the whole next panel at once; that also takes 3 of 4 prefetch instructions out of the tile's loop.

const pi0k_path_desc *pi0k_desc(int path) {
    static const pi0k_path_desc scalar = {SC_MR, SC_NR, 256, 256, scalar_tile_f32, scalar_tile_bf16, 4, 1, 256 << 10, 1};
#if defined(__x86_64__)
    static const pi0k_path_desc avx2 = {6, 16, 256, 512, pi0k_tile_avx2_f32, pi0k_tile_avx2_bf16, 4, 1, 256 << 10, 1};
    static const pi0k_path_desc avx512 = {6, 64, 512, 512, pi0k_tile_avx512_f32, pi0k_tile_avx512_bf16, 4, 1, 256 << 10, 2};
    static const pi0k_path_desc avx512bf16 = {6, 64, 2048, 2048, NULL, pi0k_tile_avx512bf16_dot, 2, 2, 1 << 20, 4};
    static const pi0k_path_desc avx512bf16_5 = {5, 64, 2048, 2048, NULL, pi0k_tile_avx512bf16_dot5, 2, 2, 1 << 20, 4};
    switch (path) {
    case PI0K_PATH_AVX2: return &avx2;
    case PI0K_PATH_AVX512: return &avx512;
    case PI0K_PATH_AVX512BF16: return &avx512bf16;
    case PI0K_PATH_AVX512BF16_MR5: return &avx512bf16_5;
    default: break;
    }
#else
    (void)path;
#endif
    return &scalar;
}

int pi0k_row_variant(int path, size_t m) {
    if (path != PI0K_PATH_AVX512BF16) return path;
    const size_t pad6 = (m + 5) / 6 * 6 - m, pad5 = (m + 4) / 5 * 5 - m;
    return pad5 < pad6 ? PI0K_PATH_AVX512BF16_MR5 : path;
}

size_t pi0k_panel_width(int path) { return pi0k_desc(path)->nr; }
size_t pi0k_row_tile(int path) { return pi0k_desc(path)->mr; }

static size_t padded_k(const pi0k_path_desc *d, size_t k) { return (k + d->k_align - 1) / d->k_align * d->k_align; }

size_t pi0k_packed_count(int path, int elem, size_t n, size_t k) {
    (void)elem;
    const pi0k_path_desc *d = pi0k_desc(path);
    size_t panels = (n + d->nr - 1) / d->nr;
    return panels * d->nr * padded_k(d, k);
}

// ---------------------------------------------------------------------------------------------------------
// Packing. Layout for fp32 and widened-bf16 paths: panel p holds columns [p*NR, p*NR+NR) as
// dst[p*NR*k + kk*NR + j] = W[p*NR + j, kk]. For the vdpbf16ps path K is padded to even and pairs are
// interleaved: dst[p*NR*kp + (kk/2)*2*NR + j*2 + (kk&1)] = W[p*NR + j, kk].

// One source row (column of the panel) at a time: sequential reads, writes with stride NR into a panel
// that stays in L2. (Measured 1.7-2.1 GB/s on the dev machine; walking the destination sequentially
// with NR read streams instead was no faster, 1.0-2.2 GB/s.)
#define PACK_PANELS(T, ZERO)                                                                                \
    const pi0k_path_desc *d = pi0k_desc(path);                                                              \
    const size_t nr = d->nr, panels = (n + nr - 1) / nr;                                                    \
    if (p1 > panels) p1 = panels;                                                                           \
    for (size_t p = p0; p < p1; p++) {                                                                      \
        T *pd = dst + p * nr * k;                                                                           \
        for (size_t j = 0; j < nr; j++) {                                                                   \
            const size_t col = p * nr + j;                                                                  \
            if (col < n) {                                                                                  \
                const T *src = w + col * ldw;                                                               \
                for (size_t kk = 0; kk < k; kk++) pd[kk * nr + j] = src[kk];                                \
            } else {                                                                                        \
                for (size_t kk = 0; kk < k; kk++) pd[kk * nr + j] = ZERO;                                   \
            }                                                                                               \
        }                                                                                                   \
    }

void pi0k_pack_f32(int path, const float *w, size_t ldw, size_t n, size_t k, float *dst, size_t p0, size_t p1) {
    PACK_PANELS(float, 0.0f)
}

void pi0k_pack_f32_kn(int path, const float *b, size_t ldb, size_t k, size_t n, float *dst, size_t p0, size_t p1) {
    const pi0k_path_desc *d = pi0k_desc(path);
    const size_t nr = d->nr, panels = (n + nr - 1) / nr;
    if (p1 > panels) p1 = panels;
    for (size_t p = p0; p < p1; p++) {
        float *pd = dst + p * nr * k;
        const size_t c0 = p * nr, cols = n - c0 < nr ? n - c0 : nr;
        for (size_t kk = 0; kk < k; kk++) {
            memcpy(pd + kk * nr, b + kk * ldb + c0, cols * sizeof(float));
            for (size_t j = cols; j < nr; j++) pd[kk * nr + j] = 0.0f;
        }
    }
}

void pi0k_pack_bf16(int path, const uint16_t *w, size_t ldw, size_t n, size_t k, uint16_t *dst, size_t p0, size_t p1) {
    if (pi0k_desc(path)->k_align == 2) { // vdpbf16ps layout: K pairs interleaved per column
        const pi0k_path_desc *d = pi0k_desc(path);
        const size_t nr = d->nr, kp = padded_k(d, k), panels = (n + nr - 1) / nr;
        if (p1 > panels) p1 = panels;
        for (size_t p = p0; p < p1; p++) {
            uint16_t *pd = dst + p * nr * kp;
            for (size_t j = 0; j < nr; j++) {
                const size_t col = p * nr + j;
                for (size_t kk = 0; kk < kp; kk++)
                    pd[(kk / 2) * 2 * nr + j * 2 + (kk & 1)] = (col < n && kk < k) ? w[col * ldw + kk] : 0;
            }
        }
        return;
    }
    PACK_PANELS(uint16_t, 0)
}

static _Thread_local uint16_t *rows_buf;
static _Thread_local size_t rows_cap;

uint16_t *pi0k_bf16_rows_scratch(size_t count) {
    if (count == 0) count = 1;
    if (count <= rows_cap) return rows_buf;
    void *p = NULL;
    if (posix_memalign(&p, 64, count * sizeof(uint16_t)) != 0) return NULL;
    free(rows_buf);
    rows_buf = p;
    rows_cap = count;
    return rows_buf;
}

void pi0k_round_rows_bf16(const float *x, size_t m, size_t ldx, size_t k, uint16_t *dst, size_t kpad) {
#if defined(__x86_64__)
    const int simd = has_avx512();
#endif
    for (size_t i = 0; i < m; i++) {
#if defined(__x86_64__)
        if (simd) pi0k_round_row_bf16_avx512(x + i * ldx, k, dst + i * kpad);
        else
#endif
        for (size_t kk = 0; kk < k; kk++) dst[i * kpad + kk] = pi0k_bf16_bits(x[i * ldx + kk]);
        for (size_t kk = k; kk < kpad; kk++) dst[i * kpad + kk] = 0;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The blocked driver (BLIS order, with the weights packed once at load):
//   K blocks of KC  ->  x rows [m0, m1) packed into MR-row micro-panels (thread-local buffer, reused by every
//   column chunk)  ->  column chunks of nc_bytes of W (per path) (KC x NC block stays in L2 while every row block
//   passes over it)  ->  row blocks of MC rows (their packed x, MC x KC, also in L2)  ->  panels (the
//   KC x NR micro-panel stays in L1 across the row tiles)  ->  row tiles.
// Without the column chunks, each row block streamed the whole KC x N slice of W from memory (16 MiB for
// the VLM's gate/up), once per row block. Packed x micro-panels are contiguous, so strided rows of a
// 2^n-float x do not collide in the same cache sets. Per output element the sequence of operations is
// fixed by (k, KC) only, never by m0/m1/p0/p1 or the chunking, which is what makes any thread split
// bit-identical.

enum { MC_ROWS = 96 }; // rows per row block, rounded down to a multiple of the path's MR (96 or 95)
enum { PI0K_DEEP_K = 8192 };

// Packs x rows [i0, i1) x columns [kb, kb+kc) into micro-panels of MR rows: element (r, k) of tile t at
// dst[t*MR*kc + (k/g)*MR*g + r*g + k%g] (g = 2 for bf16 pairs, else 1); rows past i1 are zero.
void pi0k_pack_a(const pi0k_path_desc *d, const void *x, size_t ldx, size_t i0, size_t i1, size_t kb,
                   size_t kc, void *dst) {
    const size_t mr = d->mr, g = d->k_align, esz = d->x_elem_size;
    for (size_t i = i0, t = 0; i < i1; i += mr, t++) {
        char *tile = (char *)dst + t * mr * kc * esz;
        const size_t rows = i1 - i < mr ? i1 - i : mr;
        if (rows < mr) memset(tile, 0, mr * kc * esz);
#if defined(__x86_64__)
        if (esz == 4 && g == 1 && mr == 6 && rows == 6 && // AVX2 transpose (AVX-512 CPUs have AVX2)
            (d->tile_f32 == pi0k_tile_avx2_f32 || d->tile_f32 == pi0k_tile_avx512_f32)) {
            const float *src = (const float *)x + i * ldx + kb;
            pi0k_pack_a6_avx2(src, ldx, kc, (float *)tile, i + 2 * mr <= i1 ? src + mr * ldx : NULL);
            continue;
        }
#endif
        if (esz == 2 && g == 2 && (ldx & 1) == 0 && ((uintptr_t)x & 3) == 0) {
            // bf16 pairs (k, k+1) are 32-bit units (kb and kc are even): the fp32 transposition on kc/2 units.
            // Element-wise memcpy of each pair cost 3.5 ms per 818 x 2048 block, 18 % of the VLM's down product.
            const uint32_t *src = (const uint32_t *)x + (i * ldx + kb) / 2;
            const size_t ld = ldx / 2, units = kc / 2;
#if defined(__x86_64__)
            if (mr == 6 && rows == 6 && d->tile_bf16 == pi0k_tile_avx512bf16_dot) {
                pi0k_pack_a6_avx2((const float *)src, ld, units, (float *)tile,
                                  i + 2 * mr <= i1 ? (const float *)(src + mr * ld) : NULL);
                continue;
            }
#endif
            uint32_t *tu = (uint32_t *)tile;
            for (size_t r = 0; r < rows; r++)
                for (size_t u = 0; u < units; u++) tu[u * mr + r] = src[r * ld + u];
            continue;
        }
        if (esz == 4 && g == 1) {
            float *tf = (float *)tile;
            for (size_t r = 0; r < rows; r++) {
                const float *src = (const float *)x + (i + r) * ldx + kb;
                for (size_t k = 0; k < kc; k++) tf[k * mr + r] = src[k];
            }
        } else {
            for (size_t r = 0; r < rows; r++) {
                const char *src = (const char *)x + ((i + r) * ldx + kb) * esz;
                for (size_t k = 0; k < kc; k += g) memcpy(tile + ((k / g) * mr * g + r * g) * esz, src + k * esz, g * esz);
            }
        }
    }
}

// One growing scratch buffer per thread for the packed x: no allocation once it has grown to the
// largest product the thread has run (the denoise loop repeats the same shapes).
static _Thread_local void *scratch_buf;
static _Thread_local size_t scratch_cap;

static void *scratch(size_t bytes) {
    if (bytes <= scratch_cap) return scratch_buf;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    free(scratch_buf);
    scratch_buf = p;
    scratch_cap = bytes;
    return p;
}

int pi0k_gemm(int path, int elem, const void *x, size_t ldx, size_t m0, size_t m1, const void *packed,
              size_t n, size_t k, float alpha, const float *bias, float *y, size_t ldy, size_t p0,
              size_t p1) {
    const pi0k_path_desc *d = pi0k_desc(path);
    const size_t nr = d->nr, kp = padded_k(d, k);
    const size_t panels = (n + nr - 1) / nr;
    if (p1 > panels) p1 = panels;
    if (m0 >= m1 || p0 >= p1) return 0;
    if (k == 0) { // empty sum: y = bias or 0
        for (size_t i = m0; i < m1; i++)
            for (size_t col = p0 * nr; col < n && col < p1 * nr; col++) y[i * ldy + col] = bias ? bias[col] : 0.0f;
        return 0;
    }
    pi0k_tile_fn tile = elem == PI0K_ELEM_BF16 ? d->tile_bf16 : d->tile_f32;
    if (!tile) return -2;
    const size_t esz = elem == PI0K_ELEM_BF16 ? 2 : 4, xsz = d->x_elem_size;
    const size_t mr_tile = d->mr, mc = MC_ROWS / mr_tile * mr_tile;
    const size_t tiles = (m1 - m0 + mr_tile - 1) / mr_tile;
    const size_t kcb = k >= PI0K_DEEP_K ? d->kc_deep : d->kc; // a function of k only: splits stay bit-identical
    const size_t kc_max = kp < kcb ? kp : kcb;
    void *apack = scratch(tiles * mr_tile * kc_max * xsz);
    if (!apack) return -1;
    size_t chunk = d->nc_bytes / (kc_max * nr * esz);
    if (chunk < 1) chunk = 1;
    float bias_pad[64];
    for (size_t kb = 0; kb < kp; kb += kcb) {
        const size_t kc = kp - kb < kcb ? kp - kb : kcb;
        const int first = kb == 0, last = kb + kc == kp;
        pi0k_pack_a(d, x, ldx, m0, m1, kb, kc, apack);
        for (size_t pc = p0; pc < p1; pc += chunk) {
            const size_t pe = pc + chunk < p1 ? pc + chunk : p1;
            for (size_t mb = m0; mb < m1; mb += mc) {
                const size_t mend = mb + mc < m1 ? mb + mc : m1;
                const char *ablock = (const char *)apack + (mb - m0) / mr_tile * mr_tile * kc * xsz;
                for (size_t p = pc; p < pe; p++) {
                    const size_t n0 = p * nr, ncols = n - n0 < nr ? n - n0 : nr;
                    const char *bp = (const char *)packed + (p * nr * kp + kb * nr) * esz;
                    const float *bb = NULL;
                    if (last && bias) {
                        for (size_t j = 0; j < nr; j++) bias_pad[j] = j < ncols ? bias[n0 + j] : 0.0f;
                        bb = bias_pad;
                    }
                    // During this panel's first row tile, prefetch the next panel's block (also across chunks),
                    // so that it has all of this panel's row tiles to arrive. Issued in the last tile instead,
                    // it had one tile's time: with M = 51 (the expert) that left W's DRAM latency exposed.
                    // A tile prefetches two cache lines per K row of the panel: an AVX-512 f32 panel's rows
                    // (64 floats, 4 lines) get their other two lines from the second row tile.
                    const char *bnext = p + 1 < p1 ? bp + nr * kp * esz : NULL;
                    const size_t row = nr * esz * d->k_align, split = row > 128 ? d->pf_split : 1, pf_step = row / split;
                    for (size_t i = mb, t = 0; i < mend; i += mr_tile, t++) {
                        const size_t mr = mend - i < mr_tile ? mend - i : mr_tile;
                        tile(kc, ablock + t * mr_tile * kc * xsz, mr, bp, bnext && t < split ? bnext + t * pf_step : NULL,
                             y + i * ldy + n0, ldy, ncols, first, last, alpha, bb);
                    }
                }
            }
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Softmax rows with an additive mask (fp32; max-subtracted; exp from libm or the AVX2 polynomial).

void pi0k_softmax_rows(int path, float *s, size_t rows, size_t cols, size_t lds, const float *mask, size_t ldmask,
                       size_t rows_per_mask_row) {
    (void)path;
    if (rows_per_mask_row == 0) rows_per_mask_row = 1;
#if defined(__x86_64__)
    const int avx2 = path != PI0K_PATH_SCALAR && has_avx2_fma();
#endif
    for (size_t r = 0; r < rows; r++) {
        float *row = s + r * lds;
        const float *mrow = mask ? mask + (r / rows_per_mask_row) * ldmask : NULL;
#if defined(__x86_64__)
        if (avx2) { pi0k_softmax_row_avx2(row, cols, mrow); continue; }
#endif
        float mx = -INFINITY;
        for (size_t j = 0; j < cols; j++) {
            if (mrow) row[j] += mrow[j];
            if (row[j] > mx) mx = row[j];
        }
        float sum = 0.0f;
        for (size_t j = 0; j < cols; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (size_t j = 0; j < cols; j++) row[j] *= inv;
    }
}

float pi0k_peak_fma(int path, uint64_t iters) {
#if defined(__x86_64__)
    if (path == PI0K_PATH_AVX2 && has_avx2_fma()) return pi0k_peak_fma_avx2(iters);
    if (path == PI0K_PATH_AVX512 && has_avx512()) return pi0k_peak_fma_avx512(iters);
#endif
    (void)path; (void)iters;
    return 0.0f;
}
