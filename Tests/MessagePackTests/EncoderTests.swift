// Encoder formats checked against the byte layouts of the MessagePack format specification (msgpack.org);
// Python's choices are covered by the goldens (docs/PROTOCOL.md).
import XCTest
@testable import MessagePack

final class EncoderTests: XCTestCase {
    func testSpecFormats() {
        XCTAssertEqual(MessagePack.encode(.uint(5)), [0x05])
        XCTAssertEqual(MessagePack.encode(.uint(UInt64.max)), [0xcf] + [UInt8](repeating: 0xff, count: 8))
        XCTAssertEqual(MessagePack.encode(.int(-33)), [0xd0, 0xdf])
        XCTAssertEqual(MessagePack.encode(.int(Int64.min)), [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(MessagePack.encode(.float(1.5)), [0xca, 0x3f, 0xc0, 0x00, 0x00])
        XCTAssertEqual(MessagePack.encode(.ext(-1, [1, 2, 3, 4])), [0xd6, 0xff, 1, 2, 3, 4])
        XCTAssertEqual(MessagePack.encode(.ext(5, [9, 9, 9])), [0xc7, 0x03, 0x05, 9, 9, 9])
        XCTAssertEqual(MessagePack.encode(.binary([UInt8](repeating: 7, count: 256))).prefix(3), [0xc5, 0x01, 0x00])
        XCTAssertEqual(MessagePack.encode(.array(Array(repeating: .nil_, count: 16))).prefix(3), [0xdc, 0x00, 0x10])
        XCTAssertEqual(MessagePack.encode(.map([])), [0x80])
    }

    func testRoundTripOfEveryKind() throws {
        let v = MessagePackValue.array([
            .nil_, .bool(false), .int(-1), .uint(UInt64(Int64.max) + 1), .float(-0.0), .double(.nan),
            .string("ü"), .binary([]), .map([(.int(1), .array([]))]), .ext(3, [UInt8](repeating: 1, count: 16)),
            .ext(4, [UInt8](repeating: 2, count: 70000)),
        ])
        XCTAssertEqual(try MessagePack.decode(MessagePack.encode(v)), v)
        // Canonical integers: a uint that fits Int64 decodes as .int.
        XCTAssertEqual(try MessagePack.decode(MessagePack.encode(.uint(300))), .int(300))
    }

    func testNDArrayConstructors() throws {
        let a = NDArray(floats: [1, -2], shape: [2, 1])
        XCTAssertEqual(a.data, [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0])
        XCTAssertEqual(try a.floats(), [1, -2])
        XCTAssertThrowsError(try NDArray(dtype: "<f4", shape: [3], data: a.data))
        XCTAssertEqual(try NumpyDType(parsing: ">i2").description, ">i2")
        XCTAssertEqual(try NumpyDType(parsing: "<u1").description, "|u1")
        XCTAssertEqual(halfToFloat(0x3c00), 1.0)
        XCTAssertEqual(halfToFloat(0x0001), Float(bitPattern: 0x3380_0000))  // 2^-24, smallest subnormal
        XCTAssertEqual(halfToFloat(0xfc00), -.infinity)
        XCTAssertTrue(halfToFloat(0x7e00).isNaN)
    }
}
