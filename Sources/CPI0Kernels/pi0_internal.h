// Internal declarations shared by the CPI0Kernels C files (not part of the public header).
#pragma once
#include <stddef.h>
#include <stdint.h>

/// One register tile: c[0..<mr, 0..<nr] (row stride ldc) (+)= A · b-panel[0..<kc, 0..<NR], where A is the
/// packed x micro-panel: element (r, k) at a[k*MR + r] (for the vdpbf16ps path, bf16 pairs: the pair
/// (k, k+1) of row r at a[(k/2)*2*MR + 2r]). Rows past mr are zero in A and their results are dropped.
/// first: store the sum (else add it to c, the earlier K blocks' sum). last: then apply alpha and bias
/// (bias padded to NR). b_next (may be NULL): the next panel's block, prefetched into L2 meanwhile.
typedef void (*pi0k_tile_fn)(size_t kc, const void *a, size_t mr, const void *b, const void *b_next,
                             float *c, size_t ldc, size_t nr, int first, int last, float alpha,
                             const float *bias);

typedef struct {
    size_t mr, nr, kc;       // register tile rows, panel width, K block
    size_t kc_deep;          // K block when k >= PI0K_DEEP_K (fewer passes over y; see pi0_kernels.c)
    pi0k_tile_fn tile_f32;   // f32 panels (NULL when unsupported)
    pi0k_tile_fn tile_bf16;  // bf16 panels
    size_t x_elem_size;      // 4 (fp32 x) or 2 (bf16 x for the vdpbf16ps path)
    size_t k_align;          // K padding of the packed panels (2 for vdpbf16ps pairs)
    size_t nc_bytes;         // W bytes per column chunk and K block (the chunk stays in L2 across row blocks)
    size_t pf_split;         // the next panel's prefetch is spread over this many row tiles (see pi0k_gemm)
} pi0k_path_desc;

/// The path's tile shape, K blocks and tile functions (pi0_kernels.c).
const pi0k_path_desc *pi0k_desc(int path);
/// Packs fp32 (or bf16-pair) x rows [i0, i1) x columns [kb, kb+kc) into MR-row micro-panels (see pi0_kernels.c).
void pi0k_pack_a(const pi0k_path_desc *d, const void *x, size_t ldx, size_t i0, size_t i1, size_t kb, size_t kc, void *dst);

#if defined(__x86_64__)
void pi0k_tile_avx2_f32(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
void pi0k_tile_avx2_bf16(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
void pi0k_tile_avx512_f32(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
void pi0k_tile_avx512_bf16(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
void pi0k_tile_avx512bf16_dot(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
void pi0k_tile_avx512bf16_dot5(size_t, const void *, size_t, const void *, const void *, float *, size_t, size_t, int, int, float, const float *);
float pi0k_peak_fma_avx2(uint64_t iters);
float pi0k_peak_fma_avx512(uint64_t iters);
void pi0k_round_row_bf16_avx512(const float *x, size_t k, uint16_t *dst);
void pi0k_softmax_row_avx2(float *s, size_t cols, const float *mask);
void pi0k_pack_a6_avx2(const float *x, size_t ldx, size_t kc, float *dst, const float *next);
#endif
