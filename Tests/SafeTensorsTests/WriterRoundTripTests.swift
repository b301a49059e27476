// WriterRoundTripTests.swift — SafeTensorsWriter output: every dtype reads back bit-exactly, the layout
// follows the reference crate (8-byte header padding with spaces, data sorted by dtype size then name,
// every tensor aligned), and the bytes equal what the Python package wrote for the same tensors.

import Foundation
import XCTest
@testable import SafeTensors

final class WriterRoundTripTests: XCTestCase {
    private let dir = ScratchDirectory()

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    private func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var s = seed | 1
        return (0..<count).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return UInt8(truncatingIfNeeded: s)
        }
    }

    func testRawBytesRoundTripForEveryDType() throws {
        var writer = SafeTensorsWriter()
        var want: [String: (SafeTensorsDType, [Int], [UInt8])] = [:]
        for (i, dtype) in SafeTensorsDType.allCases.enumerated() {
            let shape = [3, i + 1]
            var data = bytes(3 * (i + 1) * dtype.byteSize, seed: UInt64(i + 1))
            if dtype == .BOOL { data = data.map { $0 & 1 } }
            let name = "t_\(dtype.rawValue.lowercased())"
            try writer.add(name, dtype: dtype, shape: shape, bytes: data)
            want[name] = (dtype, shape, data)
        }
        let path = dir.file("all.safetensors")
        try writer.write(to: path, metadata: ["format": "pt", "quote\"key": "line\nbreak \\ ünï"])
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.metadata, ["format": "pt", "quote\"key": "line\nbreak \\ ünï"])
        XCTAssertEqual(file.names, want.keys.sorted())
        for (name, (dtype, shape, data)) in want {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype, dtype)
            XCTAssertEqual(info.shape, shape)
            XCTAssertEqual(Array(try file.rawBytes(name)), data, name)
            XCTAssertEqual(info.dataOffset % dtype.byteSize, 0, "\(name) must be aligned for its dtype")
            XCTAssertEqual((file.dataStart + info.dataOffset) % dtype.byteSize, 0)
        }
        XCTAssertEqual(file.dataStart % 8, 0)
        // Data order: dtype size descending, then name (reference crate `prepare`).
        let byOffset = file.infos.sorted { $0.dataOffset < $1.dataOffset }.map(\.name)
        XCTAssertEqual(byOffset, ["t_f64", "t_i64", "t_f32", "t_i32", "t_bf16", "t_f16", "t_i16", "t_bool", "t_i8", "t_u8"])
    }

    func testTypedAddersRoundTrip() throws {
        var writer = SafeTensorsWriter()
        let floats: [Float] = [0, -0.0, 1.5, -3.25, .infinity, -.infinity, 0x1p-140, .greatestFiniteMagnitude]
        try writer.add("f32", floats: floats, shape: [2, 4])
        try writer.add("bf16", bf16FromFloats: [1, -2, 3.140625, 0.1], shape: [4])
        try writer.add("f16", f16FromFloats: [1, -2, 65504, 0.1, 1e-7], shape: [5])
        try writer.add("f64", doubles: [0.1, -1e300, .pi], shape: [3])
        try writer.add("i64", int64s: [Int64.min, -1, 0, Int64.max], shape: [2, 2])
        try writer.add("i32", int32s: [Int32.min, 7], shape: [2])
        try writer.add("mask", bools: [true, false, true], shape: [3])
        try writer.add("scalar", floats: [42], shape: [])
        try writer.add("empty", int64s: [], shape: [2, 0])
        let path = dir.file("typed.safetensors")
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(try file.floats("f32").map(\.bitPattern), floats.map(\.bitPattern))
        // 0.1 in bf16 is 0x3DCD = 0.10009765625 (rounded up: the dropped bits 0xCCCD > 0x8000).
        XCTAssertEqual(try file.floats("bf16"), [1, -2, 3.140625, 0.10009765625])
        // 0.1 in half is 0x2E66 = 0.0999755859375; 1e-7 is the subnormal 2 * 2^-24.
        XCTAssertEqual(try file.floats("f16"), [1, -2, 65504, 0.0999755859375, 0x1p-23])
        XCTAssertEqual(try file.doubles("f64"), [0.1, -1e300, .pi])
        XCTAssertEqual(try file.floats("f64"), [0.1, -.infinity, 3.14159274])  // pi rounds up to 0x40490FDB
        XCTAssertEqual(try file.int64s("i64"), [Int64.min, -1, 0, Int64.max])
        XCTAssertEqual(try file.int64s("i32"), [Int64(Int32.min), 7])
        XCTAssertEqual(try file.bools("mask"), [true, false, true])
        XCTAssertEqual(try file.floats("scalar"), [42])
        XCTAssertEqual(try file.info("scalar").elementCount, 1)
        XCTAssertEqual(try file.int64s("empty"), [])
        XCTAssertEqual(try file.info("empty").byteCount, 0)
        XCTAssertEqual(try file.doubles("bf16"), [1, -2, 3.140625, 0.10009765625])
        var dst = [Float](repeating: .nan, count: 8)
        try dst.withUnsafeMutableBufferPointer { try file.copyFloats("f32", into: $0) }
        XCTAssertEqual(dst.map(\.bitPattern), floats.map(\.bitPattern))
    }

    /// Same tensors as tools/safetensors/make_golden.py's golden_bf16 file: our bytes must be identical.
    func testSerializedBytesEqualPythonOutput() throws {
        let golden = try SafeTensorsFile(path: fixturePath("golden_bf16.safetensors"))
        var writer = SafeTensorsWriter()
        for name in ["rounding", "random", "ones_f32"] {  // insertion order must not matter
            let info = try golden.info(name)
            try writer.add(name, dtype: info.dtype, shape: info.shape, bytes: Array(try golden.rawBytes(name)))
        }
        let pythonBytes = try Data(contentsOf: URL(fileURLWithPath: fixturePath("golden_bf16.safetensors")))
        XCTAssertEqual(writer.serialized(), Array(pythonBytes))
        let path = dir.file("same.safetensors")
        try writer.write(to: path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), pythonBytes)
    }

    func testHeaderIsPaddedWithSpacesToEightBytes() throws {
        for nameLength in 1...9 {
            var writer = SafeTensorsWriter()
            try writer.add(String(repeating: "x", count: nameLength), floats: [1], shape: [1])
            let out = writer.serialized()
            let n = Int(out.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
            XCTAssertEqual(n % 8, 0)
            let header = out[8..<(8 + n)]  // indices 8..<8+n
            // The JSON object is followed by fewer than 8 spaces and nothing else.
            let closing = try XCTUnwrap(header.lastIndex(of: UInt8(ascii: "}")))
            XCTAssertTrue(header[(closing + 1)...].allSatisfy { $0 == 0x20 })
            XCTAssertLessThan(8 + n - (closing + 1), 8)
            XCTAssertEqual(out.count, 8 + n + 4)
        }
    }

    func testWriterMisuse() throws {
        var writer = SafeTensorsWriter()
        let w = SafeTensorsError.inMemoryWriter
        try writer.add("a", floats: [1, 2], shape: [2])
        assertSafeTensorsError(try writer.add("a", floats: [1, 2], shape: [2]), mentions: [w, "'a'"]) {
            $0 == .duplicateTensor(file: w, tensor: "a")
        }
        assertSafeTensorsError(try writer.add("b", floats: [1, 2, 3], shape: [2]), mentions: ["'b'", "3 values"]) {
            if case .invalidArgument(w, "b", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try writer.add("c", dtype: .F32, shape: [2], bytes: [0, 0, 0]), mentions: ["'c'"]) {
            $0 == .sizeMismatch(file: w, tensor: "c", shape: [2], dtype: .F32, byteCount: 3)
        }
        assertSafeTensorsError(try writer.add("d", dtype: .U8, shape: [-1], bytes: []), mentions: ["'d'", "negative"]) {
            if case .invalidArgument(w, "d", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try writer.add("__metadata__", dtype: .U8, shape: [0], bytes: []), mentions: ["reserved"]) {
            if case .invalidArgument(w, "__metadata__", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try writer.add("e", dtype: .F64, shape: [Int.max / 2, 4], bytes: []), mentions: ["'e'", "overflow"]) {
            if case .invalidArgument(w, "e", _) = $0 { return true } else { return false }
        }
        XCTAssertEqual(writer.count, 1)
        let bad = dir.file("no-such-dir/x.safetensors")
        assertSafeTensorsError(try writer.write(to: bad), mentions: [bad]) {
            if case .writeFailed(bad, _) = $0 { return true } else { return false }
        }
    }

    func testWriteReplacesExistingFileAtomically() throws {
        let path = dir.file("replace.safetensors")
        var w1 = SafeTensorsWriter()
        try w1.add("old", floats: [1], shape: [1])
        try w1.write(to: path)
        var w2 = SafeTensorsWriter()
        try w2.add("new", floats: [2], shape: [1])
        try w2.write(to: path)
        XCTAssertEqual(try SafeTensorsFile(path: path).names, ["new"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["replace.safetensors"])
    }
}
