// A stand-in libcuda.so.1 for the real driver path (`CUDADriver`, `CUDAContext`): the driver entry
// points `CUDADriver` resolves with dlsym, implemented on the CPU (host memory as device memory, kernels
// by name through KernelEmulator, stream capture recorded and replayed), compiled into its own library
// without a soname (so a bare dlopen("libcuda.so.1") elsewhere never finds it) and loaded through
// PI0_CUDA_LIB_DIR. It checks the Swift side of the real path — symbol names and C signatures as this
// file declares them from cuda.h, kernel lookup, launch parameters, capture calls — not NVIDIA's driver.
import Foundation

enum FakeLibcuda {
    static let source = #"""

// ---- fake CUDA driver (Tests/PI0CUDATests/FakeLibcuda.swift) ----
#include <stdlib.h>
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
struct pi0_fake_launch { std::string name; unsigned g[2], b[2]; size_t shared; std::vector<unsigned long long> params; };
static bool pi0_fake_capturing;
static std::vector<pi0_fake_launch> pi0_fake_recording;
static std::map<long, std::vector<pi0_fake_launch>> pi0_fake_graphs;
static long pi0_fake_next = 100;
static long pi0_fake_counts[8];   // allocations, frees, launches, graph launches, captures, shared attribute set, pinned allocations
static int pi0_fake_run(const pi0_fake_launch& l) {
    std::vector<void*> p;
    for (auto& v : l.params) p.push_back((void*)&v);
    return pi0_emu_launch(l.name.c_str(), l.g[0], l.g[1], l.b[0], l.b[1], l.shared, p.data());
}
extern "C" {
CUresult cuInit(unsigned) { return 0; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int* c) { *c = 1; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? 0 : 101; }
CUresult cuDeviceGetName(char* n, int len, int) { strncpy(n, "pi0 fake driver", len); return 0; }
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
    *v = attr == 75 ? 9 : attr == 76 ? 0 : attr == 97 ? 232448 : 0;   // sm_90, 227 KiB opt-in shared memory
    return 0;
}
CUresult cuDevicePrimaryCtxRetain(void** c, int) { *c = (void*)0x1; return 0; }
CUresult cuCtxSetCurrent(void* c) { return c == (void*)0x1 ? 0 : 201; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
    if (pi0_fake_capturing) return 900;   // CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
    pi0_fake_counts[0]++;
    *p = (CUdeviceptr)aligned_alloc(256, (n + 255) / 256 * 256);
    return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { pi0_fake_counts[1]++; free((void*)p); return 0; }
CUresult cuMemsetD32Async(CUdeviceptr p, unsigned v, size_t n, void*) {
    if (pi0_fake_capturing) return 900;
    for (size_t i = 0; i < n; ++i) ((unsigned*)p)[i] = v;
    return 0;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void*) { if (pi0_fake_capturing) return 900; memcpy((void*)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void*) { if (pi0_fake_capturing) return 900; memcpy(d, (void*)s, n); return 0; }
CUresult cuModuleLoadData(void** m, const void* image) { *m = (void*)0x2; return image ? 0 : 1; }
CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
    if (m != (void*)0x2 || pi0_emu_arity(name) < 0) return 500;   // CUDA_ERROR_NOT_FOUND
    *f = (void*)strdup(name);
    return 0;
}
CUresult cuFuncSetAttribute(void* f, int attr, int value) {
    if (attr == 8 && strcmp((const char*)f, "pi0_attention") == 0 && value <= 232448) { pi0_fake_counts[5]++; return 0; }
    return 1;
}
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
    if (!f || !stream || gz != 1 || bz != 1 || extra || bx * by > 1024) return 1;
    if (shared > (pi0_fake_counts[5] ? 232448u : 49152u)) return 1;   // as the device: over the limit fails
    pi0_fake_launch l{(const char*)f, {gx, gy}, {bx, by}, shared, {}};
    int n = pi0_emu_arity(l.name.c_str());
    for (int i = 0; i < n; ++i) { unsigned long long v; memcpy(&v, params[i], 8); l.params.push_back(v); }
    pi0_fake_counts[2]++;
    if (pi0_fake_capturing) { pi0_fake_recording.push_back(l); return 0; }
    return pi0_fake_run(l) == 0 ? 0 : 1;
}
CUresult cuStreamCreate(void** s, unsigned flags) { *s = (void*)0x3; return flags == 1 ? 0 : 1; }
CUresult cuStreamSynchronize(void* s) { return s == (void*)0x3 && !pi0_fake_capturing ? 0 : 1; }
CUresult cuStreamDestroy_v2(void*) { return 0; }
CUresult cuEventCreate(void** e, unsigned) { *e = (void*)0x4; return 0; }
CUresult cuEventRecord(void*, void* s) { return s == (void*)0x3 && !pi0_fake_capturing ? 0 : 1; }
CUresult cuEventSynchronize(void*) { return 0; }
CUresult cuEventDestroy_v2(void*) { return 0; }
CUresult cuStreamWaitEvent(void* s, void* e, unsigned flags) { return s == (void*)0x3 && e && flags == 0 && !pi0_fake_capturing ? 0 : 1; }
CUresult cuMemHostAlloc(void** p, size_t n, unsigned) { *p = aligned_alloc(256, (n + 255) / 256 * 256); pi0_fake_counts[6]++; return 0; }
CUresult cuMemFreeHost(void* p) { free(p); return 0; }
CUresult cuEventElapsedTime_v2(float* ms, void*, void*) { *ms = 0; return 0; }
CUresult cuStreamBeginCapture_v2(void* s, int mode) {
    if (s != (void*)0x3 || pi0_fake_capturing || mode != 1) return 1;
    pi0_fake_capturing = true; pi0_fake_recording.clear(); pi0_fake_counts[4]++;
    return 0;
}
CUresult cuStreamEndCapture(void* s, void** graph) {
    if (s != (void*)0x3 || !pi0_fake_capturing) return 1;
    pi0_fake_capturing = false;
    long id = pi0_fake_next++;
    pi0_fake_graphs[id] = pi0_fake_recording;
    *graph = (void*)id;
    return 0;
}
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) {
    auto it = pi0_fake_graphs.find((long)graph);
    if (it == pi0_fake_graphs.end()) return 1;
    long id = pi0_fake_next++;
    pi0_fake_graphs[id] = it->second;
    *exec = (void*)id;
    return 0;
}
CUresult cuGraphLaunch(void* exec, void* s) {
    auto it = pi0_fake_graphs.find((long)exec);
    if (it == pi0_fake_graphs.end() || s != (void*)0x3) return 1;
    pi0_fake_counts[3]++;
    for (auto& l : it->second) if (pi0_fake_run(l) != 0) return 1;
    return 0;
}
CUresult cuGraphDestroy(void* g) { return pi0_fake_graphs.erase((long)g) ? 0 : 1; }
CUresult cuGraphExecDestroy(void* e) { return pi0_fake_graphs.erase((long)e) ? 0 : 1; }
CUresult cuGetErrorString(CUresult, const char** s) { *s = "fake driver error"; return 0; }
// For the test: allocations, frees, kernel launches, graph launches, captures, shared-memory opt-ins, pinned allocations.
long pi0_fake_count(int i) { return pi0_fake_counts[i]; }
}
"""#

    /// The folder holding the fake libcuda.so.1 (built once per test process).
    static let folder: Result<String, KernelEmulator.EmulatorError> = {
        let dir = NSTemporaryDirectory() + "pi0-fake-libcuda-\(getpid())"
        return KernelEmulator.compile(extra: source, to: dir + "/libcuda.so.1").map { _ in dir }
    }()
}
