// MessagePack encoder: smallest format for every value, as msgpack-python 1.x with its defaults
// (use_bin_type=True: bytes are bin, str8 allowed; Python floats are float64). See MessagePackValue.swift.

public enum MessagePack {
    /// Encodes one value.
    public static func encode(_ value: MessagePackValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(estimatedSize(value))
        write(value, into: &out)
        return out
    }

    /// Encodes one value, appending to `out`.
    public static func encode(_ value: MessagePackValue, into out: inout [UInt8]) {
        write(value, into: &out)
    }

    /// An upper bound of the encoded size (so big binaries are copied once).
    static func estimatedSize(_ value: MessagePackValue) -> Int {
        switch value {
        case .string(let s): return 5 + s.utf8.count
        case .binary(let b): return 5 + b.count
        case .ext(_, let b): return 6 + b.count
        case .array(let a): return a.reduce(5) { $0 + estimatedSize($1) }
        case .map(let m): return m.reduce(5) { $0 + estimatedSize($1.0) + estimatedSize($1.1) }
        default: return 9
        }
    }

    private static func write(_ value: MessagePackValue, into out: inout [UInt8]) {
        switch value {
        case .nil_: out.append(0xc0)
        case .bool(let b): out.append(b ? 0xc3 : 0xc2)
        case .int(let v):
            if v >= 0 { writeUnsigned(UInt64(v), into: &out) } else { writeNegative(v, into: &out) }
        case .uint(let v): writeUnsigned(v, into: &out)
        case .float(let f): out.append(0xca); appendBigEndian(f.bitPattern, into: &out)
        case .double(let d): out.append(0xcb); appendBigEndian(d.bitPattern, into: &out)
        case .string(let s):
            let utf8 = Array(s.utf8)
            writeLength(utf8.count, fix: (0xa0, 31), formats: (0xd9, 0xda, 0xdb), into: &out)
            out.append(contentsOf: utf8)
        case .binary(let b):
            writeLength(b.count, fix: nil, formats: (0xc4, 0xc5, 0xc6), into: &out)
            out.append(contentsOf: b)
        case .array(let a):
            writeCollectionHeader(a.count, fix: 0x90, formats: (0xdc, 0xdd), into: &out)
            for element in a { write(element, into: &out) }
        case .map(let m):
            writeCollectionHeader(m.count, fix: 0x80, formats: (0xde, 0xdf), into: &out)
            for (k, v) in m { write(k, into: &out); write(v, into: &out) }
        case .ext(let type, let b):
            switch b.count {
            case 1: out.append(0xd4)
            case 2: out.append(0xd5)
            case 4: out.append(0xd6)
            case 8: out.append(0xd7)
            case 16: out.append(0xd8)
            default: writeLength(b.count, fix: nil, formats: (0xc7, 0xc8, 0xc9), into: &out)
            }
            out.append(UInt8(bitPattern: type))
            out.append(contentsOf: b)
        }
    }

    private static func writeUnsigned(_ v: UInt64, into out: inout [UInt8]) {
        switch v {
        case 0...0x7f: out.append(UInt8(v))
        case 0...0xff: out.append(0xcc); out.append(UInt8(v))
        case 0...0xffff: out.append(0xcd); appendBigEndian(UInt16(v), into: &out)
        case 0...0xffff_ffff: out.append(0xce); appendBigEndian(UInt32(v), into: &out)
        default: out.append(0xcf); appendBigEndian(v, into: &out)
        }
    }

    private static func writeNegative(_ v: Int64, into out: inout [UInt8]) {
        switch v {
        case -32 ..< 0: out.append(UInt8(bitPattern: Int8(v)))
        case Int64(Int8.min) ..< 0: out.append(0xd0); out.append(UInt8(bitPattern: Int8(v)))
        case Int64(Int16.min) ..< 0: out.append(0xd1); appendBigEndian(UInt16(bitPattern: Int16(v)), into: &out)
        case Int64(Int32.min) ..< 0: out.append(0xd2); appendBigEndian(UInt32(bitPattern: Int32(v)), into: &out)
        default: out.append(0xd3); appendBigEndian(UInt64(bitPattern: v), into: &out)
        }
    }

    /// str/bin/ext length header. Lengths above UInt32.max cannot be represented in MessagePack;
    /// that is a programmer error (4 GiB in one value), hence a precondition.
    private static func writeLength(_ n: Int, fix: (UInt8, Int)?, formats: (UInt8, UInt8, UInt8),
                                    into out: inout [UInt8]) {
        if let (base, max) = fix, n <= max {
            out.append(base | UInt8(n))
        } else if n <= 0xff {
            out.append(formats.0); out.append(UInt8(n))
        } else if n <= 0xffff {
            out.append(formats.1); appendBigEndian(UInt16(n), into: &out)
        } else {
            precondition(n <= 0xffff_ffff, "MessagePack cannot encode a length of \(n)")
            out.append(formats.2); appendBigEndian(UInt32(n), into: &out)
        }
    }

    private static func writeCollectionHeader(_ n: Int, fix: UInt8, formats: (UInt8, UInt8),
                                              into out: inout [UInt8]) {
        if n <= 15 {
            out.append(fix | UInt8(n))
        } else if n <= 0xffff {
            out.append(formats.0); appendBigEndian(UInt16(n), into: &out)
        } else {
            precondition(n <= 0xffff_ffff, "MessagePack cannot encode \(n) elements")
            out.append(formats.1); appendBigEndian(UInt32(n), into: &out)
        }
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ v: T, into out: inout [UInt8]) {
        var be = v.bigEndian
        withUnsafeBytes(of: &be) { out.append(contentsOf: $0) }
    }
}
