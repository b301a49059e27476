// LD_PRELOAD malloc counter for checking that a loop allocates nothing: run the same command with two
// step counts and compare the totals (the difference divided by the extra steps is allocations per step).
//
//   cc -O2 -shared -fPIC -o /tmp/count_alloc.so tools/alloc/count_alloc.c -ldl
//   LD_PRELOAD=/tmp/count_alloc.so .build/release/pi0 bench --checkpoint DIR --runs 1 --steps 10
//   LD_PRELOAD=/tmp/count_alloc.so .build/release/pi0 bench --checkpoint DIR --runs 1 --steps 20
//
// At exit it prints to standard error: calls to malloc/calloc/realloc/posix_memalign/aligned_alloc/
// memalign, and how many of them asked for 4 KiB or more.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong calls, large;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

// dlsym may call calloc before real_calloc is known: serve that from a static arena.
static char arena[4096];
static size_t arena_used;

// COUNT_ALLOC_TRACE=FROM,COUNT prints the stacks of allocations number FROM ..< FROM+COUNT to stderr
// (symbolise with `addr2line` or read the names that backtrace_symbols finds).
static _Thread_local int in_trace;
static long trace_from = -1, trace_count;

static void count(size_t n) {
    unsigned long i = atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    if (n >= 4096) atomic_fetch_add_explicit(&large, 1, memory_order_relaxed);
    if (trace_from < 0) {
        const char *t = getenv("COUNT_ALLOC_TRACE");
        trace_from = t ? atol(t) : 0x7fffffffL;
        const char *c = t ? strchr(t, ',') : NULL;
        trace_count = c ? atol(c + 1) : 0;
    }
    if ((long)i >= trace_from && (long)i < trace_from + trace_count && !in_trace) {
        in_trace = 1;
        void *frames[24];
        int depth = backtrace(frames, 24);
        char head[64];
        int len = snprintf(head, sizeof head, "-- allocation %lu (%zu bytes)\n", i, n);
        write(2, head, len);
        backtrace_symbols_fd(frames, depth, 2);
        in_trace = 0;
    }
}

static void init(void) {
    if (real_malloc) return;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
}

void *malloc(size_t n) { init(); count(n); return real_malloc(n); }
void *calloc(size_t a, size_t b) {
    if (!real_calloc) { // during dlsym
        void *p = arena + arena_used;
        arena_used += (a * b + 15) & ~(size_t)15;
        return p;
    }
    count(a * b);
    return real_calloc(a, b);
}
void *realloc(void *p, size_t n) { init(); count(n); return real_realloc(p, n); }
int posix_memalign(void **p, size_t al, size_t n) { init(); count(n); return real_posix_memalign(p, al, n); }
void *aligned_alloc(size_t al, size_t n) { init(); count(n); return real_aligned_alloc(al, n); }
void *memalign(size_t al, size_t n) { init(); count(n); return real_memalign(al, n); }
void free(void *p) {
    if ((char *)p >= arena && (char *)p < arena + sizeof arena) return;
    static void (*real_free)(void *);
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "count_alloc: %lu allocations, %lu of them >= 4 KiB\n", atomic_load(&calls), atomic_load(&large));
}
