// MessagePack data model (the MessagePack format specification, msgpack.org; how the server uses it:
// docs/PROTOCOL.md).
//
// Integers decode canonically: every value that fits Int64 becomes `.int`, only uint64 values above
// Int64.max become `.uint`. The encoder writes the smallest format, non-negative integers in the
// unsigned formats and negative ones in the signed formats, exactly as msgpack-python 1.x does, so
// bytes written by openpi-client re-encode to themselves.

/// One MessagePack value. Maps keep their pairs in wire order (Python dicts are ordered, and a
/// byte-exact re-encoding needs the order).
public indirect enum MessagePackValue: Sendable {
    case nil_
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case float(Float)
    case double(Double)
    case string(String)
    case binary([UInt8])
    case array([MessagePackValue])
    case map([(MessagePackValue, MessagePackValue)])
    case ext(Int8, [UInt8])
}

extension MessagePackValue: Equatable {
    /// Structural identity: floats compare by bit pattern (so NaN == NaN and 0.0 != -0.0, which
    /// matters for byte-exact round trips); `.int(5)` and `.uint(5)` are different values.
    public static func == (lhs: MessagePackValue, rhs: MessagePackValue) -> Bool {
        switch (lhs, rhs) {
        case (.nil_, .nil_): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        case let (.float(a), .float(b)): return a.bitPattern == b.bitPattern
        case let (.double(a), .double(b)): return a.bitPattern == b.bitPattern
        case let (.string(a), .string(b)): return a == b
        case let (.binary(a), .binary(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.ext(ta, a), .ext(tb, b)): return ta == tb && a == b
        default: return false
        }
    }
}

extension MessagePackValue {
    /// The value for the first pair whose key equals `key` (maps only).
    public subscript(key: MessagePackValue) -> MessagePackValue? {
        guard case .map(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    /// The value under a str key (maps only).
    public subscript(key: String) -> MessagePackValue? { self[.string(key)] }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Any integer or float as Double (nil for other kinds).
    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        case .float(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    /// An integer that fits Int (nil otherwise).
    public var intValue: Int? {
        switch self {
        case .int(let v): return Int(exactly: v)
        case .uint(let v): return Int(exactly: v)
        default: return nil
        }
    }

    /// A short name of the kind, for error messages.
    public var kindName: String {
        switch self {
        case .nil_: return "nil"
        case .bool: return "bool"
        case .int, .uint: return "int"
        case .float: return "float32"
        case .double: return "float64"
        case .string: return "str"
        case .binary: return "bin"
        case .array: return "array"
        case .map: return "map"
        case .ext: return "ext"
        }
    }
}
