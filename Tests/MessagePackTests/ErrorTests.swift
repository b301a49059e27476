// Hostile and broken input: every case must throw a typed error, never crash or over-allocate.
import PI0TestSupport
import XCTest
@testable import MessagePack

final class ErrorTests: XCTestCase {
    func testEveryTruncationOfEveryGoldenThrows() throws {
        for name in GoldenTests.caseNames {
            let bytes = try GoldenTests.golden(name)
            for cut in 0 ..< bytes.count {
                XCTAssertThrowsError(try MessagePack.decode(Array(bytes[..<cut])), "\(name) cut at \(cut)") { error in
                    guard let e = error as? MessagePackError else { return XCTFail("\(error)") }
                    switch e {
                    case .truncated, .lengthTooLarge: break
                    default: XCTFail("\(name) cut at \(cut): \(e)")
                    }
                }
            }
        }
    }

    func testTypedErrors() {
        XCTAssertEqual(decodeError([]), .truncated(offset: 0))
        XCTAssertEqual(decodeError([0xc1]), .invalidByte(0xc1, offset: 0))
        XCTAssertEqual(decodeError([0x92, 0x01, 0xc1]), .invalidByte(0xc1, offset: 2))
        XCTAssertEqual(decodeError([0x01, 0x02, 0x03]), .trailingBytes(offset: 1, count: 2))
        XCTAssertEqual(decodeError([0xcd, 0x01]), .truncated(offset: 0))
        XCTAssertEqual(decodeError([0xa2, 0xc3, 0x28]), .invalidUTF8(offset: 0))  // overlong/invalid sequence
        XCTAssertEqual(decodeError([0xa1, 0xff]), .invalidUTF8(offset: 0))
        XCTAssertEqual(decodeError([0xa3, 0xed, 0xa0, 0x80]), .invalidUTF8(offset: 0))  // UTF-16 surrogate
    }

    func testHugeDeclaredLengthsThrowBeforeAllocating() {
        let ff: [UInt8] = [0xff, 0xff, 0xff, 0xff]
        XCTAssertEqual(decodeError([0xc6] + ff), .lengthTooLarge(offset: 0, declared: 0xffff_ffff, available: 0))
        XCTAssertEqual(decodeError([0xdb] + ff + [0x41]), .lengthTooLarge(offset: 0, declared: 0xffff_ffff, available: 1))
        XCTAssertEqual(decodeError([0xdd] + ff + [0xc0, 0xc0]), .lengthTooLarge(offset: 0, declared: 0xffff_ffff, available: 2))
        XCTAssertEqual(decodeError([0xdf] + ff + [0xc0, 0xc0]), .lengthTooLarge(offset: 0, declared: 0xffff_ffff, available: 2))
        XCTAssertEqual(decodeError([0xc9] + ff + [0x01]), .lengthTooLarge(offset: 0, declared: 0xffff_ffff, available: 0))
        XCTAssertEqual(decodeError([0xdc, 0xff, 0xff]), .lengthTooLarge(offset: 0, declared: 0xffff, available: 0))
        // A map of 3 pairs needs at least 6 bytes.
        XCTAssertEqual(decodeError([0x83, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0]), .lengthTooLarge(offset: 0, declared: 3, available: 5))
    }

    func testDepthBomb() {
        let nested = [UInt8](repeating: 0x91, count: 100) + [0xc0]
        XCTAssertEqual(decodeError(nested), .depthExceeded(offset: 64, maxDepth: 64))
        XCTAssertNoThrow(try MessagePack.decode(nested, maxDepth: 100))
        // A million nested maps: rejected at the limit, no stack overflow.
        let bomb = [UInt8](repeating: 0x81, count: 1_000_000)
        XCTAssertEqual(decodeError(bomb), .depthExceeded(offset: 64, maxDepth: 64))
    }

    /// Deterministic mutation fuzzing of the golden messages: decoding either succeeds or throws.
    func testMutatedMessagesNeverCrash() throws {
        var rng = SplitMix64(seed: 42)
        var thrown = 0
        for name in GoldenTests.caseNames {
            let bytes = try GoldenTests.golden(name)
            for _ in 0 ..< 500 {
                var m = bytes
                for _ in 0 ... Int(rng.next() % 4) { m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                do { _ = try NumpyMsgpack.unpack(m) } catch is MessagePackError { thrown += 1 } catch is NumpyMsgpackError { thrown += 1 }
            }
        }
        XCTAssertGreaterThan(thrown, 100, "mutations should mostly break something")
    }

    func testNDArrayMapsAreValidatedStrictly() {
        func arrayMap(_ pairs: [(String, MessagePackValue)]) -> MessagePackValue {
            .map([(.string("x"), .map(pairs.map { (.binary(Array($0.0.utf8)), $0.1) }))])
        }
        let good: [(String, MessagePackValue)] = [("__ndarray__", .bool(true)), ("data", .binary([0, 0, 128, 63])),
                                                  ("dtype", .string("<f4")), ("shape", .array([.int(1)]))]
        XCTAssertEqual(try NumpyMsgpack.decodeTree(arrayMap(good))["x"]?.ndarray?.floats(), [1.0])

        func expectError(_ pairs: [(String, MessagePackValue)], _ check: (NumpyMsgpackError) -> Bool, line: UInt = #line) {
            XCTAssertThrowsError(try NumpyMsgpack.decodeTree(arrayMap(pairs)), line: line) { e in
                guard let e = e as? NumpyMsgpackError, check(e) else { return XCTFail("\(e)", line: line) }
                XCTAssertTrue(e.description.contains("'x'"), "error names the key: \(e)", line: line)
            }
        }
        func replacing(_ key: String, _ v: MessagePackValue) -> [(String, MessagePackValue)] {
            good.map { $0.0 == key ? ($0.0, v) : $0 }
        }
        expectError(replacing("data", .binary([0, 0, 128])), { if case .dataSizeMismatch(_, _, _, 4, 3) = $0 { true } else { false } })
        expectError(replacing("dtype", .string("<c8")), { $0 == .unsupportedDType(path: "x", dtype: "<c8") })
        expectError(replacing("dtype", .string("<U1")), { $0 == .unsupportedDType(path: "x", dtype: "<U1") })
        expectError(replacing("dtype", .string("|f4")), { $0 == .unsupportedDType(path: "x", dtype: "|f4") })
        expectError(replacing("dtype", .string("<f+4")), { $0 == .unsupportedDType(path: "x", dtype: "<f+4") })
        expectError(replacing("shape", .array([.int(-1)])), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(replacing("shape", .array([.int(Int64.max), .int(4)])), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(replacing("shape", .array([.int(1 << 62), .int(1)])), { if case .dataSizeMismatch(_, _, _, nil, 4) = $0 { true } else { false } })
        expectError(replacing("shape", .int(1)), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(replacing("data", .string("abcd")), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(replacing("__ndarray__", .bool(false)), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(Array(good.dropLast()), { if case .invalidNDArray = $0 { true } else { false } })
        expectError(good + [("extra", .nil_)], { if case .invalidNDArray = $0 { true } else { false } })

        // str keys are not an ndarray (the Python client would not read them as one either).
        let strKeys = MessagePackValue.map(good.map { (.string($0.0), $0.1) })
        guard case .map = try? NumpyMsgpack.decodeTree(strKeys) else { return XCTFail("str-keyed map must stay a map") }
    }

    func testScalarMapsAreValidated() {
        func scalar(_ dtype: String, _ data: MessagePackValue) -> MessagePackValue {
            .map([(.string("s"), .map([(.binary(Array("__npgeneric__".utf8)), .bool(true)),
                                        (.binary(Array("data".utf8)), data), (.binary(Array("dtype".utf8)), .string(dtype))]))])
        }
        XCTAssertEqual(try NumpyMsgpack.decodeTree(scalar("<i8", .int(3)))["s"], .scalar(NumpyScalar(dtype: "<i8", value: .int(3))))
        XCTAssertThrowsError(try NumpyMsgpack.decodeTree(scalar("<i8", .string("3"))))
        XCTAssertThrowsError(try NumpyMsgpack.decodeTree(scalar("<c16", .double(1))))
        XCTAssertThrowsError(try NumpyMsgpack.decodeTree(scalar("|b1", .int(1))))
    }

    func testErrorPathsNameNestedKeys() throws {
        let bad = MessagePackValue.map([(.string("images"), .map([(.string("cam_high"),
            .map([(.binary(Array("__ndarray__".utf8)), .bool(true)), (.binary(Array("data".utf8)), .binary([1])),
                  (.binary(Array("dtype".utf8)), .string("|u1")), (.binary(Array("shape".utf8)), .array([.int(2)]))]))]))])
        XCTAssertThrowsError(try NumpyMsgpack.decodeTree(bad)) { e in
            XCTAssertEqual((e as? NumpyMsgpackError)?.description,
                           "ndarray at 'images.cam_high': dtype |u1 shape [2] needs 2 bytes of data, got 1")
        }
    }

    private func decodeError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> MessagePackError? {
        do {
            _ = try MessagePack.decode(bytes)
            XCTFail("decoded without error", file: file, line: line)
            return nil
        } catch let e as MessagePackError {
            return e
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return nil
        }
    }
}

