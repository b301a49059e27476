// SafeTensorsError.swift — the one error type of the SafeTensors module.
//
// Every case carries the file path, and the tensor name where one is involved, so a failed load can be
// traced without a debugger. `description` renders a one-line message that always
// starts with the file path. Writer-side misuse that happens before a path is known uses the file name
// `SafeTensorsError.inMemoryWriter`.

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// open/fstat/mmap failed, or the path is not a regular file.
    case cannotOpen(file: String, reason: String)
    /// The file ends before the 8-byte length prefix or before the end of the header it announces.
    case truncated(file: String, reason: String)
    /// The announced header length exceeds `limit` (100,000,000 bytes, as in the reference crate).
    case headerTooLarge(file: String, headerLength: UInt64, limit: Int)
    /// The header is not UTF-8, not valid JSON, or not a JSON object.
    case invalidHeader(file: String, reason: String)
    /// A tensor entry is not an object, lacks dtype/shape/data_offsets, or has a malformed field
    /// (non-integer, negative or overflowing numbers, wrong number of offsets, ...).
    case invalidTensorEntry(file: String, tensor: String, reason: String)
    /// `__metadata__` is not an object of string values (`key` is "" when the object itself is wrong).
    case invalidMetadata(file: String, key: String, reason: String)
    /// The dtype string is not one of `SafeTensorsDType`.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// `end - begin` of data_offsets differs from product(shape) * dtype size (`byteCount` is end - begin).
    case sizeMismatch(file: String, tensor: String, shape: [Int], dtype: SafeTensorsDType, byteCount: Int)
    /// data_offsets has begin > end.
    case invalidOffsets(file: String, tensor: String, begin: Int, end: Int)
    /// data_offsets reach past the end of the data section (`dataSize` bytes).
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// Two tensors share at least one byte of the data section.
    case overlappingTensors(file: String, first: String, second: String)
    /// Bytes [begin, end) of the data section belong to no tensor (a hole, or trailing bytes); `previous`
    /// is the tensor just before the hole ("" when the hole is at the start). The reference crate rejects
    /// these (MetadataIncompleteBuffer / InvalidOffset); see `SafeTensorsFile.init(path:allowUncoveredData:)`.
    case uncoveredData(file: String, begin: Int, end: Int, previous: String)
    /// The same tensor name appears twice (in a header, or added twice to a writer).
    case duplicateTensor(file: String, tensor: String)
    /// No tensor of that name.
    case missingTensor(file: String, tensor: String)
    /// The accessor cannot produce its element type from this tensor's dtype.
    case wrongDType(file: String, tensor: String, expected: [SafeTensorsDType], actual: SafeTensorsDType)
    /// An element has a value the accessor cannot represent (e.g. a BOOL byte other than 0 or 1).
    case invalidValue(file: String, tensor: String, index: Int, reason: String)
    /// A writer was used incorrectly (bad shape, reserved name, writes out of order, ...).
    case invalidArgument(file: String, tensor: String, reason: String)
    /// A system call failed while writing.
    case writeFailed(file: String, reason: String)

    /// Placeholder file name for errors raised by `SafeTensorsWriter.add` before a path is known.
    public static let inMemoryWriter = "<SafeTensorsWriter>"

    /// The file every case refers to.
    public var file: String {
        switch self {
        case .cannotOpen(let f, _), .truncated(let f, _), .headerTooLarge(let f, _, _), .invalidHeader(let f, _),
             .invalidTensorEntry(let f, _, _), .invalidMetadata(let f, _, _), .unknownDType(let f, _, _),
             .sizeMismatch(let f, _, _, _, _), .invalidOffsets(let f, _, _, _), .offsetsOutOfRange(let f, _, _, _, _),
             .overlappingTensors(let f, _, _), .uncoveredData(let f, _, _, _), .duplicateTensor(let f, _),
             .missingTensor(let f, _), .wrongDType(let f, _, _, _), .invalidValue(let f, _, _, _),
             .invalidArgument(let f, _, _), .writeFailed(let f, _):
            return f
        }
    }

    public var description: String {
        let prefix = "safetensors file '\(file)'"
        switch self {
        case .cannotOpen(_, let reason):
            return "\(prefix): cannot open: \(reason)"
        case .truncated(_, let reason):
            return "\(prefix): truncated: \(reason)"
        case .headerTooLarge(_, let n, let limit):
            return "\(prefix): header length \(n) exceeds the limit of \(limit) bytes"
        case .invalidHeader(_, let reason):
            return "\(prefix): invalid header: \(reason)"
        case .invalidTensorEntry(_, let t, let reason):
            return "\(prefix): tensor '\(t)': invalid header entry: \(reason)"
        case .invalidMetadata(_, let key, let reason):
            return key.isEmpty ? "\(prefix): invalid __metadata__: \(reason)"
                : "\(prefix): invalid __metadata__ key '\(key)': \(reason)"
        case .unknownDType(_, let t, let d):
            return "\(prefix): tensor '\(t)': unknown or unsupported dtype '\(d)'"
        case .sizeMismatch(_, let t, let shape, let dtype, let byteCount):
            let expected = checkedByteCount(shape, dtype).map(String.init) ?? "overflow"
            return "\(prefix): tensor '\(t)': shape \(shape) of \(dtype.rawValue) needs \(expected) bytes "
                + "but its data is \(byteCount) bytes"
        case .invalidOffsets(_, let t, let b, let e):
            return "\(prefix): tensor '\(t)': data_offsets [\(b), \(e)] has begin > end"
        case .offsetsOutOfRange(_, let t, let b, let e, let size):
            return "\(prefix): tensor '\(t)': data_offsets [\(b), \(e)] reach past the end of the "
                + "\(size)-byte data section"
        case .overlappingTensors(_, let a, let b):
            return "\(prefix): tensors '\(a)' and '\(b)' overlap in the data section"
        case .uncoveredData(_, let b, let e, let previous):
            let after = previous.isEmpty ? "at the start of the data section" : "after tensor '\(previous)'"
            return "\(prefix): data bytes [\(b), \(e)) \(after) belong to no tensor"
        case .duplicateTensor(_, let t):
            return "\(prefix): tensor '\(t)' appears more than once"
        case .missingTensor(_, let t):
            return "\(prefix): no tensor named '\(t)'"
        case .wrongDType(_, let t, let expected, let actual):
            return "\(prefix): tensor '\(t)' has dtype \(actual.rawValue), expected one of "
                + expected.map(\.rawValue).joined(separator: ", ")
        case .invalidValue(_, let t, let i, let reason):
            return "\(prefix): tensor '\(t)' element \(i): \(reason)"
        case .invalidArgument(_, let t, let reason):
            return "\(prefix): tensor '\(t)': \(reason)"
        case .writeFailed(_, let reason):
            return "\(prefix): write failed: \(reason)"
        }
    }
}
