// Runs the CUDA kernels on the CPU: the kernel source (Sources/PI0CUDA/Kernels*.swift) is compiled as
// C++ with a small shim (below) that maps the CUDA built-ins onto a grid/block emulation, and loaded
// with dlopen. Each CUDA thread of a block is a fiber on the calling thread, switched at `__syncthreads`
// (so the barrier is real and `__shared__` memory is shared); the blocks run one after another. Compiled with
// -ffp-contract=off (as NVRTC with --fmad=false), so the kernels' float arithmetic is the device's, and
// only the math library differs (glibc here, which is also what ReferenceOps calls).
import Foundation
@testable import PI0CUDA

enum KernelEmulator {
    /// The C++ prelude that makes the CUDA source plain C++.
    static let shim = #"""
#include <math.h>
#include <string.h>
#include <stdint.h>
#include <stddef.h>
#include <ucontext.h>
#include <map>
#include <string>
#include <utility>
#include <vector>
#define PI0_EMULATION 1
struct pi0_dim3 { unsigned x, y, z; };
static pi0_dim3 threadIdx, blockIdx;
static pi0_dim3 blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
// The threads of a block are fibers on the calling thread: each runs until its next __syncthreads (or
// its end), then the next one runs; a block's barrier phase ends when every fiber has reached it.
// Deterministic, and no kernel threads to wake. A block whose thread 0 ends without reaching a barrier
// runs its other threads as plain calls (a barrier reached by them then is an error: the kernel rules in
// Sources/PI0CUDA/Kernels.swift ask every thread of a block to reach every barrier). On x86-64 a fiber
// switch is six pushes, a stack swap and six pops (no system call); elsewhere ucontext.
static std::vector<char> pi0_done;
static std::vector<unsigned char> pi0_stacks;
static const size_t pi0_stack_bytes = 128 * 1024;
static int pi0_current;
static void (*pi0_kernel)(void**);
static void** pi0_args;
static std::vector<unsigned char> pi0_dynamic_shared;
static bool pi0_direct, pi0_synced, pi0_error;
#if defined(__x86_64__) && !defined(PI0_EMULATOR_UCONTEXT)
asm(R"(
.text
.globl pi0_switch
.hidden pi0_switch
.type pi0_switch,@function
pi0_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
)");
extern "C" void pi0_switch(void** save, void* to);
static void* pi0_scheduler_sp;
static std::vector<void*> pi0_fiber_sp;
static void pi0_fiber_entry() {
    pi0_kernel(pi0_args);
    pi0_done[pi0_current] = 1;
    pi0_switch(&pi0_fiber_sp[pi0_current], pi0_scheduler_sp);   // never resumed
}
static void pi0_start(int t) {
    pi0_fiber_sp.resize(pi0_done.size());
    uintptr_t top = ((uintptr_t)(pi0_stacks.data() + (t + 1) * pi0_stack_bytes)) & ~(uintptr_t)15;
    void** sp = (void**)(top - 64);               // six saved registers, the entry as return address, padding
    for (int i = 0; i < 8; ++i) sp[i] = 0;
    sp[6] = (void*)&pi0_fiber_entry;
    pi0_fiber_sp[t] = sp;
    pi0_done[t] = 0;
}
static void pi0_resume(int t) { pi0_switch(&pi0_scheduler_sp, pi0_fiber_sp[t]); }
static void pi0_yield() { pi0_switch(&pi0_fiber_sp[pi0_current], pi0_scheduler_sp); }
#else
static ucontext_t pi0_scheduler;
static std::vector<ucontext_t> pi0_fibers;
static void pi0_fiber_entry() { pi0_kernel(pi0_args); pi0_done[pi0_current] = 1; }
static void pi0_start(int t) {
    pi0_fibers.resize(pi0_done.size());
    getcontext(&pi0_fibers[t]);
    pi0_fibers[t].uc_stack.ss_sp = pi0_stacks.data() + t * pi0_stack_bytes;
    pi0_fibers[t].uc_stack.ss_size = pi0_stack_bytes;
    pi0_fibers[t].uc_link = &pi0_scheduler;
    makecontext(&pi0_fibers[t], pi0_fiber_entry, 0);
    pi0_done[t] = 0;
}
static void pi0_resume(int t) { swapcontext(&pi0_scheduler, &pi0_fibers[t]); }
static void pi0_yield() { swapcontext(&pi0_fibers[pi0_current], &pi0_scheduler); }
#endif
static void pi0_syncthreads() {
    if (pi0_direct) { pi0_error = true; return; }   // some threads of the block skipped this barrier
    pi0_synced = true;
    pi0_yield();
}
#define __syncthreads() pi0_syncthreads()
#define PI0_DYNAMIC_SHARED(T, name) T* name = (T*)pi0_dynamic_shared.data()
static inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static inline float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }

"""#

    /// The launcher appended after the kernels: a table from kernel name to a trampoline that unpacks
    /// cuLaunchKernel's `void**` parameters into the kernel's own parameter types.
    static func launcher(_ names: [String]) -> String {
        let entries = names.map { "        {\"\($0)\", [](void** a) { pi0_invoke(\($0), a); }}," }.joined(separator: "\n")
        let arities = names.map { "        {\"\($0)\", pi0_arity(\($0))}," }.joined(separator: "\n")
        return #"""

template <typename... A, size_t... I> static void pi0_call(void (*f)(A...), void** a, std::index_sequence<I...>) {
    f(*(A*)a[I]...);
}
template <typename... A> static void pi0_invoke(void (*f)(A...), void** a) { pi0_call(f, a, std::index_sequence_for<A...>{}); }
template <typename... A> static int pi0_arity(void (*)(A...)) { return (int)sizeof...(A); }

// The number of parameters of a kernel (-1: unknown name).
extern "C" int pi0_emu_arity(const char* name) {
    static const std::map<std::string, int> table = {
"""# + arities + #"""

    };
    auto it = table.find(name);
    return it == table.end() ? -1 : it->second;
}

extern "C" int pi0_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned bx, unsigned by, size_t shared, void** args) {
    static const std::map<std::string, void (*)(void**)> table = {
"""# + entries + #"""

    };
    auto it = table.find(name);
    if (it == table.end()) return 1;
    pi0_kernel = it->second; pi0_args = args;
    gridDim = {gx, gy, 1}; blockDim = {bx, by, 1};
    int n = (int)(bx * by);
    // Uninitialised shared memory reads as NaN (0xFF bytes), so a kernel that reads before writing shows.
    pi0_dynamic_shared.assign(shared + 16, 0xFF);
    pi0_done.resize(n);
    if (pi0_stacks.size() < n * pi0_stack_bytes) pi0_stacks.resize(n * pi0_stack_bytes);
    pi0_error = false;
    auto resume = [&](int t) {
        pi0_current = t;
        threadIdx = {(unsigned)t % bx, (unsigned)t / bx, 0};
        pi0_resume(t);
    };
    for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, 0};
        pi0_synced = false;
        pi0_start(0);
        resume(0);
        if (pi0_done[0] && !pi0_synced) {   // no barrier: the other threads as plain calls
            pi0_direct = true;
            for (int t = 1; t < n; ++t) {
                pi0_current = t;
                threadIdx = {(unsigned)t % bx, (unsigned)t / bx, 0};
                pi0_kernel(pi0_args);
            }
            pi0_direct = false;
            continue;
        }
        for (int t = 1; t < n; ++t) { pi0_start(t); resume(t); }   // the rest of the first barrier phase
        for (bool running = true; running;) {                  // one barrier phase per pass
            running = false;
            for (int t = 0; t < n; ++t) {
                if (pi0_done[t]) continue;
                resume(t);
                running = true;
            }
        }
    }
    if (pi0_error) return 2;
    return 0;
}
"""#
    }

    typealias Launch = @convention(c) (UnsafePointer<CChar>?, UInt32, UInt32, UInt32, UInt32, Int,
                                       UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32

    /// A C++ compiler: $CXX, the Swift toolchain's clang++, or clang++/g++/c++ on PATH.
    static func compiler() -> String? {
        var candidates: [String] = []
        if let cxx = ProcessInfo.processInfo.environment["CXX"], !cxx.isEmpty { candidates.append(cxx) }
        candidates += ["/opt/swift/usr/bin/clang++", "/usr/bin/clang++", "/usr/bin/g++", "/usr/bin/c++"]
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates += ["clang++", "g++", "c++"].map { "\(dir)/\($0)" }
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The compiled kernels, once per test process (nil with the reason when there is no compiler).
    static let loaded: Result<Launch, EmulatorError> = load()

    struct EmulatorError: Error, CustomStringConvertible { var description: String }

    private static func load() -> Result<Launch, EmulatorError> {
        let dir = NSTemporaryDirectory() + "pi0-cuda-emulator-\(getpid())"
        let lib: String
        switch compile(extra: "", to: dir + "/libkernels.so") {
        case let .failure(e): return .failure(e)
        case let .success(path): lib = path
        }
        guard let h = dlopen(lib, RTLD_NOW | RTLD_LOCAL), let sym = dlsym(h, "pi0_emu_launch") else {
            return .failure(EmulatorError(description: "dlopen \(lib): \(dlerror().map { String(cString: $0) } ?? "?")"))
        }
        try? FileManager.default.removeItem(atPath: dir)   // loaded: the files are no longer needed
        return .success(unsafeBitCast(sym, to: Launch.self))
    }

    /// Compiles shim + kernels + launcher + `extra` into the shared library `output`.
    static func compile(extra: String, to output: String) -> Result<String, EmulatorError> {
        guard let cxx = compiler() else {
            return .failure(EmulatorError(description: "no C++ compiler (set CXX, or install clang++ or g++) to run the CUDA kernels on the CPU"))
        }
        let dir = (output as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = output + ".cpp"
        let text = shim + CUDAKernelCache.source + launcher(CUDAKernelCache.kernelNames) + extra
        do { try text.write(toFile: src, atomically: true, encoding: .utf8) } catch {
            return .failure(EmulatorError(description: "cannot write \(src): \(error)"))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cxx)
        // PI0_EMULATOR_UCONTEXT=1: the portable ucontext fibers on x86-64 too (to check that path).
        let portable = ProcessInfo.processInfo.environment["PI0_EMULATOR_UCONTEXT"] == "1" ? ["-DPI0_EMULATOR_UCONTEXT"] : []
        p.arguments = portable + ["-std=c++17", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
                                  "-Wno-unknown-pragmas", "-o", output, src]
        let pipe = Pipe()
        p.standardError = pipe; p.standardOutput = pipe
        do { try p.run() } catch { return .failure(EmulatorError(description: "\(cxx) did not start: \(error)")) }
        let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            return .failure(EmulatorError(description: "\(cxx) failed on the kernel source (\(src)):\n\(log)"))
        }
        return .success(output)
    }
}
