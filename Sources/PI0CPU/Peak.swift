// The machine's measured fp32 FMA peak, the yardstick for kernel efficiency (docs/ARCHITECTURE.md quotes
// "% of the measured fp32 FMA peak"). 12 independent FMA chains per iteration hide the FMA latency.
import CPI0Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum FMAPeak {
    /// GFLOP/s of one thread running independent vector FMAs on the widest exact path (AVX-512, else AVX2);
    /// nil on CPUs with neither. Best of `repeats` runs of `iterations` iterations, timed by the thread's
    /// CPU time (`threadCPUSeconds`), so time other processes take on a busy machine is not counted.
    public static func measure(iterations: UInt64 = 50_000_000, repeats: Int = 3) -> Double? {
        let path: KernelPath
        if KernelPath.usable.contains(.avx512) { path = .avx512 } else if KernelPath.usable.contains(.avx2) { path = .avx2 } else { return nil }
        let width = path == .avx512 ? 16.0 : 8.0
        var best = 0.0
        for _ in 0..<repeats {
            let t0 = threadCPUSeconds()
            let sink = pi0k_peak_fma(path.c, iterations)
            let secs = threadCPUSeconds() - t0
            if sink.isNaN { continue } // uses the result so the loop is not removed
            best = max(best, Double(iterations) * 12 * width * 2 / secs / 1e9)
        }
        return best
    }
}

extension FMAPeak {
    /// GFLOP/s of `threads` threads running the same FMA loop at once, timed by the wall clock: on an idle
    /// machine ≈ threads × `measure()`; less when other processes (or the host) take the cores. The
    /// comparison script (`tools/reference/compare_speed.py`) uses the two as its quiet-machine check.
    public static func measureWall(threads: Int, iterations: UInt64 = 20_000_000, repeats: Int = 3) -> Double? {
        let path: KernelPath
        if KernelPath.usable.contains(.avx512) { path = .avx512 } else if KernelPath.usable.contains(.avx2) { path = .avx2 } else { return nil }
        let width = path == .avx512 ? 16.0 : 8.0, n = max(1, threads)
        var best = 0.0
        for _ in 0..<repeats {
            let clock = ContinuousClock(), start = clock.now
            Threading.run(tasks: n) { _ in _ = pi0k_peak_fma(path.c, iterations) }
            let d = (clock.now - start).components
            let secs = Double(d.seconds) + Double(d.attoseconds) * 1e-18
            best = max(best, Double(n) * Double(iterations) * 12 * width * 2 / secs / 1e9)
        }
        return best
    }
}

/// CPU time consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID), in seconds.
public func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
