// SafeTensorsFile+Values.swift — typed, converting accessors over the mapped tensor bytes.
//
// Every accessor copies out of the mapping (so results outlive the file) and reads elements with
// `loadUnaligned`, because tensors written by other tools need not be aligned. Elements are
// little-endian on disk; `.littleEndian` makes the reads correct on any host.
// Conversions: F16/BF16 -> Float/Double are exact; F64 -> Float rounds to nearest even (overflow -> inf);
// integer widening is exact; BOOL bytes must be 0 or 1 (numpy/torch never write anything else, so any
// other value means corruption and is reported as `invalidValue`).

extension SafeTensorsFile {
    static let floatDTypes: [SafeTensorsDType] = [.F32, .F16, .BF16, .F64]
    static let integerDTypes: [SafeTensorsDType] = [.I64, .I32, .I16, .I8, .U8, .BOOL]
    static let boolDTypes: [SafeTensorsDType] = [.BOOL, .U8]

    /// F32/F16/BF16/F64 elements as Float (F64 rounded). Other dtypes throw `.wrongDType`.
    public func floats(_ name: String) throws -> [Float] {
        let info = try checkedInfo(name, allowed: Self.floatDTypes)
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, count in
            convertFloats(info, into: buffer)
            count = info.elementCount
        }
    }

    /// Like `floats` but writes into caller-provided storage (no intermediate array for big tensors).
    /// `destination.count` must equal the tensor's element count.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try checkedInfo(name, allowed: Self.floatDTypes)
        guard destination.count == info.elementCount else {
            throw SafeTensorsError.invalidArgument(
                file: path, tensor: name,
                reason: "destination holds \(destination.count) floats, tensor has \(info.elementCount) elements")
        }
        convertFloats(info, into: destination)
    }

    /// F64/F32/F16/BF16 elements as Double (all exact). Other dtypes throw `.wrongDType`.
    public func doubles(_ name: String) throws -> [Double] {
        let info = try checkedInfo(name, allowed: [.F64, .F32, .F16, .BF16])
        let src = rawBytes(info)
        return [Double](unsafeUninitializedCapacity: info.elementCount) { dst, count in
            switch info.dtype {
            case .F64:
                for i in 0..<dst.count { dst[i] = Double(bitPattern: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian) }
            case .F32:
                for i in 0..<dst.count { dst[i] = Double(Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)) }
            case .F16:
                for i in 0..<dst.count { dst[i] = Double(Float16Conversion.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case .BF16:
                for i in 0..<dst.count { dst[i] = Double(BFloat16Conversion.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            default:
                preconditionFailure("dtype checked above")
            }
            count = info.elementCount
        }
    }

    /// I64/I32/I16/I8/U8/BOOL elements widened to Int64. Other dtypes throw `.wrongDType`.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try checkedInfo(name, allowed: Self.integerDTypes)
        if info.dtype == .BOOL { try checkBools(info) }
        let src = rawBytes(info)
        return [Int64](unsafeUninitializedCapacity: info.elementCount) { dst, count in
            switch info.dtype {
            case .I64:
                for i in 0..<dst.count { dst[i] = Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
            case .I32:
                for i in 0..<dst.count { dst[i] = Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            case .I16:
                for i in 0..<dst.count { dst[i] = Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
            case .I8:
                for i in 0..<dst.count { dst[i] = Int64(Int8(bitPattern: src[i])) }
            case .U8, .BOOL:
                for i in 0..<dst.count { dst[i] = Int64(src[i]) }
            default:
                preconditionFailure("dtype checked above")
            }
            count = info.elementCount
        }
    }

    /// BOOL elements (or U8 elements that are all 0/1) as Bool. Any other byte throws `.invalidValue`.
    public func bools(_ name: String) throws -> [Bool] {
        let info = try checkedInfo(name, allowed: Self.boolDTypes)
        try checkBools(info)
        let src = rawBytes(info)
        return (0..<info.elementCount).map { src[$0] != 0 }
    }

    // MARK: - Helpers

    private func checkedInfo(_ name: String, allowed: [SafeTensorsDType]) throws -> SafeTensorInfo {
        let info = try info(name)
        guard allowed.contains(info.dtype) else {
            throw SafeTensorsError.wrongDType(file: path, tensor: name, expected: allowed, actual: info.dtype)
        }
        return info
    }

    private func checkBools(_ info: SafeTensorInfo) throws {
        let src = rawBytes(info)
        if let i = src.firstIndex(where: { $0 > 1 }) {
            throw SafeTensorsError.invalidValue(
                file: path, tensor: info.name, index: i,
                reason: "\(info.dtype.rawValue) byte \(src[i]) is neither 0 nor 1")
        }
    }

    /// Converts a floating-point tensor into `dst` (dst.count == info.elementCount, dtype already checked).
    private func convertFloats(_ info: SafeTensorInfo, into dst: UnsafeMutableBufferPointer<Float>) {
        let src = rawBytes(info)
        switch info.dtype {
        case .F32:
            #if _endian(little)
            // Same bits on a little-endian host: one bulk copy (memcpy has no alignment requirement).
            if let from = src.baseAddress, let to = dst.baseAddress {
                UnsafeMutableRawPointer(to).copyMemory(from: from, byteCount: src.count)
            }
            #else
            for i in 0..<dst.count { dst[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            #endif
        case .BF16:
            for i in 0..<dst.count { dst[i] = BFloat16Conversion.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
        case .F16:
            for i in 0..<dst.count { dst[i] = Float16Conversion.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
        case .F64:
            for i in 0..<dst.count { dst[i] = Float(Double(bitPattern: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
        default:
            preconditionFailure("dtype checked by caller")
        }
    }
}
