// PaliGemma's language model and the action expert sharing attention (docs/SPEC.md §4.1, §5.2).
//
// The VLM runs once over the prefix and leaves, per layer, K (after RoPE) and V in a cache whose rows
// [0, P) hold the prefix. Every denoise step the expert writes its own suffix K/V into rows [P, P+S)
// of the same buffers and attends over all P+S rows: the prefix cache is reused in place, never copied
// (LeRobot clones it every step). Letters: B batch, P prefix, S suffix, T tokens of the current pass,
// W width, H heads, KV kv heads, D head dim.
import PI0Tensor

/// Per-layer keys and values, each [B, capacity, KV·D].
final class KVCache: @unchecked Sendable {
    let batch: Int, capacity: Int, kvDim: Int
    let keys: [Tensor], values: [Tensor]

    init(layers: Int, batch: Int, capacity: Int, kvDim: Int) {
        self.batch = batch; self.capacity = capacity; self.kvDim = kvDim
        keys = (0..<layers).map { _ in Tensor(shape: [batch, capacity, kvDim]) }
        values = (0..<layers).map { _ in Tensor(shape: [batch, capacity, kvDim]) }
    }

    func keyRow(_ layer: Int, _ b: Int, _ t: Int) -> UnsafeMutablePointer<Float> { keys[layer].data + (b * capacity + t) * kvDim }
    func valueRow(_ layer: Int, _ b: Int, _ t: Int) -> UnsafeMutablePointer<Float> { values[layer].data + (b * capacity + t) * kvDim }
}

/// One pass of a Gemma stack over T tokens per batch row, attending to cache rows [0, offset + T).
struct GemmaPass {
    let model: Gemma
    let batch: Int, tokens: Int, offset: Int
    let cache: KVCache
    /// Additive mask [B, T, offset + T].
    let mask: UnsafePointer<Float>
    /// RoPE tables [B, T, D].
    let cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
    let scratch: GemmaScratch

    var keyCount: Int { offset + tokens }

    /// Attention half of layer `li`, in place on x [B·T, W]. With `kvOnly` only this layer's K/V are
    /// written to the cache (enough for the VLM's last layer, whose output never reaches the actions).
    func attentionBlock(_ li: Int, x: UnsafeMutablePointer<Float>, kvOnly: Bool = false) {
        let d = model.dims, l = model.layers[li], rows = batch * tokens
        let w = d.width, qDim = d.heads * d.headDim, kvDim = d.kvHeads * d.headDim
        let n = scratch.normed.get(rows * w), q = scratch.q.get(rows * qDim)
        let k = scratch.k.get(rows * kvDim), v = scratch.v.get(rows * kvDim), attn = scratch.attn.get(rows * qDim)
        model.rmsNorm(x, rows: rows, weight: l.inputNorm, out: n)
        l.k(n, rows: rows, into: k)
        l.v(n, rows: rows, into: v)
        for b in 0..<batch {
            let kb = k + b * tokens * kvDim
            ReferenceOps.applyRoPE(kb, tokens: tokens, heads: d.kvHeads, headDim: d.headDim, stride: kvDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            cache.keyRow(li, b, offset).update(from: kb, count: tokens * kvDim)
            cache.valueRow(li, b, offset).update(from: v + b * tokens * kvDim, count: tokens * kvDim)
        }
        if kvOnly { return }
        l.q(n, rows: rows, into: q)
        for b in 0..<batch {
            let qb = q + b * tokens * qDim
            ReferenceOps.applyRoPE(qb, tokens: tokens, heads: d.heads, headDim: d.headDim, stride: qDim,
                             cos: cos + b * tokens * d.headDim, sin: sin + b * tokens * d.headDim, roundToBF16: model.bf16)
            // transformers' eager attention: (q·kᵀ)·D^-0.5 + mask, softmax in float32.
            model.backend.attention(AttentionArgs(
                q: qb, qStride: qDim, k: cache.keyRow(li, b, 0), kStride: kvDim, v: cache.valueRow(li, b, 0), vStride: kvDim,
                mask: mask + b * tokens * keyCount, maskStride: keyCount, out: attn + b * tokens * qDim, outStride: qDim,
                queries: tokens, keys: keyCount, heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim,
                scale: 1 / Float(d.headDim).squareRoot(), roundToBF16: model.bf16))
        }
        l.o(attn, rows: rows, into: n)
        model.backend.add(x, n, count: rows * w, roundToBF16: model.bf16)
    }

    func layer(_ li: Int, x: UnsafeMutablePointer<Float>) {
        attentionBlock(li, x: x)
        model.mlpBlock(model.layers[li], x: x, rows: batch * tokens, scratch: scratch)
    }
}
