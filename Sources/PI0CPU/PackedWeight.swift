// A weight matrix packed once, at load, into the panel layout of one kernel path (see pi0_kernels.h).
// W is [n, k] (out, in) as stored by nn.Linear; bf16 weights stay bf16 (half the memory) and are widened
// in the kernel. The packed buffer is owned, 64-byte aligned and freed with the object.
import CPI0Kernels

public enum WeightElement: Sendable {
    case float32, bfloat16
}

public final class PackedWeight: @unchecked Sendable { // immutable after init; the buffer is only read
    public let n: Int
    public let k: Int
    public let element: WeightElement
    public let path: KernelPath
    let buffer: UnsafeMutableRawPointer
    let count: Int

    /// Bytes of the packed buffer (N is rounded up to the panel width; K to even for `.avx512bf16`).
    public var byteCount: Int { count * (element == .float32 ? 4 : 2) }

    private init(n: Int, k: Int, element: WeightElement, path: KernelPath) {
        precondition(n >= 0 && k >= 0, "PackedWeight: negative shape [\(n), \(k)]")
        precondition(path.isSupported, "PackedWeight: kernel path \(path) is not supported by this CPU (\(CPUFeatures.summary))")
        precondition(path != .avx512bf16 || element == .bfloat16, "PackedWeight: the avx512bf16 path needs bf16 weights")
        self.n = n
        self.k = k
        self.element = element
        self.path = path
        count = Int(pi0k_packed_count(path.c, element == .float32 ? 0 : 1, n, k))
        buffer = .allocate(byteCount: max(count * (element == .float32 ? 4 : 2), 64), alignment: 64)
    }

    /// Packs W[n, k] with row stride ldw (default k).
    public convenience init(float32 w: UnsafePointer<Float>, n: Int, k: Int, ldw: Int? = nil, path: KernelPath = .best) {
        self.init(n: n, k: k, element: .float32, path: path)
        precondition((ldw ?? k) >= k, "PackedWeight: ldw < k")
        let (wP, dst, ldw) = (SendablePointer(w), SendablePointer(buffer.assumingMemoryBound(to: Float.self)), ldw ?? k)
        packParallel { p0, p1 in pi0k_pack_f32(path.c, wP.value, ldw, n, k, dst.value, p0, p1) }
    }

    /// Packs bf16 W[n, k] (raw bf16 bits) with row stride ldw (default k).
    public convenience init(bfloat16 w: UnsafePointer<UInt16>, n: Int, k: Int, ldw: Int? = nil, path: KernelPath = .best) {
        self.init(n: n, k: k, element: .bfloat16, path: path)
        precondition((ldw ?? k) >= k, "PackedWeight: ldw < k")
        let (wP, dst, ldw) = (SendablePointer(w), SendablePointer(buffer.assumingMemoryBound(to: UInt16.self)), ldw ?? k)
        packParallel { p0, p1 in pi0k_pack_bf16(path.c, wP.value, ldw, n, k, dst.value, p0, p1) }
    }

    /// Packs a row-major B[k, n] (row stride ldb, default n) so that `GEMM.linear` computes x · B
    /// (W = Bᵀ); used for P·V in attention. fp32 paths only.
    public convenience init(float32KN b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int? = nil, path: KernelPath = .best) {
        precondition(path != .avx512bf16, "PackedWeight: B[k, n] packing is fp32 only")
        self.init(n: n, k: k, element: .float32, path: path)
        precondition((ldb ?? n) >= n, "PackedWeight: ldb < n")
        let (bP, dst, ldb) = (SendablePointer(b), SendablePointer(buffer.assumingMemoryBound(to: Float.self)), ldb ?? n)
        packParallel { p0, p1 in pi0k_pack_f32_kn(path.c, bP.value, ldb, k, n, dst.value, p0, p1) }
    }

    deinit { buffer.deallocate() }

    /// Packs disjoint panel ranges on `Threading.defaultThreadCount` threads (one thread for small weights:
    /// a checkpoint's worth of packing at load is seconds of memory traffic, worth spreading).
    private func packParallel(_ body: @Sendable (Int, Int) -> Void) {
        let panels = (n + path.panelWidth - 1) / path.panelWidth
        let tasks = n * k < 1 << 20 ? 1 : min(panels, Threading.defaultThreadCount)
        Threading.run(tasks: tasks) { t in
            let r = Threading.split(panels, parts: tasks, part: t)
            body(r.lowerBound, r.upperBound)
        }
    }
}
