// Growable scratch buffers shared by the passes (allocated once, reused by every layer and step).
import PI0Tensor

/// Reusable scratch tensor that grows on demand (no allocation once warm).
final class Scratch: @unchecked Sendable {
    private var tensor: Tensor?
    func get(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let t = tensor, t.capacity >= count { return t.data }
        let t = Tensor(shape: [max(count, 1)])
        tensor = t
        return t.data
    }
}
