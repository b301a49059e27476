// Work buffers of the passes, allocated through the backend once per sampling plan and reused by every
// layer and denoise step (nothing is allocated while a plan runs).
import PI0Tensor

/// Scratch buffers for the Gemma passes of one plan, sized for the larger of the two stacks' rows.
final class GemmaScratch: @unchecked Sendable {
    let normed: DeviceTensor, q: DeviceTensor, attn: DeviceTensor
    /// K | V per row [R, 2·KV·D]; gate | up per row [R, 2F] (the fused products of GemmaLayer).
    let kv: DeviceTensor, gateUp: DeviceTensor

    /// Room for passes of up to `rows` rows over each of `stacks`.
    init(backend: ComputeBackend, passes: [(rows: Int, dims: GemmaDims)]) {
        func most(_ f: (Int, GemmaDims) -> Int) -> Int { passes.map { f($0.rows, $0.dims) }.max() ?? 1 }
        normed = DeviceTensor(shape: [most { $0 * $1.width }], backend: backend)
        q = DeviceTensor(shape: [most { $0 * $1.heads * $1.headDim }], backend: backend)
        kv = DeviceTensor(shape: [most { 2 * $0 * $1.kvHeads * $1.headDim }], backend: backend)
        attn = DeviceTensor(shape: [most { $0 * $1.heads * $1.headDim }], backend: backend)
        gateUp = DeviceTensor(shape: [most { 2 * $0 * $1.mlpDim }], backend: backend)
    }
}
