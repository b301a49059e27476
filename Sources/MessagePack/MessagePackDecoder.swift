// MessagePack decoder over untrusted bytes (a network peer's message): every read is bounds
// checked, declared lengths are checked against the bytes that remain *before* anything is
// allocated, and nesting is limited, so hostile input throws a MessagePackError and never crashes
// or allocates more than the input's size.

/// Why a buffer is not one valid MessagePack value. Offsets are byte offsets into the buffer.
public enum MessagePackError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The buffer ends inside the value that starts at (or whose header is at) `offset`.
    case truncated(offset: Int)
    /// 0xc1 is never used by MessagePack.
    case invalidByte(UInt8, offset: Int)
    /// One value was decoded, but `count` bytes follow it.
    case trailingBytes(offset: Int, count: Int)
    /// Arrays/maps nest deeper than the decoder's `maxDepth`.
    case depthExceeded(offset: Int, maxDepth: Int)
    /// A str value is not valid UTF-8.
    case invalidUTF8(offset: Int)
    /// A header declares more bytes (str/bin/ext) or elements (array/map) than the buffer holds.
    case lengthTooLarge(offset: Int, declared: UInt64, available: Int)

    public var description: String {
        switch self {
        case .truncated(let o): return "MessagePack: message truncated (value at byte \(o) runs past the end)"
        case .invalidByte(let b, let o):
            return "MessagePack: invalid type byte 0x\(String(b, radix: 16)) at byte \(o)"
        case .trailingBytes(let o, let n): return "MessagePack: \(n) trailing bytes after the value, at byte \(o)"
        case .depthExceeded(let o, let d): return "MessagePack: nesting deeper than \(d) at byte \(o)"
        case .invalidUTF8(let o): return "MessagePack: str at byte \(o) is not valid UTF-8"
        case .lengthTooLarge(let o, let n, let a):
            return "MessagePack: header at byte \(o) declares \(n) bytes/elements but only \(a) bytes remain"
        }
    }
}

extension MessagePack {
    /// Decodes exactly one value that spans the whole buffer.
    public static func decode(_ bytes: [UInt8], maxDepth: Int = 64) throws -> MessagePackValue {
        try bytes.withUnsafeBytes { try decode(buffer: $0, maxDepth: maxDepth) }
    }

    /// Decodes exactly one value that spans the whole buffer (no copy of the input; str/bin
    /// payloads are copied out into the result).
    public static func decode(buffer: UnsafeRawBufferPointer, maxDepth: Int = 64) throws -> MessagePackValue {
        var reader = Reader(bytes: buffer, maxDepth: maxDepth)
        let value = try reader.value(depth: 0)
        if reader.offset != buffer.count {
            throw MessagePackError.trailingBytes(offset: reader.offset, count: buffer.count - reader.offset)
        }
        return value
    }
}

private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var remaining: Int { bytes.count - offset }

    mutating func byte(start: Int) throws -> UInt8 {
        guard offset < bytes.count else { throw MessagePackError.truncated(offset: start) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bigEndian<T: FixedWidthInteger>(_: T.Type, start: Int) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw MessagePackError.truncated(offset: start) }
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(bigEndian: v)
    }

    /// `count` payload bytes, checked against what remains before copying.
    mutating func payload(_ count: UInt64, start: Int) throws -> [UInt8] {
        guard count <= UInt64(remaining) else {
            throw MessagePackError.lengthTooLarge(offset: start, declared: count, available: remaining)
        }
        let n = Int(count)
        let out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n]))
        offset += n
        return out
    }

    mutating func string(_ count: UInt64, start: Int) throws -> String {
        let utf8 = try payload(count, start: start)
        // String(decoding:) repairs invalid sequences with U+FFFD; a repaired string differs from
        // its input bytes, which is how invalid UTF-8 is detected without private API.
        let s = String(decoding: utf8, as: UTF8.self)
        guard s.utf8.elementsEqual(utf8) else { throw MessagePackError.invalidUTF8(offset: start) }
        return s
    }

    mutating func value(depth: Int) throws -> MessagePackValue {
        let start = offset
        let b = try byte(start: start)
        switch b {
        case 0x00...0x7f: return .int(Int64(b))
        case 0x80...0x8f: return try map(UInt64(b & 0x0f), start: start, depth: depth)
        case 0x90...0x9f: return try array(UInt64(b & 0x0f), start: start, depth: depth)
        case 0xa0...0xbf: return .string(try string(UInt64(b & 0x1f), start: start))
        case 0xc0: return .nil_
        case 0xc1: throw MessagePackError.invalidByte(b, offset: start)
        case 0xc2: return .bool(false)
        case 0xc3: return .bool(true)
        case 0xc4: return .binary(try payload(UInt64(try bigEndian(UInt8.self, start: start)), start: start))
        case 0xc5: return .binary(try payload(UInt64(try bigEndian(UInt16.self, start: start)), start: start))
        case 0xc6: return .binary(try payload(UInt64(try bigEndian(UInt32.self, start: start)), start: start))
        case 0xc7, 0xc8, 0xc9:
            let n: UInt64
            switch b {
            case 0xc7: n = UInt64(try bigEndian(UInt8.self, start: start))
            case 0xc8: n = UInt64(try bigEndian(UInt16.self, start: start))
            default: n = UInt64(try bigEndian(UInt32.self, start: start))
            }
            let type = Int8(bitPattern: try byte(start: start))
            return .ext(type, try payload(n, start: start))
        case 0xca: return .float(Float(bitPattern: try bigEndian(UInt32.self, start: start)))
        case 0xcb: return .double(Double(bitPattern: try bigEndian(UInt64.self, start: start)))
        case 0xcc: return .int(Int64(try bigEndian(UInt8.self, start: start)))
        case 0xcd: return .int(Int64(try bigEndian(UInt16.self, start: start)))
        case 0xce: return .int(Int64(try bigEndian(UInt32.self, start: start)))
        case 0xcf:
            let v = try bigEndian(UInt64.self, start: start)
            return v <= UInt64(Int64.max) ? .int(Int64(v)) : .uint(v)
        case 0xd0: return .int(Int64(try bigEndian(Int8.self, start: start)))
        case 0xd1: return .int(Int64(try bigEndian(Int16.self, start: start)))
        case 0xd2: return .int(Int64(try bigEndian(Int32.self, start: start)))
        case 0xd3: return .int(try bigEndian(Int64.self, start: start))
        case 0xd4...0xd8:
            let type = Int8(bitPattern: try byte(start: start))
            return .ext(type, try payload(UInt64(1) << UInt64(b - 0xd4), start: start))
        case 0xd9: return .string(try string(UInt64(try bigEndian(UInt8.self, start: start)), start: start))
        case 0xda: return .string(try string(UInt64(try bigEndian(UInt16.self, start: start)), start: start))
        case 0xdb: return .string(try string(UInt64(try bigEndian(UInt32.self, start: start)), start: start))
        case 0xdc: return try array(UInt64(try bigEndian(UInt16.self, start: start)), start: start, depth: depth)
        case 0xdd: return try array(UInt64(try bigEndian(UInt32.self, start: start)), start: start, depth: depth)
        case 0xde: return try map(UInt64(try bigEndian(UInt16.self, start: start)), start: start, depth: depth)
        case 0xdf: return try map(UInt64(try bigEndian(UInt32.self, start: start)), start: start, depth: depth)
        default: return .int(Int64(Int8(bitPattern: b)))  // 0xe0...0xff negative fixint
        }
    }

    mutating func array(_ count: UInt64, start: Int, depth: Int) throws -> MessagePackValue {
        guard depth < maxDepth else { throw MessagePackError.depthExceeded(offset: start, maxDepth: maxDepth) }
        // Every element takes at least one byte: a larger count cannot be satisfied.
        guard count <= UInt64(remaining) else {
            throw MessagePackError.lengthTooLarge(offset: start, declared: count, available: remaining)
        }
        var out: [MessagePackValue] = []
        out.reserveCapacity(Int(count))
        for _ in 0 ..< count { out.append(try value(depth: depth + 1)) }
        return .array(out)
    }

    mutating func map(_ count: UInt64, start: Int, depth: Int) throws -> MessagePackValue {
        guard depth < maxDepth else { throw MessagePackError.depthExceeded(offset: start, maxDepth: maxDepth) }
        // Every pair takes at least two bytes.
        guard count <= UInt64(remaining / 2) else {
            throw MessagePackError.lengthTooLarge(offset: start, declared: count, available: remaining)
        }
        var out: [(MessagePackValue, MessagePackValue)] = []
        out.reserveCapacity(Int(count))
        for _ in 0 ..< count {
            let k = try value(depth: depth + 1)
            let v = try value(depth: depth + 1)
            out.append((k, v))
        }
        return .map(out)
    }
}
