// A numpy ndarray as it travels in openpi-client's msgpack_numpy: numpy's `dtype.str`, the shape,
// and the C-order bytes (`ndarray.tobytes()`). Only bool, signed/unsigned integer and float dtypes
// are understood (what robot observations and actions use); both byte orders are read.

/// A parsed numpy `dtype.str` such as `"<f4"`, `"|u1"`, `">i8"`.
public struct NumpyDType: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Character, Sendable { case bool = "b", int = "i", uint = "u", float = "f" }
    public var kind: Kind
    public var itemSize: Int
    public var bigEndian: Bool

    public static let float32 = NumpyDType(kind: .float, itemSize: 4, bigEndian: false)
    public static let float64 = NumpyDType(kind: .float, itemSize: 8, bigEndian: false)
    public static let uint8 = NumpyDType(kind: .uint, itemSize: 1, bigEndian: false)

    public init(kind: Kind, itemSize: Int, bigEndian: Bool) {
        self.kind = kind
        self.itemSize = itemSize
        self.bigEndian = bigEndian
    }

    /// Parses numpy's `dtype.str`. Byte order: `<` little, `>` big, `|` not applicable (1-byte
    /// types only, as numpy writes them), `=` native (little on every platform Swift targets here).
    /// Refuses everything else (strings `<U`, bytes `|S`, complex, void, object, datetime, `<f16`).
    public init(parsing str: String) throws {
        let chars = Array(str)
        guard chars.count >= 3, chars[2...].allSatisfy({ $0.isASCII && $0.isNumber }),
              let size = Int(String(chars[2...])),
              let kind = Kind(rawValue: chars[1]) else {
            throw NumpyMsgpackError.unsupportedDType(path: "", dtype: str)
        }
        let sizes: [Int]
        switch kind {
        case .bool: sizes = [1]
        case .int, .uint: sizes = [1, 2, 4, 8]
        case .float: sizes = [2, 4, 8]
        }
        guard sizes.contains(size) else { throw NumpyMsgpackError.unsupportedDType(path: "", dtype: str) }
        switch chars[0] {
        case "<", "=": bigEndian = false
        case ">": bigEndian = true
        case "|" where size == 1: bigEndian = false
        default: throw NumpyMsgpackError.unsupportedDType(path: "", dtype: str)
        }
        self.kind = kind
        self.itemSize = size
    }

    /// numpy's spelling: `|` for 1-byte types, else `<` or `>`.
    public var description: String {
        let order = itemSize == 1 ? "|" : (bigEndian ? ">" : "<")
        return "\(order)\(kind.rawValue)\(itemSize)"
    }
}

/// An n-dimensional numpy array: dtype string, shape and raw C-order bytes.
public struct NDArray: Sendable, Equatable {
    /// numpy's `dtype.str`, kept verbatim so a decoded array re-encodes byte for byte.
    public var dtype: String
    public var shape: [Int]
    public var data: [UInt8]

    /// A validated array: `dtype` understood, `shape` non-negative, `data.count == prod(shape) * itemSize`.
    public init(dtype: String, shape: [Int], data: [UInt8]) throws {
        self.dtype = dtype
        self.shape = shape
        self.data = data
        try validate()
    }

    /// A little-endian float32 (`"<f4"`) array. `floats.count` must equal the product of `shape`.
    public init(floats: [Float], shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == floats.count,
                     "NDArray(floats:shape:): \(floats.count) values do not fill shape \(shape)")
        self.dtype = "<f4"
        self.shape = shape
        var bytes = [UInt8](repeating: 0, count: floats.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, f) in floats.enumerated() {
                raw.storeBytes(of: f.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        self.data = bytes
    }

    /// A `"|u1"` array (images).
    public init(uint8: [UInt8], shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == uint8.count,
                     "NDArray(uint8:shape:): \(uint8.count) values do not fill shape \(shape)")
        self.dtype = "|u1"
        self.shape = shape
        self.data = uint8
    }

    public var parsedDType: NumpyDType {
        get throws { try NumpyDType(parsing: dtype) }
    }

    /// Number of elements (1 for a 0-d array). Only meaningful for a valid shape.
    public var count: Int { shape.reduce(1, *) }

    /// Checks dtype, shape and byte count, without overflow on hostile shapes.
    public func validate(path: String = "") throws {
        let dt: NumpyDType
        do { dt = try NumpyDType(parsing: dtype) } catch {
            throw NumpyMsgpackError.unsupportedDType(path: path, dtype: dtype)
        }
        var elements = 1
        for d in shape {
            guard d >= 0 else { throw NumpyMsgpackError.invalidNDArray(path: path, reason: "negative dimension in shape \(shape)") }
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw NumpyMsgpackError.invalidNDArray(path: path, reason: "shape \(shape) overflows") }
            elements = p
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dt.itemSize)
        guard !overflow, bytes == data.count else {
            throw NumpyMsgpackError.dataSizeMismatch(path: path, dtype: dtype, shape: shape,
                                                     expectedBytes: overflow ? nil : bytes, actualBytes: data.count)
        }
    }

    /// All elements converted to Float (bool → 0/1; integers and float64 rounded to nearest).
    public func floats() throws -> [Float] {
        try converted { Float($0) } int: { Float($0) } uint: { Float($0) }
    }

    /// All elements converted to Double (exact for every dtype except 64-bit integers beyond 2^53).
    public func doubles() throws -> [Double] {
        try converted { $0 } int: { Double($0) } uint: { Double($0) }
    }

    private func converted<T>(float: (Double) -> T, int: (Int64) -> T, uint: (UInt64) -> T) throws -> [T] {
        try validate()
        let dt = try NumpyDType(parsing: dtype)
        let n = count
        var out: [T] = []
        out.reserveCapacity(n)
        data.withUnsafeBytes { raw in
            func load<I: FixedWidthInteger>(_: I.Type, _ i: Int) -> I {
                let v = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<I>.size, as: I.self)
                return dt.bigEndian ? I(bigEndian: v) : I(littleEndian: v)
            }
            for i in 0 ..< n {
                switch (dt.kind, dt.itemSize) {
                case (.bool, _): out.append(uint(raw[i] != 0 ? 1 : 0))
                case (.uint, 1): out.append(uint(UInt64(raw[i])))
                case (.uint, 2): out.append(uint(UInt64(load(UInt16.self, i))))
                case (.uint, 4): out.append(uint(UInt64(load(UInt32.self, i))))
                case (.uint, _): out.append(uint(load(UInt64.self, i)))
                case (.int, 1): out.append(int(Int64(Int8(bitPattern: raw[i]))))
                case (.int, 2): out.append(int(Int64(load(Int16.self, i))))
                case (.int, 4): out.append(int(Int64(load(Int32.self, i))))
                case (.int, _): out.append(int(load(Int64.self, i)))
                case (.float, 2): out.append(float(Double(halfToFloat(load(UInt16.self, i)))))
                case (.float, 4): out.append(float(Double(Float(bitPattern: load(UInt32.self, i)))))
                case (.float, _): out.append(float(Double(bitPattern: load(UInt64.self, i))))
                }
            }
        }
        return out
    }
}

/// IEEE 754 binary16 → binary32 by bits (Swift's Float16 is not available on every platform).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exp = Int((h >> 10) & 0x1f)
    let mant = UInt32(h & 0x3ff)
    if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }  // inf / nan
    if exp == 0 {  // zero or subnormal: mant * 2^-24, exact in binary32
        let magnitude = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}
