// numpy values inside MessagePack, exactly as openpi-client's msgpack_numpy writes and reads them
// (openpi_client/msgpack_numpy.py, 0.1.2):
//   ndarray → {b"__ndarray__": True, b"data": bytes, b"dtype": dtype.str, b"shape": shape}
//   np.generic → {b"__npgeneric__": True, b"data": obj.item(), b"dtype": dtype.str}
// The keys are msgpack *bin*, not str: a map with a str key "__ndarray__" stays a plain map.
// Python's unpack_array only tests for the key; we validate the whole map and refuse anything
// else with an error naming the path of the offending value (e.g. `images.cam_high`).

/// Why a decoded MessagePack tree is not a valid numpy tree. `path` names the value.
public enum NumpyMsgpackError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedDType(path: String, dtype: String)
    case invalidNDArray(path: String, reason: String)
    case dataSizeMismatch(path: String, dtype: String, shape: [Int], expectedBytes: Int?, actualBytes: Int)
    case invalidScalar(path: String, reason: String)

    public var description: String {
        func named(_ p: String) -> String { p.isEmpty ? "<root>" : p }
        switch self {
        case .unsupportedDType(let p, let d):
            return "numpy value at '\(named(p))': unsupported dtype '\(d)' (bool, int, uint and float dtypes only)"
        case .invalidNDArray(let p, let r): return "ndarray at '\(named(p))': \(r)"
        case .dataSizeMismatch(let p, let d, let s, let e, let a):
            let expected = e.map(String.init) ?? "more than Int.max"
            return "ndarray at '\(named(p))': dtype \(d) shape \(s) needs \(expected) bytes of data, got \(a)"
        case .invalidScalar(let p, let r): return "numpy scalar at '\(named(p))': \(r)"
        }
    }
}

/// A numpy scalar (`np.float32(1.0)`, `np.int64(3)`, `np.bool_(True)`): its dtype and the Python
/// value numpy's `.item()` gave (float scalars travel as float64 whatever their dtype).
public struct NumpyScalar: Sendable, Equatable {
    public var dtype: String
    public var value: MessagePackValue

    public init(dtype: String, value: MessagePackValue) {
        self.dtype = dtype
        self.value = value
    }

    public func double() -> Double {
        if case .bool(let b) = value { return b ? 1 : 0 }
        return value.doubleValue ?? .nan
    }
}

/// A decoded observation: maps, lists, arrays, numpy scalars and plain MessagePack leaves.
public indirect enum NumpyValue: Sendable, Equatable {
    case array(NDArray)
    case scalar(NumpyScalar)
    /// Pairs in wire order; keys are plain MessagePack values (str for Python dicts of str).
    case map([(MessagePackValue, NumpyValue)])
    /// Python lists and tuples.
    case list([NumpyValue])
    /// Any other leaf: nil, bool, int, float, str, bin, ext.
    case value(MessagePackValue)

    public static func == (lhs: NumpyValue, rhs: NumpyValue) -> Bool {
        switch (lhs, rhs) {
        case let (.array(a), .array(b)): return a == b
        case let (.scalar(a), .scalar(b)): return a == b
        case let (.map(a), .map(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.list(a), .list(b)): return a == b
        case let (.value(a), .value(b)): return a == b
        default: return false
        }
    }

    /// The value under a str key (maps only).
    public subscript(key: String) -> NumpyValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.0 == .string(key) }?.1
    }

    public var ndarray: NDArray? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var string: String? {
        if case .value(.string(let s)) = self { return s }
        return nil
    }

    /// The str keys of a map, in order.
    public var keys: [String] {
        guard case .map(let pairs) = self else { return [] }
        return pairs.compactMap { $0.0.stringValue }
    }
}

public enum NumpyMsgpack {
    static let ndarrayKey = MessagePackValue.binary(Array("__ndarray__".utf8))
    static let npgenericKey = MessagePackValue.binary(Array("__npgeneric__".utf8))
    static let dataKey = MessagePackValue.binary(Array("data".utf8))
    static let dtypeKey = MessagePackValue.binary(Array("dtype".utf8))
    static let shapeKey = MessagePackValue.binary(Array("shape".utf8))

    /// The 4-entry map msgpack_numpy.pack_array writes, keys in its order.
    public static func encodeArray(_ a: NDArray) -> MessagePackValue {
        .map([(ndarrayKey, .bool(true)), (dataKey, .binary(a.data)), (dtypeKey, .string(a.dtype)),
              (shapeKey, .array(a.shape.map { .int(Int64($0)) }))])
    }

    public static func encodeScalar(_ s: NumpyScalar) -> MessagePackValue {
        .map([(npgenericKey, .bool(true)), (dataKey, s.value), (dtypeKey, .string(s.dtype))])
    }

    public static func encodeTree(_ v: NumpyValue) -> MessagePackValue {
        switch v {
        case .array(let a): return encodeArray(a)
        case .scalar(let s): return encodeScalar(s)
        case .map(let pairs): return .map(pairs.map { ($0.0, encodeTree($0.1)) })
        case .list(let items): return .array(items.map(encodeTree))
        case .value(let leaf): return leaf
        }
    }

    /// msgpack bytes of a numpy tree (what `msgpack_numpy.packb` would write for it).
    public static func pack(_ v: NumpyValue) -> [UInt8] { MessagePack.encode(encodeTree(v)) }

    /// A numpy tree from msgpack bytes (what `msgpack_numpy.unpackb` would read).
    public static func unpack(_ bytes: [UInt8], maxDepth: Int = 64) throws -> NumpyValue {
        try decodeTree(MessagePack.decode(bytes, maxDepth: maxDepth))
    }

    /// Recognises ndarray and numpy-scalar maps anywhere in the tree.
    public static func decodeTree(_ v: MessagePackValue) throws -> NumpyValue {
        try decodeTree(v, path: "")
    }

    static func decodeTree(_ v: MessagePackValue, path: String) throws -> NumpyValue {
        switch v {
        case .map(let pairs):
            if pairs.contains(where: { $0.0 == ndarrayKey }) { return .array(try decodeArray(pairs, path: path)) }
            if pairs.contains(where: { $0.0 == npgenericKey }) { return .scalar(try decodeScalar(pairs, path: path)) }
            return .map(try pairs.map { k, x in (k, try decodeTree(x, path: join(path, keyName(k)))) })
        case .array(let items):
            return .list(try items.enumerated().map { i, x in try decodeTree(x, path: "\(path)[\(i)]") })
        default:
            return .value(v)
        }
    }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private static func keyName(_ k: MessagePackValue) -> String {
        switch k {
        case .string(let s): return s
        case .binary(let b): return "b'\(String(decoding: b, as: UTF8.self))'"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        default: return "<\(k.kindName) key>"
        }
    }

    /// Exactly the four keys, each of the right kind; data size consistent with dtype and shape.
    private static func decodeArray(_ pairs: [(MessagePackValue, MessagePackValue)], path: String) throws -> NDArray {
        let fail = { (reason: String) in NumpyMsgpackError.invalidNDArray(path: path, reason: reason) }
        var flag: MessagePackValue?, data: [UInt8]?, dtype: String?, shape: [Int]?
        for (k, x) in pairs {
            switch k {
            case ndarrayKey where flag == nil: flag = x
            case dataKey where data == nil:
                guard case .binary(let b) = x else { throw fail("data is \(x.kindName), expected bin") }
                data = b
            case dtypeKey where dtype == nil:
                guard case .string(let s) = x else { throw fail("dtype is \(x.kindName), expected str") }
                dtype = s
            case shapeKey where shape == nil:
                guard case .array(let dims) = x else { throw fail("shape is \(x.kindName), expected array") }
                shape = try dims.map { d in
                    guard let n = d.intValue, n >= 0 else { throw fail("shape \(dims.map(\.kindName)) holds a value that is not a non-negative int") }
                    return n
                }
            default: throw fail("unexpected or duplicate key \(keyName(k))")
            }
        }
        guard flag == .bool(true) else { throw fail("__ndarray__ is not true") }
        guard let data, let dtype, let shape else { throw fail("missing data, dtype or shape") }
        let array = NDArray(unchecked: dtype, shape: shape, data: data)
        try array.validate(path: path)
        return array
    }

    private static func decodeScalar(_ pairs: [(MessagePackValue, MessagePackValue)], path: String) throws -> NumpyScalar {
        let fail = { (reason: String) in NumpyMsgpackError.invalidScalar(path: path, reason: reason) }
        var flag: MessagePackValue?, data: MessagePackValue?, dtype: String?
        for (k, x) in pairs {
            switch k {
            case npgenericKey where flag == nil: flag = x
            case dataKey where data == nil: data = x
            case dtypeKey where dtype == nil:
                guard case .string(let s) = x else { throw fail("dtype is \(x.kindName), expected str") }
                dtype = s
            default: throw fail("unexpected or duplicate key \(keyName(k))")
            }
        }
        guard flag == .bool(true) else { throw fail("__npgeneric__ is not true") }
        guard let data, let dtype else { throw fail("missing data or dtype") }
        let dt: NumpyDType
        do { dt = try NumpyDType(parsing: dtype) } catch { throw NumpyMsgpackError.unsupportedDType(path: path, dtype: dtype) }
        // .item() of a bool is a bool, of an integer an int, of a float a Python float (float64).
        let ok: Bool
        switch (dt.kind, data) {
        case (.bool, .bool), (.int, .int), (.uint, .int), (.uint, .uint), (.float, .double), (.float, .float): ok = true
        default: ok = false
        }
        guard ok else { throw fail("data is \(data.kindName), which does not match dtype \(dtype)") }
        return NumpyScalar(dtype: dtype, value: data)
    }
}

extension NDArray {
    /// Fields without validation (the decoder validates right after, with a path).
    init(unchecked dtype: String, shape: [Int], data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }
}
