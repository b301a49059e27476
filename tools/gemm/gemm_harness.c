// C harness for pi0k_gemm: GFLOP/s of one product, split across threads exactly as GEMM.swift splits it
// (rows when M >= 96 * threads and the weights are <= 24 MiB or K >= 8192, else panels). Used for the kernel A/B
// figures in docs/PERFORMANCE_KERNELS.md; no Swift build needed:
//
//   S=Sources/CPI0Kernels
//   clang -O2 -I$S/include -I$S tools/gemm/gemm_harness.c $S/pi0_kernels.c $S/pi0_tiles_x86.c $S/pi0_pool.c \
//       $S/pi0_elementwise.c -lpthread -lm -o /tmp/gemm_harness
//   /tmp/gemm_harness M K N THREADS PATH [ELEM] [REPS]     PATH 0 portable, 1 avx2, 2 avx512, 3 vdpbf16ps
//                                                         ELEM 0 f32 weights, 1 bf16 (PATH 3: bf16 only)
//
// Prints the best and mean wall-clock GFLOP/s over REPS runs after one warm-up, and the best by process CPU
// time divided by the threads (for one thread on a busy machine, the figure to compare). x and W are
// deterministic pseudo-random values; for PATH 3 the x bytes are read as bf16 rows (timing only).
#include "pi0_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef struct { int path, elem; const float *x; size_t ldx, m; const void *packed; size_t n, k; float *y;
  size_t panels, tiles, mr; long pParts, mParts; } job_t;
static void split(size_t count, long parts, long part, size_t *lo, size_t *hi) {
  size_t base = count / parts, extra = count % parts; *lo = part * base + (part < (long)extra ? part : extra);
  *hi = *lo + base + (part < (long)extra ? 1 : 0); }
static void task(void *ctx, long t) { job_t *j = ctx; size_t p0,p1,t0,t1;
  split(j->panels, j->pParts, t % j->pParts, &p0, &p1); split(j->tiles, j->mParts, t / j->pParts, &t0, &t1);
  size_t m0 = t0 * j->mr, m1 = t1 * j->mr < j->m ? t1 * j->mr : j->m;
  pi0k_gemm(j->path, j->elem, j->x, j->ldx, m0, m1, j->packed, j->n, j->k, 1.0f, NULL, j->y, j->n, p0, p1); }
static double cpu(void){ struct timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&ts); return ts.tv_sec+ts.tv_nsec*1e-9; }
static double now(void){ struct timespec ts; clock_gettime(CLOCK_MONOTONIC,&ts); return ts.tv_sec+ts.tv_nsec*1e-9; }
int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: m k n threads path [elem] [reps]\n"); return 1; }
  size_t m = atol(argv[1]), k = atol(argv[2]), n = atol(argv[3]); long nt = atol(argv[4]); int path = atoi(argv[5]);
  int elem = argc > 6 ? atoi(argv[6]) : 0; int reps = argc > 7 ? atoi(argv[7]) : 5;
  float *x = aligned_alloc(64, m * k * 4 + 64), *w = aligned_alloc(64, n * k * 4 + 64), *y = aligned_alloc(64, m * n * 4 + 64);
  for (size_t i = 0; i < m * k; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < n * k; i++) w[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
  size_t cnt = pi0k_packed_count(path, elem, n, k); void *packed = aligned_alloc(64, cnt * 4 + 64);
  if (elem) { uint16_t *wb = malloc(n*k*2); for (size_t i=0;i<n*k;i++){ uint32_t u; memcpy(&u,&w[i],4); wb[i]=u>>16; }
    pi0k_pack_bf16(path, wb, k, n, k, packed, 0, (size_t)-1); free(wb); }
  else pi0k_pack_f32(path, w, k, n, k, packed, 0, (size_t)-1);
  size_t nr = pi0k_panel_width(path), mr = pi0k_row_tile(path), panels = (n + nr - 1) / nr, tiles = (m + mr - 1) / mr;
  long ntt = nt < (long)(panels * tiles) ? nt : (long)(panels * tiles);
  size_t wbytes = n * k * (elem ? 2 : 4);
  int byRows = ntt > 1 && m >= (size_t)ntt * 96 && (wbytes <= (24u << 20) || k >= 8192);
  char *env = getenv("SPLIT"); if (env) byRows = env[0] == 'r';
  long pParts = byRows ? 1 : (ntt < (long)panels ? ntt : (long)panels);
  long mParts = byRows ? ntt : ((ntt + pParts - 1) / pParts < (long)tiles ? (ntt + pParts - 1) / pParts : (long)tiles);
  if (mParts < 1) mParts = 1;
  job_t j = {path, elem, x, k, m, packed, n, k, y, panels, tiles, mr, pParts, mParts};
  double best = 1e9, sum = 0, bestc = 1e9; double flops = 2.0 * m * n * k;
  for (int r = 0; r < reps + 1; r++) { double t0 = now(), c0 = cpu(); pi0k_parallel_run(pParts * mParts, pParts * mParts, task, &j);
    double t = now() - t0, c = (cpu() - c0) / (pParts * mParts); if (r > 0) { if (t < best) best = t; sum += t; if (c < bestc) bestc = c; } }
  printf("%zux%zu->%zu thr %ld path %d elem %d split %s: wall best %.1f mean %.1f, cpu-best %.1f GFLOP/s\n", m, k, n, nt, path, elem,
         byRows ? "rows" : "panels", flops / best / 1e9, flops / (sum / reps) / 1e9, flops / bestc / 1e9);
  return 0; }
