// GoldenFileTests.swift — files written by the real Python `safetensors` package (0.8.0, via
// tools/safetensors/make_golden.py) must read back to exactly the values the script recorded.

import Foundation
import XCTest
@testable import SafeTensors

final class GoldenFileTests: XCTestCase {
    private func expected(_ fileName: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try fixturePath("golden_expected.json")))
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(root[fileName] as? [String: Any])
    }

    /// Checks every tensor of a golden file against the recorded dtype, shape and element values.
    private func checkGolden(_ fileName: String) throws {
        let file = try SafeTensorsFile(path: fixturePath(fileName))
        let exp = try expected(fileName)
        let tensors = try XCTUnwrap(exp["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(file.names, tensors.keys.sorted())
        XCTAssertEqual(file.metadata, exp["metadata"] as? [String: String])
        for (name, e) in tensors {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype.rawValue, e["dtype"] as? String, name)
            XCTAssertEqual(info.shape, e["shape"] as? [Int], name)
            XCTAssertEqual(info.byteCount, info.elementCount * info.dtype.byteSize, name)
            if let bits = e["bits"] as? [String] {
                let want = bits.map(hexBits)
                let raw = try file.rawBytes(name)
                let got: [UInt64] = (0..<info.elementCount).map { i in
                    switch info.dtype.byteSize {
                    case 8: return raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian
                    case 4: return UInt64(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                    default: return UInt64(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
                    }
                }
                XCTAssertEqual(got, want, name)
                // The converting accessors must agree with the stored bits.
                let floats = try file.floats(name)
                let doubles = try file.doubles(name)
                XCTAssertEqual(floats.count, want.count, name)
                for (i, b) in want.enumerated() {
                    let exact: Double
                    switch info.dtype {
                    case .F64: exact = Double(bitPattern: b)
                    case .F32: exact = Double(Float(bitPattern: UInt32(b)))
                    case .F16: exact = Double(Float16Conversion.toFloat(UInt16(b)))
                    default: exact = Double(BFloat16Conversion.toFloat(UInt16(b)))
                    }
                    if exact.isNaN {
                        XCTAssertTrue(doubles[i].isNaN && floats[i].isNaN, "\(name)[\(i)]")
                    } else {
                        XCTAssertEqual(doubles[i].bitPattern, exact.bitPattern, "\(name)[\(i)]")
                        XCTAssertEqual(floats[i].bitPattern, Float(exact).bitPattern, "\(name)[\(i)]")
                    }
                }
            } else if let ints = e["ints"] as? [String] {
                XCTAssertEqual(try file.int64s(name), ints.map { Int64($0)! }, name)
            } else if let bools = e["bools"] as? [Bool] {
                XCTAssertEqual(try file.bools(name), bools, name)
                XCTAssertEqual(try file.int64s(name), bools.map { $0 ? 1 : 0 }, name)
            } else {
                XCTFail("no expected values for \(name)")
            }
        }
    }

    func testDTypesFileWrittenByPythonSafetensors() throws {
        try checkGolden("golden_dtypes.safetensors")
        let file = try SafeTensorsFile(path: fixturePath("golden_dtypes.safetensors"))
        // Spot checks written out by hand from make_golden.py, independent of the JSON.
        XCTAssertEqual(try file.floats("layers.0.self_attn.q_proj.weight"), [0, 0.5, 1, 1.5, 2, 2.5])
        XCTAssertEqual(try file.floats("scalar_f32"), [2.75])
        XCTAssertEqual(try file.info("scalar_f32").shape, [])
        XCTAssertEqual(try file.floats("empty_f32"), [])
        XCTAssertEqual(try file.info("empty_f32").shape, [0, 3])
        XCTAssertEqual(try file.int64s("unicode_名前_é"), [1, 2, 3])
        XCTAssertEqual(try file.int64s("i64"), [0, -1, Int64.max, Int64.min, 123456789012345])
        // u8 holds 255 at index 2, so it is not a 0/1 mask.
        assertSafeTensorsError(try file.bools("u8"), mentions: [file.path, "u8"]) {
            $0 == .invalidValue(file: file.path, tensor: "u8", index: 2, reason: "U8 byte 255 is neither 0 nor 1")
        }
    }

    func testBF16FileWrittenByPythonSafetensors() throws {
        try checkGolden("golden_bf16.safetensors")
    }

    /// Our BF16 rounding must reproduce ml_dtypes' float32 -> bfloat16 rounding bit for bit.
    func testBF16RoundingMatchesMLDtypes() throws {
        let tensors = try XCTUnwrap(expected("golden_bf16.safetensors")["tensors"] as? [String: [String: Any]])
        for name in ["rounding", "random"] {
            let inputs = try XCTUnwrap(tensors[name]?["inputs_f32_bits"] as? [String]).map { Float(bitPattern: UInt32(hexBits($0))) }
            let want = try XCTUnwrap(tensors[name]?["bits"] as? [String]).map { UInt16(hexBits($0)) }
            for (x, w) in zip(inputs, want) {
                let got = BFloat16Conversion.fromFloat(x)
                if x.isNaN {
                    XCTAssertTrue(BFloat16Conversion.toFloat(got).isNaN)
                } else {
                    XCTAssertEqual(got, w, "bf16(\(x))")
                }
            }
        }
    }
}
