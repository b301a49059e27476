// SafeTensorsWriter.swift — builds a small safetensors file in memory, then writes it in one go.
//
// Data order: like the reference crate's `prepare` (what the Python package writes), tensors are laid
// out sorted by dtype size, largest first, then by name. Because the data section starts 8-byte aligned
// and every earlier tensor's size is a multiple of the current element size, every tensor ends up
// aligned for its dtype. Output is deterministic (independent of insertion order). For checkpoints too
// large for memory use `SafeTensorsStreamWriter`.

public struct SafeTensorsWriter: Sendable {
    private struct Entry: Sendable {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let bytes: [UInt8]
    }

    private var entries: [Entry] = []
    private var nameSet: Set<String> = []

    public init() {}

    /// Number of tensors added so far.
    public var count: Int { entries.count }

    /// Adds a tensor from its raw little-endian bytes; `bytes.count` must be product(shape) * dtype size.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) throws {
        let file = SafeTensorsError.inMemoryWriter
        let expected = try validateForWriting(file: file, name: name, dtype: dtype, shape: shape)
        guard bytes.count == expected else {
            throw SafeTensorsError.sizeMismatch(file: file, tensor: name, shape: shape, dtype: dtype, byteCount: bytes.count)
        }
        guard !nameSet.contains(name) else { throw SafeTensorsError.duplicateTensor(file: file, tensor: name) }
        nameSet.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    /// F32 tensor (bit-exact).
    public mutating func add(_ name: String, floats: [Float], shape: [Int]) throws {
        try checkCount(name, floats.count, shape)
        try add(name, dtype: .F32, shape: shape, bytes: littleEndianBytes(floats.map { $0.bitPattern }))
    }

    /// BF16 tensor, each Float rounded to nearest even (`BFloat16Conversion.fromFloat`).
    public mutating func add(_ name: String, bf16FromFloats floats: [Float], shape: [Int]) throws {
        try checkCount(name, floats.count, shape)
        try add(name, dtype: .BF16, shape: shape, bytes: littleEndianBytes(floats.map(BFloat16Conversion.fromFloat)))
    }

    /// F16 tensor, each Float rounded to nearest even (`Float16Conversion.fromFloat`).
    public mutating func add(_ name: String, f16FromFloats floats: [Float], shape: [Int]) throws {
        try checkCount(name, floats.count, shape)
        try add(name, dtype: .F16, shape: shape, bytes: littleEndianBytes(floats.map(Float16Conversion.fromFloat)))
    }

    /// F64 tensor (bit-exact).
    public mutating func add(_ name: String, doubles: [Double], shape: [Int]) throws {
        try checkCount(name, doubles.count, shape)
        try add(name, dtype: .F64, shape: shape, bytes: littleEndianBytes(doubles.map { $0.bitPattern }))
    }

    /// I64 tensor.
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int]) throws {
        try checkCount(name, int64s.count, shape)
        try add(name, dtype: .I64, shape: shape, bytes: littleEndianBytes(int64s))
    }

    /// I32 tensor.
    public mutating func add(_ name: String, int32s: [Int32], shape: [Int]) throws {
        try checkCount(name, int32s.count, shape)
        try add(name, dtype: .I32, shape: shape, bytes: littleEndianBytes(int32s))
    }

    /// BOOL tensor (one byte per element, 0 or 1).
    public mutating func add(_ name: String, bools: [Bool], shape: [Int]) throws {
        try checkCount(name, bools.count, shape)
        try add(name, dtype: .BOOL, shape: shape, bytes: bools.map { $0 ? 1 : 0 })
    }

    /// The complete file contents.
    public func serialized(metadata: [String: String] = [:]) -> [UInt8] {
        let (header, ordered) = plan(metadata: metadata)
        var out = header
        out.reserveCapacity(header.count + ordered.reduce(0) { $0 + $1.bytes.count })
        for e in ordered { out.append(contentsOf: e.bytes) }
        return out
    }

    /// Writes the file (via a temporary file renamed into place, so `path` is never half-written).
    public func write(to path: String, metadata: [String: String] = [:]) throws {
        let (header, ordered) = plan(metadata: metadata)
        let sink = try FileSink(path: path)
        try sink.write(header)
        for e in ordered { try sink.write(e.bytes) }
        try sink.commit()
    }

    // MARK: - Helpers

    private func plan(metadata: [String: String]) -> (header: [UInt8], ordered: [Entry]) {
        let ordered = entries.sorted {
            ($0.dtype.byteSize, $1.name) > ($1.dtype.byteSize, $0.name)  // size descending, then name ascending
        }
        var offset = 0
        var planned: [PlannedTensor] = []
        for e in ordered {
            planned.append(PlannedTensor(name: e.name, dtype: e.dtype, shape: e.shape, begin: offset, end: offset + e.bytes.count))
            offset += e.bytes.count
        }
        return (encodeSafeTensorsHeader(planned, metadata: metadata), ordered)
    }

    private func checkCount(_ name: String, _ count: Int, _ shape: [Int]) throws {
        let file = SafeTensorsError.inMemoryWriter
        guard let n = checkedElementCount(shape), n == count else {
            throw SafeTensorsError.invalidArgument(
                file: file, tensor: name, reason: "\(count) values given for shape \(shape)")
        }
    }
}

/// Little-endian bytes of fixed-width integers.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    let size = MemoryLayout<T>.size
    return [UInt8](unsafeUninitializedCapacity: values.count * size) { buffer, count in
        let raw = UnsafeMutableRawBufferPointer(buffer)
        for (i, v) in values.enumerated() {
            raw.storeBytes(of: v.littleEndian, toByteOffset: i * size, as: T.self)
        }
        count = values.count * size
    }
}
