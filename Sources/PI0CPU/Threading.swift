// Thread count and the fork-join helper used by the kernels (DispatchQueue.concurrentPerform).
import Dispatch
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

    /// Runs body(0..<tasks), on the calling thread when tasks == 1, else concurrently.
    static func run(tasks: Int, _ body: @Sendable (Int) -> Void) {
        if tasks <= 1 {
            if tasks == 1 { body(0) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: tasks, execute: body)
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
