// Named intermediate activations, recorded only when asked (`pi0 run --dump-intermediates`, parity
// tests). Names follow the fixtures' `outputs.safetensors` (see each case's README).

public final class IntermediateRecorder: @unchecked Sendable {
    public enum Values: Sendable { case float32([Float]), int64([Int64]), bool([Bool]) }
    public struct Entry: Sendable { public let name: String; public let shape: [Int]; public let values: Values }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

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
}
