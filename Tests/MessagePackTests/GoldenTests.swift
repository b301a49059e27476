// Golden bytes written by openpi-client's own encoder (tools/server/make_msgpack_golden.py,
// openpi-client 0.1.2, msgpack 1.2.4, numpy 1.26.4). golden.json describes each case in plain JSON;
// the expected trees below are rebuilt from that description, never from our own decoder.
import Foundation
import XCTest
@testable import MessagePack

final class GoldenTests: XCTestCase {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func manifest() throws -> [String: Any] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("golden.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func golden(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("\(name).msgpack")))
    }

    static let caseNames = ["libero", "aloha", "droid", "scalars", "dtypes", "shapes", "plain", "nested_obs"]

    func testEveryGoldenDecodesToItsDescription() throws {
        let cases = try XCTUnwrap(Self.manifest()["cases"] as? [String: Any])
        XCTAssertEqual(Set(cases.keys), Set(Self.caseNames))
        for name in Self.caseNames {
            let expected = try tree(from: try XCTUnwrap(cases[name]))
            let decoded = try NumpyMsgpack.unpack(try Self.golden(name))
            XCTAssertEqual(decoded, expected, "case \(name)")
        }
    }

    func testReencodingReproducesGoldenBytes() throws {
        for name in Self.caseNames {
            let bytes = try Self.golden(name)
            let value = try MessagePack.decode(bytes)
            XCTAssertEqual(MessagePack.encode(value), bytes, "raw value of \(name)")
            XCTAssertEqual(NumpyMsgpack.pack(try NumpyMsgpack.decodeTree(value)), bytes, "numpy tree of \(name)")
        }
    }

    /// The byte example in docs/PROTOCOL.md, transcribed from the doc by hand.
    func testProtocolDocByteExample() throws {
        var doc: [UInt8] = [0x83, 0xa5] + Array("state".utf8) + [0x84, 0xc4, 0x0b] + Array("__ndarray__".utf8) + [0xc3]
        doc += [0xc4, 0x04] + Array("data".utf8) + [0xc4, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0x40]
        doc += [0xc4, 0x05] + Array("dtype".utf8) + [0xa3] + Array("<f4".utf8) + [0xc4, 0x05] + Array("shape".utf8) + [0x91, 0x02]
        doc += [0xa6] + Array("prompt".utf8) + [0xa2] + Array("hi".utf8)
        doc += [0xa1] + Array("s".utf8) + [0x83, 0xc4, 0x0d] + Array("__npgeneric__".utf8) + [0xc3]
        doc += [0xc4, 0x04] + Array("data".utf8) + [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
        doc += [0xc4, 0x05] + Array("dtype".utf8) + [0xa3] + Array("<f4".utf8)

        let tree = NumpyValue.map([
            (.string("state"), .array(NDArray(floats: [1.5, 2.0], shape: [2]))),
            (.string("prompt"), .value(.string("hi"))),
            (.string("s"), .scalar(NumpyScalar(dtype: "<f4", value: .double(1.0)))),
        ])
        XCTAssertEqual(NumpyMsgpack.pack(tree), doc)
        XCTAssertEqual(try NumpyMsgpack.unpack(doc), tree)
        let hex = try XCTUnwrap(Self.manifest()["doc_example_hex"] as? String)
        XCTAssertEqual(bytes(hex: hex), doc, "the Python encoder agrees with the doc")
    }

    /// Element values checked against the literals in make_msgpack_golden.py.
    func testElementConversionOfEveryDtype() throws {
        let t = try NumpyMsgpack.unpack(try Self.golden("dtypes"))
        func f(_ key: String) throws -> [Float] { try XCTUnwrap(t[key]?.ndarray).floats() }
        func d(_ key: String) throws -> [Double] { try XCTUnwrap(t[key]?.ndarray).doubles() }
        XCTAssertEqual(try f("f2"), [1.0, -0.5, 65504.0, Float(bitPattern: 0x387f_c000)])  // fp16 nearest of 6.1e-5
        XCTAssertEqual(try f("f4"), [1.0, -2.0, 3.5, .infinity])
        XCTAssertEqual(try d("f8"), [Double.pi, -0.0, 1e300])
        XCTAssertEqual(try d("f8")[1].sign, .minus)
        XCTAssertEqual(try d("i1"), [-128, 127, 0])
        XCTAssertEqual(try d("i2"), [-32768, 32767])
        XCTAssertEqual(try d("i4"), [-2147483648, 2147483647])
        XCTAssertEqual(try d("i8"), [-9.223372036854775808e18, 9.223372036854775807e18])
        XCTAssertEqual(try d("u1"), [0, 255])
        XCTAssertEqual(try d("u2"), [65535])
        XCTAssertEqual(try d("u4"), [4294967295])
        XCTAssertEqual(try d("u8"), [18446744073709551615.0])
        XCTAssertEqual(try f("b1"), [1, 0, 1])
        XCTAssertEqual(t["f4_big_endian"]?.ndarray?.dtype, ">f4")
        XCTAssertEqual(try f("f4_big_endian"), [1.0, 2.0])
        XCTAssertEqual(try d("i4_big_endian"), [-2, 3])
        // np.asfortranarray: tobytes() is still C order, so the values read row-major.
        XCTAssertEqual(try f("f4_fortran"), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(t["f4_fortran"]?.ndarray?.shape, [2, 3])

        let s = try NumpyMsgpack.unpack(try Self.golden("shapes"))
        XCTAssertEqual(s["empty2d"]?.ndarray?.shape, [0, 3])
        XCTAssertEqual(try s["empty2d"]?.ndarray?.floats(), [])
        XCTAssertEqual(s["zero_d"]?.ndarray?.shape, [])
        XCTAssertEqual(try s["zero_d"]?.ndarray?.floats(), [3.0])
        XCTAssertEqual(try s["three_d"]?.ndarray?.floats(), (0 ..< 24).map(Float.init))
    }

    func testObservationShapesAndScalars() throws {
        let aloha = try NumpyMsgpack.unpack(try Self.golden("aloha"))
        XCTAssertEqual(aloha["images"]?.keys, ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"])
        XCTAssertEqual(aloha["images"]?["cam_low"]?.ndarray?.shape, [3, 4, 5])
        XCTAssertEqual(aloha["images"]?["cam_left_wrist"]?.ndarray?.data, [UInt8](repeating: 0, count: 60))
        XCTAssertEqual(aloha["state"]?.ndarray?.dtype, "<f8")
        XCTAssertEqual(aloha["prompt"]?.string, "fold the towel")

        let sc = try NumpyMsgpack.unpack(try Self.golden("scalars"))
        XCTAssertEqual(sc["f32"], .scalar(NumpyScalar(dtype: "<f4", value: .double(1.5))))
        XCTAssertEqual(sc["f64"], .value(.double(-2.25)), "np.float64 subclasses float: packed as a plain float")
        XCTAssertEqual(sc["u64"], .scalar(NumpyScalar(dtype: "<u8", value: .uint(UInt64.max))))
        XCTAssertEqual(sc["b"], .scalar(NumpyScalar(dtype: "|b1", value: .bool(true))))
        XCTAssertEqual(sc["i16"].map { if case .scalar(let s) = $0 { return s.double() } else { return 0 } }, -300)
    }

    // MARK: - expected trees from golden.json

    private func tree(from d: Any) throws -> NumpyValue {
        if let dict = d as? [String: Any] {
            if let dtype = dict["ndarray"] as? String {
                let shape = try XCTUnwrap(dict["shape"] as? [Int])
                return .array(try NDArray(dtype: dtype, shape: shape, data: bytes(hex: try XCTUnwrap(dict["hex"] as? String))))
            }
            if let dtype = dict["npgeneric"] as? String {
                return .scalar(NumpyScalar(dtype: dtype, value: try leaf(from: try XCTUnwrap(dict["value"]))))
            }
            if let items = dict["list"] as? [Any] { return .list(try items.map(tree)) }
            if let pairs = dict["map"] as? [[Any]] {
                return .map(try pairs.map { (try leaf(from: $0[0]), try tree(from: $0[1])) })
            }
        }
        return .value(try leaf(from: d))
    }

    private func leaf(from d: Any) throws -> MessagePackValue {
        if d is NSNull { return .nil_ }
        if let dict = d as? [String: Any] {
            if let s = dict["int"] as? String { return .int(try XCTUnwrap(Int64(s))) }
            if let s = dict["uint"] as? String { return .uint(try XCTUnwrap(UInt64(s))) }
            if let s = dict["double"] as? String { return .double(Double(bitPattern: try XCTUnwrap(UInt64(s, radix: 16)))) }
            if let s = dict["str"] as? String { return .string(s) }
            if let s = dict["bytes"] as? String { return .binary(bytes(hex: s)) }
            XCTFail("unknown leaf \(dict)")
            return .nil_
        }
        // Every other description is a dict, so a bare JSON number can only be true/false.
        return .bool(try XCTUnwrap((d as? NSNumber)?.boolValue))
    }
}

func bytes(hex: String) -> [UInt8] {
    let chars = Array(hex.utf8)
    return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0 ..< $0 + 2], as: UTF8.self), radix: 16)! }
}
