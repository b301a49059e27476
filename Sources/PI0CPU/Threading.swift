// Thread count and the fork-join helper used by the kernels (a persistent pool in CPI0Kernels).
import CPI0Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Threading {
    /// `PI0_NUM_THREADS` if set to a positive integer, else the number of active processors.
    public static var defaultThreadCount: Int {
        if let s = environment("PI0_NUM_THREADS"), let n = Int(s), n > 0 { return n }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// `threads <= 0` means `defaultThreadCount`.
    static func resolve(_ threads: Int) -> Int { threads > 0 ? threads : defaultThreadCount }

    /// Runs body(0..<tasks), on the calling thread when tasks == 1, else on the calling thread and the
    /// kernels' persistent workers (`pi0k_parallel_run`: no allocation per call, unlike
    /// DispatchQueue.concurrentPerform). Returns when every task has run.
    static func run(tasks: Int, _ body: @Sendable (Int) -> Void) {
        if tasks <= 1 {
            if tasks == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var task = escapable
            withUnsafeMutablePointer(to: &task) { p in
                pi0k_parallel_run(tasks, tasks, { ctx, i in
                    ctx!.assumingMemoryBound(to: (@Sendable (Int) -> Void).self).pointee(i)
                }, p)
            }
        }
    }

    /// Runs body(&job, i) for i in 0..<tasks like `run(tasks:_:)`, with no closure context: `body` captures
    /// nothing (a @convention(c) function), everything it needs is in `job`, which lives on the caller's
    /// stack. This is what the per-layer kernels use, so that a denoise step allocates nothing.
    static func run<Job>(tasks: Int, job: inout Job, _ body: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void) {
        if tasks <= 0 { return }
        withUnsafeMutablePointer(to: &job) { pi0k_parallel_run(tasks, tasks, body, UnsafeMutableRawPointer($0)) }
    }

    static func environment(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// Splits 0..<count into `parts` contiguous ranges whose sizes differ by at most one.
    static func split(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let lo = part * base + min(part, extra)
        return lo..<(lo + base + (part < extra ? 1 : 0))
    }
}

/// Carries a raw pointer into a `@Sendable` task closure. The kernels give each task disjoint output
/// ranges and only read the inputs, which is what makes this sound.
struct SendablePointer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
