// The fast CPU backend, a `HostBackend` (PI0Tensor) with its own kernels: linear layers on weights packed once into the kernels' panel layout
// (bf16 weights stay bf16 and are widened in the kernel), attention as two threaded matrix products
// per pass (MQA folds the heads into the rows: Q [T·H, D]·Kᵀ, then P [T·H, S]·V), softmax threaded
// over rows (in bfloat16 mode on AVX512-BF16 both products run on vdpbf16ps, K and V packed as bf16, in
// blocks of query rows: BlockedBF16Attention.swift),
// RoPE vectorised (bit-identical to `ReferenceOps.applyRoPE`). Results agree with `ReferenceBackend` to
// float32 rounding (tests in PI0CPUTests).
import Foundation
import PI0Tensor
import CPI0Kernels

final class PackedLinear: PreparedLinear, @unchecked Sendable {
    let weight: PackedWeight
    let bias: [Float]?
    var outFeatures: Int { weight.n }
    var inFeatures: Int { weight.k }
    var byteCount: Int { weight.byteCount + (bias?.count ?? 0) * 4 }
    init(weight: PackedWeight, bias: [Float]?) { self.weight = weight; self.bias = bias }
}

public final class CPUBackend: HostBackend, @unchecked Sendable {
    public let threads: Int
    private let lock = NSLock()
    private let workspace = AttentionWorkspace()   // packed K/V and score blocks, reused by every pass
    private let headWorkspaces: WorkspaceSet           // one per thread, for whole heads per thread

    /// threads <= 0: all cores (or PI0_NUM_THREADS).
    public init(threads: Int = 0) {
        self.threads = threads > 0 ? threads : Threading.defaultThreadCount
        headWorkspaces = WorkspaceSet(count: self.threads)
        super.init()
    }

    public override var name: String {
        "cpu (\(CPUFeatures.summary), \(KernelPath.best)\(KernelPath.bf16Products ? ", bf16 layers avx512bf16" : ""), \(threads) thread\(threads == 1 ? "" : "s"))"
    }

    public override func prepareLinear(_ weights: [WeightTensor], biases: [WeightTensor?], inputsAreBF16: Bool) throws -> PreparedLinear {
        let (weight, bias) = try WeightTensor.stacked(weights, biases: biases)
        let (n, k) = try weight.linearShape(bias: bias)
        // bf16×bf16 products (vdpbf16ps) round the activations: only where they are bf16 already.
        let path: KernelPath = inputsAreBF16 && weight.dtype == .bfloat16 && KernelPath.bf16Products ? .avx512bf16 : .best
        let packed: PackedWeight
        switch weight.dtype {
        case .float32:
            packed = PackedWeight(float32: weight.pointer.assumingMemoryBound(to: Float.self), n: n, k: k, path: path)
        case .bfloat16:
            packed = PackedWeight(bfloat16: weight.pointer.assumingMemoryBound(to: UInt16.self), n: n, k: k, path: path)
        }
        return PackedLinear(weight: packed, bias: bias?.floats())
    }

    public override func linear(_ w: PreparedLinear, x: UnsafePointer<Float>, rows: Int, ldx: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let p = w as? PackedLinear else { preconditionFailure("CPUBackend got a foreign PreparedLinear") }
        if let b = p.bias {
            b.withUnsafeBufferPointer { GEMM.linear(x: x, m: rows, ldx: ldx, weight: p.weight, bias: $0.baseAddress, y: y, ldy: ldy, threads: threads) }
        } else {
            GEMM.linear(x: x, m: rows, ldx: ldx, weight: p.weight, bias: nil, y: y, ldy: ldy, threads: threads)
        }
    }

    /// The bf16 path's score matrix: the workspace's score slot (packed K and V use slots 0 and 1).
    private func scoreBuffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        workspace.buffer(2, bytes: count * 4).assumingMemoryBound(to: Float.self)
    }

    public func attention(_ a: AttentionArgs) {
        lock.lock(); defer { lock.unlock() }
        let hd = a.headDim, group = a.heads / a.kvHeads
        if !a.roundToBF16 {
            if a.kvHeads >= threads && threads > 1 {
                // Many KV heads (SigLIP: 16 heads of 256 × 256 × 72, 19 MFLOP each): whole heads per thread,
                // each with that thread's workspace: one fork-join per call instead of one per head, and K/V
                // are packed in parallel. `Attention.mqa`'s result does not depend on its thread count, so
                // neither does this (tested). Zen 4, 2 threads, in the model: 117 → 139 GFLOP/s.
                var job = HeadsJob(args: a, group: group, parts: threads, path: Attention.preferredPath(headDim: hd, masked: a.mask != nil).c,
                                   workspaces: Unmanaged.passUnretained(headWorkspaces).toOpaque())
                withExtendedLifetime(headWorkspaces) {
                    Threading.run(tasks: threads, job: &job) { ctx, part in
                        let j = ctx!.assumingMemoryBound(to: HeadsJob.self).pointee
                        let set = Unmanaged<WorkspaceSet>.fromOpaque(j.workspaces).takeUnretainedValue()
                        j.run(heads: Threading.split(j.args.kvHeads, parts: j.parts, part: part), workspace: set.spaces[part])
                    }
                }
                return
            }
            for g in 0..<a.kvHeads {
                Attention.mqa(q: a.q + g * group * hd, k: a.k + g * hd, v: a.v + g * hd, mask: a.mask, out: a.out + g * group * hd,
                              t: a.queries, s: a.keys, heads: group, headDim: hd, scale: a.scale,
                              qStrideT: a.qStride, qStrideH: hd, ldk: a.kStride, ldv: a.vStride, ldMask: a.mask == nil ? nil : a.maskStride,
                              outStrideT: a.outStride, outStrideH: hd, threads: threads, path: Attention.preferredPath(headDim: hd, masked: a.mask != nil),
                              workspace: workspace)
            }
            return
        }
        // bf16: scores and probabilities are rounded between the products, as PyTorch's bf16 eager attention.
        // With AVX512-BF16 (`KernelPath.bf16Products`) both products run on vdpbf16ps: in this mode q, k and v
        // hold bf16 values and the probabilities are rounded to bf16 before P·V, so rounding the operands to
        // bf16 (q and P by the GEMM, K and V when packed) changes no value; only the order of the float32 sums
        // differs from the fp32 products.
        let dot = KernelPath.bf16Products
        // MQA with contiguous heads: all heads of all queries are rows of one product.
        if a.kvHeads == 1 && a.qStride == a.heads * hd && a.outStride == a.heads * hd {
            if dot { return blockedBF16(a) }
            let rows = a.queries * a.heads
            let s = scoreBuffer(rows * a.keys)
            let (k, v) = packKV(a, kvHead: 0, dot: dot)
            product(a.q, m: rows, ldx: hd, packed: k, n: a.keys, k: hd, dot: dot, y: s, ldy: a.keys)
            softmaxRows(s, rows: rows, keys: a.keys, args: a, rowsPerQuery: a.heads)
            product(s, m: rows, ldx: a.keys, packed: v, n: hd, k: a.keys, dot: dot, y: a.out, ldy: hd)
            roundToBF16(a.out, rows: rows, width: hd, ld: hd)
            return
        }
        let s = scoreBuffer(a.queries * a.keys)
        for g in 0..<a.kvHeads { // K and V packed once per KV head, for all of its query heads
            let (k, v) = packKV(a, kvHead: g, dot: dot)
            for h in g * group..<(g + 1) * group {
                product(a.q + h * hd, m: a.queries, ldx: a.qStride, packed: k, n: a.keys, k: hd, dot: dot, y: s, ldy: a.keys)
                softmaxRows(s, rows: a.queries, keys: a.keys, args: a, rowsPerQuery: 1)
                product(s, m: a.queries, ldx: a.keys, packed: v, n: hd, k: a.keys, dot: dot, y: a.out + h * hd, ldy: a.outStride)
                roundToBF16(a.out + h * hd, rows: a.queries, width: hd, ld: a.outStride)
            }
        }
    }

    /// MQA with contiguous heads on vdpbf16ps: K and V packed, then blocks of query rows, one fork-join
    /// (BlockedBF16Attention.swift). Workspace slots: 0 and 1 packed K and V, 2 scores, 3 and 4 q and P bits.
    private func blockedBF16(_ a: AttentionArgs) {
        let hd = a.headDim
        if a.queries == 0 || a.heads == 0 { return }
        let (k, v) = packKV(a, kvHead: 0, dot: true)
        let (tb, blocks, tasks) = BlockedBF16AttentionJob.blocking(queries: a.queries, heads: a.heads, threads: threads)
        let rows = tb * a.heads, keyPad = (a.keys + 1) & ~1
        func aligned(_ n: Int) -> Int { (max(n, 1) + 31) / 32 * 32 }   // 64-byte aligned per task (2-byte elements)
        let scoreFloats = aligned(rows * a.keys), qCount = aligned(rows * ((hd + 1) & ~1)), pCount = aligned(rows * keyPad)
        let scores = workspace.buffer(2, bytes: tasks * scoreFloats * 4).assumingMemoryBound(to: Float.self)
        let qBits = workspace.buffer(3, bytes: tasks * qCount * 2).assumingMemoryBound(to: UInt16.self)
        let pBits = workspace.buffer(4, bytes: tasks * pCount * 2).assumingMemoryBound(to: UInt16.self)
        var job = BlockedBF16AttentionJob(q: a.q, out: a.out, packedK: k, packedV: v, mask: a.mask, maskStride: a.maskStride,
                                          queries: a.queries, keys: a.keys, heads: a.heads, headDim: hd, scale: a.scale,
                                          tb: tb, blocks: blocks, tasks: tasks, scores: scores, scoreFloats: scoreFloats,
                                          qBits: qBits, qCount: qCount, pBits: pBits, pCount: pCount)
        Threading.run(tasks: tasks, job: &job) { ctx, task in
            ctx!.assumingMemoryBound(to: BlockedBF16AttentionJob.self).pointee.run(task: task)
        }
    }

    /// KV head g's K (for q·Kᵀ) and V (for P·V) packed into the workspace's slots 0 and 1: as bf16 pairs for
    /// vdpbf16ps (`dot`), else as float32 for `KernelPath.best`.
    private func packKV(_ a: AttentionArgs, kvHead g: Int, dot: Bool) -> (k: UnsafeRawPointer, v: UnsafeRawPointer) {
        let hd = a.headDim, k = a.k + g * hd, v = a.v + g * hd
        if dot {
            return workspace.packKVBF16(k: k, ldk: a.kStride, v: v, ldv: a.vStride, keys: a.keys, d: hd, path: .avx512bf16, threads: threads)
        }
        return (workspace.packTransposed(0, k, n: a.keys, k: hd, ldb: a.kStride, path: .best),
                workspace.pack(1, v, k: a.keys, n: hd, ldb: a.vStride, path: .best))
    }

    /// y = x · W for a W packed by `packKV` (the vdpbf16ps GEMM rounds x to bf16 first).
    private func product(_ x: UnsafePointer<Float>, m: Int, ldx: Int, packed: UnsafeRawPointer, n: Int, k: Int, dot: Bool,
                         y: UnsafeMutablePointer<Float>, ldy: Int) {
        GEMM.packedProduct(x: x, m: m, ldx: ldx, packed: packed, n: n, k: k, element: dot ? .bfloat16 : .float32,
                           path: dot ? .avx512bf16 : .best, bias: nil, y: y, ldy: ldy, alpha: 1, threads: threads)
    }

    /// Per row: (bf16-rounded) score·scale + mask, softmax, (bf16-rounded) probabilities, as the reference.
    /// bf16 scores → probabilities, in place: score rounded, scaled, rounded (PyTorch's bf16 ops), mask
    /// added and soft-maxed in float32 (vectorised exp), probabilities rounded to bf16. Row r belongs to
    /// query r / rowsPerQuery; parts split on query boundaries so each part's mask rows line up.
    private func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, keys: Int, args a: AttentionArgs, rowsPerQuery: Int) {
        let queries = rows / rowsPerQuery
        var job = SoftmaxJob(scores: s, queries: queries, rowsPerQuery: rowsPerQuery, keys: keys,
                             parts: min(threads, max(1, rows / 16), max(queries, 1)), mask: a.mask, maskStride: a.maskStride,
                             scale: a.scale, bf16: a.roundToBF16, path: KernelPath.best.c)
        Threading.run(tasks: job.parts, job: &job) { ctx, part in
            let j = ctx!.assumingMemoryBound(to: SoftmaxJob.self).pointee
            j.run(Threading.split(j.queries, parts: j.parts, part: part))
        }
    }

    // MARK: ComputeBackend on references (HostBackend runs the rest: its `linear` calls the pointer-level
    // `linear` above; the small operations are `ReferenceOps`, memory-bound, well under 1 % of a sample)

    public override func attention(_ a: AttentionCall) { attention(AttentionArgs(resolving: a)) }
    public override func layerNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef, bias: TensorRef, eps: Float, out: TensorRef) {
        layerNorm(x.hostPointer, rows: rows, width: width, weight: weight.hostPointer, bias: bias.hostPointer, eps: eps, out: out.hostPointer)
    }
    public override func rmsNorm(_ x: TensorRef, rows: Int, width: Int, weight: TensorRef?, eps: Float, roundToBF16: Bool, out: TensorRef) {
        rmsNorm(x.hostPointer, rows: rows, width: width, weight: weight.map { UnsafePointer($0.hostPointer) }, eps: eps,
                roundToBF16: roundToBF16, out: out.hostPointer)
    }
    /// π0.5's adaptive norm ops on the vectorised C kernels (pi0_elementwise.c), bit-identical to
    /// `ReferenceOps`; on one thread (the expert's 50 rows: a fork-join would cost more than it saves).
    public override func adaptiveModulate(_ x: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        let xp = x.hostPointer, m = modulation.hostPointer
        for b in 0..<batch {
            pi0e_adaptive_modulate(xp + b * tokens * width, tokens, width, m + b * 3 * width, m + b * 3 * width + width, roundToBF16 ? 1 : 0)
        }
    }
    public override func gatedAdd(_ x: TensorRef, _ y: TensorRef, batch: Int, tokens: Int, width: Int, modulation: TensorRef, roundToBF16: Bool) {
        let xp = x.hostPointer, yp = y.hostPointer, m = modulation.hostPointer
        for b in 0..<batch {
            pi0e_gated_add(xp + b * tokens * width, yp + b * tokens * width, tokens, width, m + b * 3 * width + 2 * width, roundToBF16 ? 1 : 0)
        }
    }
    public override func geluTanh(_ x: TensorRef, count: Int) { geluTanh(x.hostPointer, count: count) }
    public override func geluTanhMul(gate: TensorRef, up: TensorRef, rows: Int, width: Int, ldIn: Int, roundToBF16: Bool,
                                     out: TensorRef, ldOut: Int) {
        geluTanhMul(gate: gate.hostPointer, up: up.hostPointer, rows: rows, width: width, ldIn: ldIn, roundToBF16: roundToBF16,
                    out: out.hostPointer, ldOut: ldOut)
    }
    public override func silu(_ x: TensorRef, count: Int) { silu(x.hostPointer, count: count) }
    public override func add(_ x: TensorRef, _ y: TensorRef, count: Int, roundToBF16: Bool) {
        add(x.hostPointer, y.hostPointer, count: count, roundToBF16: roundToBF16)
    }
    public override func roundToBF16(_ x: TensorRef, rows: Int, width: Int, ld: Int) {
        roundToBF16(x.hostPointer, rows: rows, width: width, ld: ld)
    }
    public override func applyRoPE(_ x: TensorRef, rows: Int, heads: Int, headDim: Int, stride: Int, cos: TensorRef, sin: TensorRef,
                                   roundToBF16: Bool) {
        applyRoPE(x.hostPointer, rows: rows, heads: heads, headDim: headDim, stride: stride, cos: cos.hostPointer, sin: sin.hostPointer,
                  roundToBF16: roundToBF16)
    }
}

// Elementwise operations: vectorised C kernels, rows (or flat ranges) split across the threads. Each op
// is one `ElementwiseJob` run through `Threading.run(tasks:job:_:)` (no closure context, no allocation).
extension CPUBackend {
    /// Parts for `count` items in chunks of at least `grain`.
    func parts(_ count: Int, grain: Int) -> Int { max(1, min(threads, count / max(grain, 1))) }

    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float], eps: Float,
                          out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            layerNorm(x, rows: rows, width: width, weight: w.baseAddress!, bias: b.baseAddress!, eps: eps, out: out)
        } }
    }

    public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          eps: Float, out: UnsafeMutablePointer<Float>) {
        var job = ElementwiseJob(op: .layerNorm, count: rows, parts: parts(rows, grain: 8), width: width,
                                 a: x, out: out, weight: weight, bias: bias, eps: eps)
        job.run()
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float, roundToBF16: Bool,
                        out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            rmsNorm(x, rows: rows, width: width, weight: w.baseAddress, eps: eps, roundToBF16: roundToBF16, out: out)
        }
    }

    /// `weight` nil: w = 0.
    public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>?, eps: Float, roundToBF16: Bool,
                        out: UnsafeMutablePointer<Float>) {
        var job = ElementwiseJob(op: .rmsNorm, count: rows, parts: parts(rows, grain: 8), width: width,
                                 a: x, out: out, weight: weight, eps: eps, bf16: roundToBF16)
        job.run()
    }

    public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var job = ElementwiseJob(op: .gelu, count: count, parts: parts(count, grain: 1 << 14), out: x)
        job.run()
    }

    public func geluTanhMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int, ldIn: Int,
                            roundToBF16: Bool, out: UnsafeMutablePointer<Float>, ldOut: Int) {
        var job = ElementwiseJob(op: .geluMul, count: rows, parts: parts(rows, grain: max(1, (1 << 14) / max(width, 1))),
                                 width: width, a: gate, b: up, out: out, bf16: roundToBF16, ldIn: ldIn, ldOut: ldOut)
        job.run()
    }

    public func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var job = ElementwiseJob(op: .silu, count: count, parts: parts(count, grain: 1 << 14), out: x)
        job.run()
    }

    public func roundToBF16(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int) {
        var job = ElementwiseJob(op: .roundBF16, count: rows, parts: parts(rows, grain: max(1, (1 << 15) / max(width, 1))),
                                 width: width, out: x, ldOut: ld)
        job.run()
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, roundToBF16: Bool) {
        var job = ElementwiseJob(op: .add, count: count, parts: parts(count, grain: 1 << 15), b: y, out: x, bf16: roundToBF16)
        job.run()
    }

    /// `ReferenceOps.applyRoPE`, bit for bit (the same float32 operations per element; pi0_rope.c), vectorised
    /// and split by rows. maxSIMD caps the instruction set (2 AVX-512, 1 AVX2, 0 portable C), for tests.
    public func applyRoPE(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int, stride: Int, cos: UnsafePointer<Float>,
                          sin: UnsafePointer<Float>, roundToBF16: Bool, maxSIMD: Int = 2) {
        precondition(headDim % 2 == 0, "applyRoPE: odd head dim \(headDim)")
        var job = RoPEJob(x: x, rows: rows, parts: parts(rows, grain: max(1, (1 << 14) / max(heads * headDim, 1))), heads: heads,
                          headDim: headDim, stride: stride, cos: cos, sin: sin, bf16: roundToBF16 ? 1 : 0, simd: Int32(maxSIMD))
        Threading.run(tasks: job.parts, job: &job) { ctx, part in
            let j = ctx!.assumingMemoryBound(to: RoPEJob.self).pointee
            let r = Threading.split(j.rows, parts: j.parts, part: part)
            pi0e_rope(j.x + r.lowerBound * j.stride, r.count, j.heads, j.headDim, j.stride, j.cos + r.lowerBound * j.headDim,
                      j.sin + r.lowerBound * j.headDim, j.bf16, j.simd)
        }
    }
}

/// One `applyRoPE` call, split into `parts` row ranges.
private struct RoPEJob {
    let x: UnsafeMutablePointer<Float>, rows: Int, parts: Int, heads: Int, headDim: Int, stride: Int
    let cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, bf16: Int32, simd: Int32
}

/// One elementwise op over `count` rows (norms, gelu·up) or values (gelu, silu, add), split into `parts`.
struct ElementwiseJob {
    enum Op { case layerNorm, rmsNorm, gelu, geluMul, silu, add, roundBF16 }
    var op: Op
    var count: Int, parts: Int, width = 0
    var a: UnsafePointer<Float>? = nil, b: UnsafePointer<Float>? = nil
    var out: UnsafeMutablePointer<Float>
    var weight: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>? = nil
    var eps: Float = 0, bf16 = false, ldIn = 0, ldOut = 0

    mutating func run() {
        Threading.run(tasks: parts, job: &self) { ctx, part in
            let j = ctx!.assumingMemoryBound(to: ElementwiseJob.self).pointee
            j.run(Threading.split(j.count, parts: j.parts, part: part))
        }
    }

    func run(_ r: Range<Int>) {
        let lo = r.lowerBound, flag: Int32 = bf16 ? 1 : 0
        switch op {
        case .layerNorm: pi0e_layernorm(a! + lo * width, r.count, width, weight, bias, eps, out + lo * width)
        case .rmsNorm: pi0e_rmsnorm(a! + lo * width, r.count, width, weight, eps, flag, out + lo * width)
        case .gelu: pi0e_gelu_tanh(out + lo, r.count)
        case .geluMul:
            for row in r { pi0e_gelu_tanh_mul(a! + row * ldIn, b! + row * ldIn, out + row * ldOut, width, flag) }
        case .silu: pi0e_silu(out + lo, r.count)
        case .add: pi0e_add(out + lo, b! + lo, r.count, flag)
        case .roundBF16: pi0e_round_bf16_rows(out + lo * ldOut, r.count, width, ldOut)
        }
    }
}

/// One attention workspace per thread (reached from a C task through an unretained pointer, no allocation).
final class WorkspaceSet {
    let spaces: [AttentionWorkspace]
    init(count: Int) { spaces = (0..<count).map { _ in AttentionWorkspace() } }
}

/// float32 attention over a range of KV heads on one thread (see `CPUBackend.attention`).
private struct HeadsJob {
    let args: AttentionArgs, group: Int, parts: Int, path: Int32
    let workspaces: UnsafeMutableRawPointer   // the backend's WorkspaceSet, unretained

    func run(heads: Range<Int>, workspace: AttentionWorkspace) {
        let a = args, hd = a.headDim
        let kernelPath = KernelPath(rawValue: Int(path))!
        for g in heads {
            Attention.mqa(q: a.q + g * group * hd, k: a.k + g * hd, v: a.v + g * hd, mask: a.mask, out: a.out + g * group * hd,
                          t: a.queries, s: a.keys, heads: group, headDim: hd, scale: a.scale,
                          qStrideT: a.qStride, qStrideH: hd, ldk: a.kStride, ldv: a.vStride, ldMask: a.mask == nil ? nil : a.maskStride,
                          outStrideT: a.outStride, outStrideH: hd, threads: 1, path: kernelPath, workspace: workspace)
        }
    }
}

/// The bf16 attention's softmax over score rows (see `CPUBackend.softmaxRows`).
private struct SoftmaxJob {
    let scores: UnsafeMutablePointer<Float>, queries: Int, rowsPerQuery: Int, keys: Int, parts: Int
    let mask: UnsafePointer<Float>?, maskStride: Int
    let scale: Float, bf16: Bool, path: Int32

    func run(_ qs: Range<Int>) {
        let x = scores + qs.lowerBound * rowsPerQuery * keys, rows = qs.count * rowsPerQuery
        softmaxScores(x, rows: rows, keys: keys, mask: mask.map { $0 + qs.lowerBound * maskStride }, maskStride: maskStride,
                      rowsPerQuery: rowsPerQuery, scale: scale, bf16: bf16, path: path)
        if bf16 { pi0e_round_bf16_rows(x, rows, keys, keys) }
    }
}

/// Attention scores → probabilities in place on `rows` rows of `keys` (row stride `keys`; row r uses mask row
/// r / rowsPerQuery): score·scale (bf16: score rounded, scaled, rounded, as PyTorch's bf16 ops), mask added,
/// softmax in float32. In bf16 mode the caller then rounds the probabilities, in place (`SoftmaxJob`) or
/// straight into bf16 bits for the vdpbf16ps product (`BlockedBF16AttentionJob`).
func softmaxScores(_ x: UnsafeMutablePointer<Float>, rows: Int, keys: Int, mask: UnsafePointer<Float>?, maskStride: Int,
                   rowsPerQuery: Int, scale: Float, bf16: Bool, path: Int32) {
    if bf16 {
        pi0e_bf16_scores(x, rows, keys, keys, scale)
    } else {
        for i in 0..<(rows * keys) { x[i] *= scale }
    }
    pi0k_softmax_rows(path, x, rows, keys, keys, mask, maskStride, rowsPerQuery)
}
