// A small persistent thread pool for the kernels' fork-join regions. Workers are started on first use and
// then wait for work: they spin briefly (a denoise step is hundreds of short regions in a row), then sleep
// on a condition variable. A region publishes (fn, ctx, tasks); the caller and the workers take task
// indices from an atomic counter, and the caller returns when every task has finished. Task i always does
// the same work whoever runs it, so results do not depend on which thread ran what.
// Nothing is allocated per region (DispatchQueue.concurrentPerform allocates on every call).
#include "pi0_kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

enum { MAX_WORKERS = 255, SPIN_ROUNDS = 20000 };

static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER; // one region at a time
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static int started;                          // workers started (under start_lock)

// The published region. Task claims go through `claim`, which holds the region's generation (low 32
// bits) in its high half and the next task index in its low half: a worker that arrives late, after its
// region finished and another was published, fails its compare-and-swap instead of taking a task of the
// new region with the old region's bounds. A claimed task keeps its region alive (the caller waits for
// tasks_left == 0 before publishing the next), so fn and ctx read after a successful claim are its own.
static _Atomic(pi0k_task_fn) region_fn;
static _Atomic(void *) region_ctx;
static atomic_long region_tasks;
static atomic_ullong claim;
static atomic_long tasks_left;
static atomic_ulong generation;              // bumped when a region is published (workers watch it)
static _Thread_local int in_region;          // this thread is running a task (nested calls run inline)

static void take_tasks(unsigned long gen) {
    const unsigned long long tag = (unsigned long long)(gen & 0xffffffffu) << 32;
    unsigned long long v = atomic_load_explicit(&claim, memory_order_acquire);
    for (;;) {
        if ((v & ~0xffffffffull) != tag) return;
        const long i = (long)(v & 0xffffffffu);
        if (i >= atomic_load_explicit(&region_tasks, memory_order_relaxed)) return;
        if (!atomic_compare_exchange_weak_explicit(&claim, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
            continue; // v now holds the current value
        pi0k_task_fn fn = atomic_load_explicit(&region_fn, memory_order_relaxed);
        fn(atomic_load_explicit(&region_ctx, memory_order_relaxed), i);
        atomic_fetch_sub_explicit(&tasks_left, 1, memory_order_release);
        v = atomic_load_explicit(&claim, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    (void)arg;
    in_region = 1;
    unsigned long seen = atomic_load_explicit(&generation, memory_order_acquire);
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
#if defined(__x86_64__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&wake_lock);
            while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&wake_cond, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
            break;
        }
        seen = g;
        take_tasks(g);
    }
    return NULL;
}

static void ensure_workers(int want) {
    if (want > MAX_WORKERS) want = MAX_WORKERS;
    pthread_mutex_lock(&start_lock);
    while (started < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 8u << 20);
        const int rc = pthread_create(&t, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break; // fewer workers: the caller runs the remaining tasks itself
        started++;
    }
    pthread_mutex_unlock(&start_lock);
}

void pi0k_parallel_run(long tasks, long threads, pi0k_task_fn fn, void *ctx) {
    if (tasks <= 0) return;
    // One task, one thread, a call from inside a task, or another region in flight on another thread:
    // run the tasks here, in order.
    if (tasks == 1 || threads <= 1 || in_region || pthread_mutex_trylock(&region_lock) != 0) {
        for (long i = 0; i < tasks; i++) fn(ctx, i);
        return;
    }
    ensure_workers((int)(threads < tasks ? threads : tasks) - 1);
    const unsigned long gen = atomic_load_explicit(&generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&region_fn, fn, memory_order_relaxed);
    atomic_store_explicit(&region_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&region_tasks, tasks, memory_order_relaxed);
    atomic_store_explicit(&tasks_left, tasks, memory_order_relaxed);
    atomic_store_explicit(&claim, (unsigned long long)(gen & 0xffffffffu) << 32, memory_order_release);
    pthread_mutex_lock(&wake_lock);
    atomic_store_explicit(&generation, gen, memory_order_release);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
    in_region = 1;
    take_tasks(gen);
    in_region = 0;
    // wait for tasks still running on workers; yield the core after a while (a worker may be waiting
    // for it on a machine with more runnable threads than cores)
    for (int spins = 0; atomic_load_explicit(&tasks_left, memory_order_acquire) > 0; spins++) {
#if defined(__x86_64__)
        if (spins < 4000) { __builtin_ia32_pause(); continue; }
#endif
        sched_yield();
    }
    pthread_mutex_unlock(&region_lock);
}
