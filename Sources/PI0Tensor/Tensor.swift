// Tensor storage for π0 activations and weights.
//
// Activations are always float32 in memory. In bfloat16 mode the model rounds values to bf16 at the
// places LeRobot's data path does (docs/SPEC.md §7), so a stored float is then bf16-representable.
// Weights keep their checkpoint dtype (float32 or bfloat16) and usually point into a memory-mapped
// file; a backend packs them once into its own layout (`ComputeBackend.prepareLinear`).

/// A dense, row-major float32 array with a shape. Owns 64-byte aligned storage.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let capacity: Int
    public let data: UnsafeMutablePointer<Float>

    /// Zero-initialised tensor.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        let count = shape.reduce(1, *)
        self.capacity = max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: capacity)
        self.data = raw.assumingMemoryBound(to: Float.self)
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(data).deallocate() }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    /// Reinterprets the same storage with another shape of equal or smaller element count.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) <= capacity, "reshape \(shape) -> \(newShape) exceeds capacity \(capacity)")
        shape = newShape
    }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Row `i` of a tensor viewed as [rows, cols] with cols = last dimension.
    public func row(_ i: Int) -> UnsafeMutablePointer<Float> { data + i * (shape.last ?? 1) }
}

/// The element type of a stored weight.
public enum WeightDType: String, Sendable {
    case float32, bfloat16
    public var byteSize: Int { self == .float32 ? 4 : 2 }
}

/// A read-only weight tensor as stored in the checkpoint (float32 or bf16 bits), possibly pointing into
/// a memory-mapped file kept alive by `owner`.
public struct WeightTensor: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    public let dtype: WeightDType
    public let pointer: UnsafeRawPointer
    /// Keeps the memory behind `pointer` alive (a mapped file or an owned buffer).
    public let owner: AnyObject

    public init(name: String, shape: [Int], dtype: WeightDType, pointer: UnsafeRawPointer, owner: AnyObject) {
        self.name = name; self.shape = shape; self.dtype = dtype; self.pointer = pointer; self.owner = owner
    }

    /// A weight built from float values (owned copy), stored as `dtype`.
    public init(name: String, shape: [Int], floats: [Float], dtype: WeightDType = .float32) {
        precondition(floats.count == shape.reduce(1, *))
        let box = OwnedBytes(byteCount: floats.count * dtype.byteSize)
        switch dtype {
        case .float32:
            box.pointer.withMemoryRebound(to: Float.self, capacity: floats.count) { p in
                for i in 0..<floats.count { p[i] = floats[i] }
            }
        case .bfloat16:
            box.pointer.withMemoryRebound(to: UInt16.self, capacity: floats.count) { p in
                for i in 0..<floats.count { p[i] = BFloat16.bits(floats[i]) }
            }
        }
        self.init(name: name, shape: shape, dtype: dtype, pointer: UnsafeRawPointer(box.pointer), owner: box)
    }

    public var count: Int { shape.reduce(1, *) }

    /// Element `i` widened to float32.
    @inline(__always) public func float(at i: Int) -> Float {
        switch dtype {
        case .float32: return pointer.load(fromByteOffset: i * 4, as: Float.self)
        case .bfloat16: return BFloat16.float(pointer.load(fromByteOffset: i * 2, as: UInt16.self))
        }
    }

    /// All elements widened to float32.
    public func floats() -> [Float] { (0..<count).map { float(at: $0) } }

    /// The same values in float32 storage (owned), as a weight.
    public func toFloat32() -> WeightTensor {
        dtype == .float32 ? self : WeightTensor(name: name, shape: shape, floats: floats(), dtype: .float32)
    }
}

/// An owned, 64-byte aligned byte buffer.
public final class OwnedBytes: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }
    deinit { pointer.deallocate() }
}
