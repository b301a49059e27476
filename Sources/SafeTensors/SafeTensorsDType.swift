// SafeTensorsDType.swift — element types of the safetensors format, tensor descriptors, and the exact
// bit-level conversions between Float and the two 16-bit float formats (bfloat16, IEEE half).
//
// Provenance: dtype spellings and sizes follow the reference Rust crate (`safetensors::Dtype`); only the
// ten dtypes π0 checkpoints can plausibly contain are supported, any other spelling (F8_E4M3, U32, ...) is
// rejected by the reader with `SafeTensorsError.unknownDType`. All data in the format is little-endian.

/// The element type of a tensor, spelled exactly as in the safetensors JSON header.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    /// Bytes per element (BOOL is stored as one byte, 0 or 1, like numpy/torch).
    public var byteSize: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }

    /// True for the four floating-point dtypes.
    public var isFloatingPoint: Bool {
        switch self {
        case .F64, .F32, .F16, .BF16: return true
        default: return false
        }
    }
}

/// One tensor's entry in the header, after validation.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Row-major shape; `[]` is a scalar (one element), a 0 anywhere means no elements.
    public let shape: [Int]
    /// Byte offset of the tensor's first byte, relative to the start of the data section
    /// (i.e. the `begin` of `data_offsets`), NOT relative to the start of the file.
    public let dataOffset: Int
    /// `end - begin` of `data_offsets`; always equals `elementCount * dtype.byteSize` after validation.
    public let byteCount: Int

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], dataOffset: Int, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffset = dataOffset
        self.byteCount = byteCount
    }

    /// Product of `shape` (1 for a scalar). Validated not to overflow when the file was opened.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Overflow-checked product of a shape, or nil when it does not fit in Int (or a dimension is negative).
func checkedElementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        if o { return nil }
        n = p
    }
    return n
}

/// Overflow-checked byte size of a tensor, or nil.
func checkedByteCount(_ shape: [Int], _ dtype: SafeTensorsDType) -> Int? {
    guard let n = checkedElementCount(shape) else { return nil }
    let (b, o) = n.multipliedReportingOverflow(by: dtype.byteSize)
    return o ? nil : b
}

/// bfloat16 <-> Float. bfloat16 is the top 16 bits of an IEEE binary32, so widening is exact.
public enum BFloat16Conversion {
    /// Exact widening: the 16 bits become the high half of a Float.
    @inlinable
    public static func toFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Round-to-nearest-even narrowing (the rule torch and ml_dtypes use). NaN stays NaN (quiet, sign
    /// kept) even when its payload lives only in the low 16 bits, which plain truncation would turn into
    /// an infinity; values past the largest bfloat16 round to ±infinity.
    @inlinable
    public static func fromFloat(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let lsb = (bits >> 16) & 1
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ lsb) >> 16)
    }
}

/// IEEE 754 binary16 ("half", safetensors F16) <-> Float, implemented on bits so it behaves the same on
/// every platform (Swift's Float16 is unavailable on macOS/x86_64).
public enum Float16Conversion {
    /// Exact widening, including subnormals, infinities and NaN payloads.
    @inlinable
    public static func toFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// Round-to-nearest-even narrowing; overflow goes to ±infinity, NaN stays a quiet NaN.
    @inlinable
    public static func fromFloat(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude > 0x7F80_0000 {  // NaN: keep the top payload bits, force quiet.
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x3FF)
        }
        // 65520 (0x477FF000) is halfway between 65504 (largest half) and 65536; ties-to-even gives inf.
        if magnitude >= 0x477F_F000 { return sign | 0x7C00 }
        if magnitude < 0x3880_0000 {  // Below 2^-14: half subnormal (or zero). Scaling by 2^24 is exact.
            let scaled = Float(bitPattern: magnitude) * 0x1p24
            return sign | UInt16(scaled.rounded(.toNearestOrEven))
        }
        var h = ((magnitude >> 23) - 112) << 10 | ((magnitude >> 13) & 0x3FF)
        let rest = magnitude & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1) { h += 1 }  // carry may bump the exponent: correct.
        return sign | UInt16(truncatingIfNeeded: h)
    }
}
