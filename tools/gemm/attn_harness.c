// C harness for the unmasked (keys-as-rows) attention kernel, pi0k_attn_*: SigLIP's layout (H heads of
// T x S x D, q/k/v/out rows H*D floats apart), one thread, checked against a double-precision reference.
// Used for the attention A/B figures in docs/PERFORMANCE_KERNELS.md; no Swift build needed:
//
//   S=Sources/CPI0Kernels
//   clang -O2 -I$S/include -I$S tools/gemm/attn_harness.c $S/pi0_attention.c $S/pi0_kernels.c \
//       $S/pi0_tiles_x86.c $S/pi0_pool.c $S/pi0_elementwise.c -lpthread -lm -o /tmp/attn_harness
//   /tmp/attn_harness [PATH] [REPS] [T S H D]     PATH 0 portable, 1 avx2, 2 avx512 (default 2); 256 256 16 72
//
// Prints the best and median GFLOP/s by the thread's CPU time over REPS passes (flop = 4·T·S·H·D) and the
// largest |out − reference| over the first head.
#include "pi0_kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double cpu(void) { struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int path = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 50;
    size_t t = argc > 6 ? atoi(argv[3]) : 256, s = argc > 6 ? atoi(argv[4]) : 256, h = argc > 6 ? atoi(argv[5]) : 16,
           d = argc > 6 ? atoi(argv[6]) : 72, ld = h * d;
    if (!pi0k_path_supported(path)) { printf("path %d not supported\n", path); return 1; }
    float *q = malloc(t * ld * 4), *k = malloc(s * ld * 4), *v = malloc(s * ld * 4), *out = malloc(t * ld * 4);
    unsigned long long r = 88172645463325252ull;
    for (size_t i = 0; i < t * ld; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; q[i] = (float)((r >> 40) / 16777216.0 * 4 - 2); }
    for (size_t i = 0; i < s * ld; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; k[i] = (float)((r >> 40) / 16777216.0 * 2 - 1); v[i] = k[i] * 0.5f + 0.1f; }
    float *keys, *work;
    if (posix_memalign((void **)&keys, 64, pi0k_attn_keys_count(path, s, d) * 4) || posix_memalign((void **)&work, 64, pi0k_attn_task_count(path, s, d) * 4)) return 1;
    const float scale = 1.0f / sqrtf((float)d);
    double *times = malloc(reps * sizeof(double));
    for (int rep = -1; rep < reps; rep++) {
        double c0 = cpu();
        for (size_t hh = 0; hh < h; hh++) {
            pi0k_attn_pack_keys(path, k + hh * d, ld, v + hh * d, ld, s, d, keys);
            pi0k_attn_queries(path, keys, q + hh * d, ld, 0, t, s, d, scale, out + hh * d, ld, work);
        }
        if (rep >= 0) times[rep] = cpu() - c0;
    }
    qsort(times, reps, sizeof(double), cmp);
    const double flop = 4.0 * t * s * h * d;
    double err = 0, *p = malloc(s * sizeof(double));
    for (size_t i = 0; i < t; i++) {
        double mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < s; j++) {
            double dot = 0;
            for (size_t dd = 0; dd < d; dd++) dot += (double)q[i * ld + dd] * k[j * ld + dd];
            p[j] = dot * scale; mx = p[j] > mx ? p[j] : mx;
        }
        for (size_t j = 0; j < s; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (size_t dd = 0; dd < d; dd++) {
            double acc = 0;
            for (size_t j = 0; j < s; j++) acc += p[j] * v[j * ld + dd];
            double e = fabs(acc / sum - out[i * ld + dd]); err = e > err ? e : err;
        }
    }
    printf("path %d, %zu x %zu x %zu heads x %zu: best %.1f GFLOP/s (%.3f ms), median %.1f; max |err| head 0: %.2e\n",
           path, t, s, h, d, flop / times[0] / 1e9, times[0] * 1e3, flop / times[reps / 2] / 1e9, err);
    return 0;
}
