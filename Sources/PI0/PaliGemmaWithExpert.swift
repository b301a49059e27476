// PaliGemma's language model and the action expert sharing attention (PI0_SPEC.md §4.1, §5.2).
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
