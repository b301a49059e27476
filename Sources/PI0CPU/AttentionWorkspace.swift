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

    /// K [keys, d] (for q·Kᵀ) and V [keys, d] (for P·V) into slots 0 and 1 in `path`'s bf16 layout, as
    /// `packTransposedBF16` and `packBF16`, with the panels of both split across `threads` (disjoint panel
    /// ranges: the packed bytes do not depend on the split).
    func packKVBF16(k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int, keys: Int, d: Int, path: KernelPath,
                    threads: Int) -> (k: UnsafeRawPointer, v: UnsafeRawPointer) {
        let kp = buffer(0, bytes: Int(pi0k_packed_count(path.c, 1, keys, d)) * 2).assumingMemoryBound(to: UInt16.self)
        let vp = buffer(1, bytes: Int(pi0k_packed_count(path.c, 1, d, keys)) * 2).assumingMemoryBound(to: UInt16.self)
        let nr = path.panelWidth
        var job = PackKVJob(path: path.c, k: k, ldk: ldk, v: v, ldv: ldv, keys: keys, d: d, kDst: kp, vDst: vp,
                            kPanels: (keys + nr - 1) / nr, vPanels: (d + nr - 1) / nr, parts: 1)
        job.parts = keys * d < 1 << 14 ? 1 : max(1, min(Threading.resolve(threads), job.kPanels + job.vPanels))
        Threading.run(tasks: job.parts, job: &job) { ctx, part in
            let j = ctx!.assumingMemoryBound(to: PackKVJob.self).pointee
            // panels 0..<kPanels are K's, the rest V's, split as one range
            let r = Threading.split(j.kPanels + j.vPanels, parts: j.parts, part: part)
            let kr = min(r.lowerBound, j.kPanels)..<min(r.upperBound, j.kPanels)
            let vr = max(r.lowerBound, j.kPanels) - j.kPanels..<max(r.upperBound, j.kPanels) - j.kPanels
            if !kr.isEmpty { pi0k_pack_f32_as_bf16(j.path, j.k, j.ldk, j.keys, j.d, j.kDst, kr.lowerBound, kr.upperBound) }
            if !vr.isEmpty { pi0k_pack_f32_kn_as_bf16(j.path, j.v, j.ldv, j.keys, j.d, j.vDst, vr.lowerBound, vr.upperBound) }
        }
        return (UnsafeRawPointer(kp), UnsafeRawPointer(vp))
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

/// One `AttentionWorkspace.packKVBF16` call: K's panels then V's, split into `parts` ranges.
private struct PackKVJob {
    let path: Int32, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int, keys: Int, d: Int
    let kDst: UnsafeMutablePointer<UInt16>, vDst: UnsafeMutablePointer<UInt16>, kPanels: Int, vPanels: Int
    var parts: Int
}
