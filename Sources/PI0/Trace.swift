// Named intermediate activations, recorded only when asked (`pi0 run --dump-intermediates`, parity
// tests). Names follow the fixtures' `outputs.safetensors` (see each case's README).
//
// The model only *announces* tensors to a `SamplingObserver` (a backend position and a shape); it is
// the observer that downloads them through the backend. Without an observer the model issues no
// transfer at all, which the counting backend's test checks.
import PI0Tensor

/// Receives intermediates while a sample is computed.
public protocol SamplingObserver: AnyObject {
    /// A tensor made of `segments` (position, element count), in order, together of shape `shape`.
    func observe(_ name: String, shape: [Int], segments: [(TensorRef, Int)], backend: ComputeBackend)
    /// Values the model holds on the host (masks, positions, tables it uploaded).
    func observe(_ name: String, shape: [Int], values: IntermediateRecorder.Values)
    /// Step `step` of `steps` of a per-step tensor: the entry `name` is [steps] + `itemShape`.
    func observeStep(_ name: String, step: Int, of steps: Int, itemShape: [Int], _ tensor: TensorRef, backend: ComputeBackend)
}

extension SamplingObserver {
    /// One contiguous tensor.
    func observe(_ name: String, shape: [Int], _ tensor: TensorRef, backend: ComputeBackend) {
        observe(name, shape: shape, segments: [(tensor, shape.reduce(1, *))], backend: backend)
    }
}

public final class IntermediateRecorder: SamplingObserver, @unchecked Sendable {
    public enum Values: Sendable { case float32([Float]), int64([Int64]), bool([Bool]) }
    public struct Entry: Sendable { public let name: String; public let shape: [Int]; public let values: Values }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    private var steps: [String: [Int: [Float]]] = [:]

    public init() {}

    public func record(_ name: String, shape: [Int], _ values: Values) {
        if let i = index[name] { entries[i] = Entry(name: name, shape: shape, values: values); return }
        index[name] = entries.count
        entries.append(Entry(name: name, shape: shape, values: values))
    }

    public func record(_ name: String, shape: [Int], floats p: UnsafePointer<Float>) {
        record(name, shape: shape, .float32(Array(UnsafeBufferPointer(start: p, count: shape.reduce(1, *)))))
    }

    public subscript(name: String) -> Entry? { index[name].map { entries[$0] } }

    // MARK: SamplingObserver

    public func observe(_ name: String, shape: [Int], segments: [(TensorRef, Int)], backend: ComputeBackend) {
        var all: [Float] = []
        all.reserveCapacity(segments.reduce(0) { $0 + $1.1 })
        for (ref, count) in segments { all += backend.download(ref, count: count) }
        precondition(all.count == shape.reduce(1, *), "\(name): \(all.count) values for shape \(shape)")
        record(name, shape: shape, .float32(all))
    }

    public func observe(_ name: String, shape: [Int], values: Values) { record(name, shape: shape, values) }

    public func observeStep(_ name: String, step: Int, of count: Int, itemShape: [Int], _ tensor: TensorRef, backend: ComputeBackend) {
        steps[name, default: [:]][step] = backend.download(tensor, count: itemShape.reduce(1, *))
        let done = steps[name]!
        guard done.count == count else { return }
        record(name, shape: [count] + itemShape, .float32((0..<count).flatMap { done[$0]! }))
    }
}
