// CPI0Kernels: SIMD micro-kernels for π0's CPU backend.
//
// Every x86 SIMD function carries a function-level `__attribute__((target(...)))`, so the target builds
// with no compiler flags (no unsafeFlags) and on arm64; the path is chosen at run time from the CPU's
// features (see pi0k_cpu_*). The Swift module PI0CPU wraps this API; nothing else should call it.
//
// GEMM convention: y[m, n] = alpha * sum_k x[m, k] * W[n, k] (+ bias[n]), W stored [N, K] (out, in) as in a
// PyTorch nn.Linear checkpoint. W is packed once into panels of NR columns (pi0k_pack_*); fp32 accumulation.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel paths. The packed layout depends on the path, so a packed weight remembers its path.
typedef enum {
    PI0K_PATH_SCALAR = 0,      ///< portable C, auto-vectorised; NR = 16, MR = 4
    PI0K_PATH_AVX2 = 1,        ///< AVX2 + FMA; 6 x 16 tile, NR = 16
    PI0K_PATH_AVX512 = 2,      ///< AVX-512 F/BW/VL; 6 x 64 tile, NR = 64 (bf16 weights widened in-kernel)
    PI0K_PATH_AVX512BF16 = 3,  ///< vdpbf16ps, 6 x 64: bf16 weights AND activations rounded to bf16 (bf16 layers only)
    PI0K_PATH_AVX512BF16_MR5 = 4, ///< PI0K_PATH_AVX512BF16 with a 5 x 64 tile (same packed weights; see pi0k_row_variant)
} pi0k_path;

/// The path a product of m rows runs on: PI0K_PATH_AVX512BF16_MR5 for PI0K_PATH_AVX512BF16 when 5-row tiles
/// pad fewer rows than 6-row ones (m = 50: none against 4), else `path`. A function of (path, m) only, so
/// every thread split of one product uses the same tiles (bit-identical results).
int pi0k_row_variant(int path, size_t m);

/// Weight element types of a packed weight.
typedef enum { PI0K_ELEM_F32 = 0, PI0K_ELEM_BF16 = 1 } pi0k_elem;

/// 1 when the running CPU (and OS) supports the path's instructions, else 0. Always 1 for SCALAR.
int pi0k_path_supported(int path);
/// Short description of the CPU's relevant features, e.g. "avx2+fma" (static storage).
const char *pi0k_cpu_summary(void);

/// Panel width NR (columns per panel) of a path.
size_t pi0k_panel_width(int path);
/// Row tile MR of a path (for splitting work across threads in whole tiles).
size_t pi0k_row_tile(int path);
/// Number of elements (floats for F32, uint16 for BF16) of a packed [n, k] weight.
size_t pi0k_packed_count(int path, int elem, size_t n, size_t k);

/// Pack panels [p0, p1) of W[n, k] (row stride ldw) for `path` (all of them: 0, SIZE_MAX; disjoint ranges
/// may run on different threads). dst (the whole packed buffer) holds pi0k_packed_count elements,
/// 64-byte aligned. Columns past n are zero-filled. For PI0K_PATH_AVX512BF16 only pi0k_pack_bf16 is valid.
void pi0k_pack_f32(int path, const float *w, size_t ldw, size_t n, size_t k, float *dst, size_t p0, size_t p1);
void pi0k_pack_bf16(int path, const uint16_t *w, size_t ldw, size_t n, size_t k, uint16_t *dst, size_t p0, size_t p1);
/// Pack panels [p0, p1) of B[k, n] (row-major, row stride ldb) into the layout of W = Bᵀ (for P·V).
void pi0k_pack_f32_kn(int path, const float *b, size_t ldb, size_t k, size_t n, float *dst, size_t p0, size_t p1);

/// As pi0k_pack_bf16 from fp32 W[n, k] (row stride ldw), and as pi0k_pack_f32_kn from fp32 B[k, n] (W = Bᵀ),
/// each value rounded to bf16 (nearest-even; exact for values that are bf16 already): attention's K and V
/// in bfloat16 mode as the "weights" of the vdpbf16ps products (pi0_pack_bf16.c). Any path's bf16 layout.
void pi0k_pack_f32_as_bf16(int path, const float *w, size_t ldw, size_t n, size_t k, uint16_t *dst, size_t p0, size_t p1);
void pi0k_pack_f32_kn_as_bf16(int path, const float *b, size_t ldb, size_t k, size_t n, uint16_t *dst, size_t p0, size_t p1);

/// Round fp32 rows to bf16 (round to nearest even), zero-padding each row to an even length kpad.
/// Used only by PI0K_PATH_AVX512BF16, whose x operand is bf16: x[m, k] (ldx) -> dst[m, kpad] (row stride kpad).
void pi0k_round_rows_bf16(const float *x, size_t m, size_t ldx, size_t k, uint16_t *dst, size_t kpad);
/// The calling thread's buffer of at least `count` uint16 for pi0k_round_rows_bf16's output (grown on
/// demand, kept for the thread's life; NULL when out of memory). Valid until the next call on this thread.
uint16_t *pi0k_bf16_rows_scratch(size_t count);

/// The GEMM over rows [m0, m1) and panels [p0, p1) (columns [p0*NR, min(p1*NR, n))).
/// x: fp32 [*, k] with row stride ldx (for AVX512BF16: uint16 bf16 rows from pi0k_round_rows_bf16,
/// ldx = kpad). packed: from pi0k_pack_* with the same path/elem/n/k. bias may be NULL.
/// Each output element is computed by the same instruction sequence whatever the ranges, so any split of
/// rows/panels across threads gives bit-identical results. Returns 0, or -1 when the 96 KiB x-block
/// scratch cannot be allocated, -2 for an element type the path has no kernel for (f32 on AVX512BF16).
int pi0k_gemm(int path, int elem, const void *x, size_t ldx, size_t m0, size_t m1,
              const void *packed, size_t n, size_t k, float alpha, const float *bias,
              float *y, size_t ldy, size_t p0, size_t p1);

/// Rows of scores s[r, 0..<cols] (row stride lds): s += mask row (if mask != NULL; mask row for score row
/// r is mask + (r / rows_per_mask_row) * ldmask), then softmax in place in fp32 (max-subtracted).
/// path PI0K_PATH_SCALAR uses libm expf; the SIMD paths an AVX2 polynomial exp (~2 ulp).
void pi0k_softmax_rows(int path, float *s, size_t rows, size_t cols, size_t lds,
                       const float *mask, size_t ldmask, size_t rows_per_mask_row);

/// Attention of one head without a mask, keys as rows (pi0_attention.c): out[t, :] = softmax_j(scale ·
/// q[t, :]·k[j, :]) · v for t in [t0, t1). `keys` (pi0k_attn_keys_count floats, 64-byte aligned) holds K
/// and Vᵀ packed by pi0k_attn_pack_keys for the same path, s and d; `work` (pi0k_attn_task_count floats,
/// 64-byte aligned) is the calling task's scratch. A query's result does not depend on t0 or t1. Returns 0,
/// or -2 for a path without fp32 tiles (PI0K_PATH_AVX512BF16).
size_t pi0k_attn_keys_count(int path, size_t s, size_t d);
size_t pi0k_attn_task_count(int path, size_t s, size_t d);
void pi0k_attn_pack_keys(int path, const float *k, size_t ldk, const float *v, size_t ldv, size_t s, size_t d,
                         float *keys);
int pi0k_attn_queries(int path, const float *keys, const float *q, size_t ldq, size_t t0, size_t t1, size_t s,
                      size_t d, float scale, float *out, size_t ldo, float *work);

/// Measured-peak helper: runs `iters` iterations of 12 independent 8-wide FMAs (AVX2) or 16-wide (AVX-512)
/// chains; returns a value that depends on all of them. flops = iters * 12 * width * 2. Returns 0 and does
/// nothing when the path is not supported. path: PI0K_PATH_AVX2 or PI0K_PATH_AVX512.
float pi0k_peak_fma(int path, uint64_t iters);

/// Fork-join: runs fn(ctx, i) for i in [0, tasks) on the calling thread and up to threads - 1 persistent
/// workers, and returns when all have finished. Runs inline (in order) when tasks or threads is 1, when
/// called from inside a task, or while another thread's region is running. Allocates nothing per call.
typedef void (*pi0k_task_fn)(void *ctx, long task);
void pi0k_parallel_run(long tasks, long threads, pi0k_task_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
