// Reusable buffers for attention: K and V packed into the GEMM's panel layout, and one score block per
// task. They grow on demand and are kept, so repeated passes over the same shapes (every denoise step)
// allocate nothing; `CPUBackend` owns one, used under its attention lock. Slots: 0 packed K (masked) or
// packed K and Vᵀ (unmasked, `pi0k_attn_pack_keys`), 1 packed V, 2 scores or the unmasked tasks' scratch.
import CPI0Kernels

public final class AttentionWorkspace: @unchecked Sendable {
    private var slots: [UnsafeMutableRawPointer] = []
    private var capacities: [Int] = []

    public init() {}

    deinit { slots.forEach { $0.deallocate() } }

    /// Slot `i` with room for at least `bytes` bytes, 64-byte aligned; earlier contents are not kept when it
    /// grows. Not thread-safe: take every buffer before handing work to other threads.
    func buffer(_ i: Int, bytes: Int) -> UnsafeMutableRawPointer {
        while slots.count <= i {
            slots.append(.allocate(byteCount: 64, alignment: 64))
            capacities.append(64)
        }
        if capacities[i] < bytes {
            slots[i].deallocate()
            slots[i] = .allocate(byteCount: bytes, alignment: 64)
            capacities[i] = bytes
        }
        return slots[i]
    }

    /// Packs B[n, k] (row stride ldb) into slot `i` for x · Bᵀ (`GEMM.packedProduct` with n, k).
    func packTransposed(_ i: Int, _ b: UnsafePointer<Float>, n: Int, k: Int, ldb: Int, path: KernelPath) -> UnsafeRawPointer {
        let count = Int(pi0k_packed_count(path.c, 0, n, k))
        let dst = buffer(i, bytes: count * 4).assumingMemoryBound(to: Float.self)
        pi0k_pack_f32(path.c, b, ldb, n, k, dst, 0, Int.max)
        return UnsafeRawPointer(dst)
    }

    /// Packs a row-major B[k, n] (row stride ldb) into slot `i` for x · B (`GEMM.packedProduct` with n, k).
    func pack(_ i: Int, _ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, path: KernelPath) -> UnsafeRawPointer {
        let count = Int(pi0k_packed_count(path.c, 0, n, k))
        let dst = buffer(i, bytes: count * 4).assumingMemoryBound(to: Float.self)
        pi0k_pack_f32_kn(path.c, b, ldb, k, n, dst, 0, Int.max)
        return UnsafeRawPointer(dst)
    }

    /// As `packTransposed` and `pack`, into `path`'s bf16 layout (`.avx512bf16`: the vdpbf16ps pairs), each
    /// value rounded to bf16 (exact for values that are bf16 already: bfloat16-mode attention's K and V).
    func packTransposedBF16(_ i: Int, _ b: UnsafePointer<Float>, n: Int, k: Int, ldb: Int, path: KernelPath) -> UnsafeRawPointer {
        let count = Int(pi0k_packed_count(path.c, 1, n, k))
        let dst = buffer(i, bytes: count * 2).assumingMemoryBound(to: UInt16.self)
        pi0k_pack_f32_as_bf16(path.c, b, ldb, n, k, dst, 0, Int.max)
        return UnsafeRawPointer(dst)
    }

    func packBF16(_ i: Int, _ b: UnsafePointer<Float>, k: Int, n: Int, ldb: Int, path: KernelPath) -> UnsafeRawPointer {
        let count = Int(pi0k_packed_count(path.c, 1, n, k))
        let dst = buffer(i, bytes: count * 2).assumingMemoryBound(to: UInt16.self)
        pi0k_pack_f32_kn_as_bf16(path.c, b, ldb, k, n, dst, 0, Int.max)
        return UnsafeRawPointer(dst)
    }
}
