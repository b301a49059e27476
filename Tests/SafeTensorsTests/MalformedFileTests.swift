// MalformedFileTests.swift — one test per way a safetensors file can be broken. Each builds the bad bytes
// itself and pins the exact error case, and that the message names the file (and the tensor).

import Foundation
import XCTest
@testable import SafeTensors

final class MalformedFileTests: XCTestCase {
    private let dir = ScratchDirectory()

    /// Writes the bytes and returns the path.
    private func write(_ bytes: [UInt8], _ name: String = #function) -> String {
        dir.write(name.replacingOccurrences(of: "()", with: "") + ".safetensors", bytes)
    }

    private let f32x2 = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    private let eightBytes = [UInt8](repeating: 0, count: 8)

    // MARK: - Container

    func testMissingFile() {
        let p = dir.file("does-not-exist.safetensors")
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "No such file"]) {
            if case .cannotOpen(p, _) = $0 { return true } else { return false }
        }
    }

    func testDirectoryIsNotAFile() {
        assertSafeTensorsError(try SafeTensorsFile(path: dir.path), mentions: [dir.path]) {
            $0 == .cannotOpen(file: dir.path, reason: "is a directory, expected a regular file")
        }
    }

    func testEmptyFile() {
        let p = write([])
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "0 bytes"]) {
            if case .truncated(p, _) = $0 { return true } else { return false }
        }
    }

    func testFileShorterThanLengthPrefix() {
        let p = write([8, 0, 0, 0, 0])
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "5 bytes"]) {
            if case .truncated(p, _) = $0 { return true } else { return false }
        }
    }

    func testHeaderLengthPastEndOfFile() {
        let p = write(rawFile(headerBytes: Array("{}".utf8), lengthOverride: 64))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "64"]) {
            if case .truncated(p, _) = $0 { return true } else { return false }
        }
    }

    func testHeaderLengthAbsurdlyLarge() {
        for n in [UInt64(100_000_001), UInt64(1) << 40, UInt64.max] {
            let p = write(rawFile(headerBytes: Array("{}".utf8), lengthOverride: n), "huge\(n)")
            assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "\(n)"]) {
                $0 == .headerTooLarge(file: p, headerLength: n, limit: 100_000_000)
            }
        }
    }

    // MARK: - Header text

    func testNonUTF8Header() {
        let p = write(rawFile(headerBytes: Array(#"{"a"#.utf8) + [0xC3, 0x28] + Array(#"":1}"#.utf8)))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "UTF-8"]) {
            if case .invalidHeader(p, _) = $0 { return true } else { return false }
        }
    }

    func testOverlongUTF8AndEncodedSurrogatesAreRejected() {
        for (i, bad) in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF]].enumerated() {
            let p = write(rawFile(headerBytes: Array(#"{"__metadata__":{"k":""#.utf8) + bad.map(UInt8.init) + Array(#""}}"#.utf8)), "utf8-\(i)")
            assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p]) {
                if case .invalidHeader(p, let r) = $0 { return r.contains("UTF-8") } else { return false }
            }
        }
    }

    func testInvalidJSON() {
        let cases = [#"{"t":{"dtype":"F32",}}"#, #"{"t" {}}"#, "{", #"{"t":1} x"#, #"{'t':1}"#, #"{"t":[01]}"#,
                     #"{"a\u12":1}"#, #"{"a\ud800":1}"#, "{\"a\tb\":1}", #"{"t":tru}"#, "\u{0}{}"]
        for (i, text) in cases.enumerated() {
            let p = write(rawFile(header: text), "json-\(i)")
            assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "invalid JSON"]) {
                if case .invalidHeader(p, _) = $0 { return true } else { return false }
            }
        }
    }

    func testNULPaddingIsInvalidJSON() {
        // The reference crate only tolerates JSON whitespace after the object; NUL is not whitespace.
        let p = write(rawFile(headerBytes: Array("{}".utf8) + [0, 0, 0, 0, 0, 0], padTo8: false))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p]) {
            if case .invalidHeader(p, let r) = $0 { return r.contains("after the JSON value") } else { return false }
        }
    }

    func testDeepNestingIsRejectedWithoutCrashing() {
        let text = #"{"__metadata__":"# + String(repeating: "[", count: 100_000) + "}"
        let p = write(rawFile(header: text))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "nesting"]) {
            if case .invalidHeader(p, _) = $0 { return true } else { return false }
        }
    }

    func testHeaderNotAnObject() {
        for (i, text) in [#"[{"dtype":"F32"}]"#, "42", #""x""#, "null"].enumerated() {
            let p = write(rawFile(header: text), "notobject-\(i)")
            assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "not an object"]) {
                if case .invalidHeader(p, _) = $0 { return true } else { return false }
            }
        }
    }

    // MARK: - Tensor entries

    private func assertEntryError(_ entry: String, tensor: String = "t", data: [UInt8] = [], mentioning: String,
                                  line: UInt = #line, _ name: String = #function) {
        let p = write(rawFile(header: "{\"\(tensor)\":\(entry)}", data: data), name + "-\(line)")
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'\(tensor)'", mentioning], line: line) {
            if case .invalidTensorEntry(p, tensor, _) = $0 { return true } else { return false }
        }
    }

    func testEntryNotAnObject() {
        assertEntryError("[0,8]", mentioning: "not an object")
    }

    func testEntryMissingDType() {
        assertEntryError(#"{"shape":[2],"data_offsets":[0,8]}"#, data: eightBytes, mentioning: "missing field 'dtype'")
    }

    func testEntryMissingShape() {
        assertEntryError(#"{"dtype":"F32","data_offsets":[0,8]}"#, data: eightBytes, mentioning: "missing field 'shape'")
    }

    func testEntryMissingDataOffsets() {
        assertEntryError(#"{"dtype":"F32","shape":[2]}"#, data: eightBytes, mentioning: "missing field 'data_offsets'")
    }

    func testEntryDuplicateField() {
        assertEntryError(#"{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, data: eightBytes,
                         mentioning: "duplicate field 'dtype'")
    }

    func testDTypeNotAString() {
        assertEntryError(#"{"dtype":4,"shape":[2],"data_offsets":[0,8]}"#, data: eightBytes, mentioning: "not a string")
    }

    func testNegativeShapeEntry() {
        assertEntryError(#"{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}"#, data: eightBytes, mentioning: "shape[0] = -2")
    }

    func testNonIntegerShapeEntries() {
        for dim in ["2.0", "2e0", "\"2\"", "null", "true"] {
            assertEntryError("{\"dtype\":\"F32\",\"shape\":[\(dim)],\"data_offsets\":[0,8]}", data: eightBytes,
                             mentioning: "shape[0]")
        }
    }

    func testOverflowingShapeEntry() {
        assertEntryError(#"{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}"#, data: eightBytes,
                         mentioning: "9223372036854775808")
    }

    func testNegativeOffset() {
        assertEntryError(#"{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}"#, data: eightBytes, mentioning: "data_offsets[0] = -8")
    }

    func testNonIntegerOffsets() {
        for end in ["8.0", "8e0", "0.8e1", "\"8\"", "[8]"] {
            assertEntryError("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\(end)]}", data: eightBytes,
                             mentioning: "data_offsets[1]")
        }
    }

    func testOverflowingOffset() {
        assertEntryError(#"{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551624]}"#, data: eightBytes,
                         mentioning: "18446744073709551624")
    }

    func testWrongNumberOfOffsets() {
        assertEntryError(#"{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}"#, data: eightBytes, mentioning: "3 entries")
        assertEntryError(#"{"dtype":"F32","shape":[2],"data_offsets":8}"#, data: eightBytes, mentioning: "not an array")
    }

    func testUnknownDType() {
        for dtype in ["F8_E4M3", "U32", "f32", "float32", ""] {
            let p = write(rawFile(header: "{\"w\":{\"dtype\":\"\(dtype)\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: eightBytes),
                          "dtype-\(dtype)")
            assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'w'", "'\(dtype)'"]) {
                $0 == .unknownDType(file: p, tensor: "w", dtype: dtype)
            }
        }
    }

    func testBeginGreaterThanEnd() {
        let p = write(rawFile(header: #"{"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#, data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'w'", "[8, 4]"]) {
            $0 == .invalidOffsets(file: p, tensor: "w", begin: 8, end: 4)
        }
    }

    func testEndPastEndOfFile() {
        let p = write(rawFile(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'w'", "[0, 16]", "8-byte"]) {
            $0 == .offsetsOutOfRange(file: p, tensor: "w", begin: 0, end: 16, dataSize: 8)
        }
    }

    func testByteCountDoesNotMatchShape() {
        let p = write(rawFile(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'w'", "[3]", "12 bytes", "8 bytes"]) {
            $0 == .sizeMismatch(file: p, tensor: "w", shape: [3], dtype: .F32, byteCount: 8)
        }
    }

    func testShapeProductOverflowIsASizeMismatchNotACrash() {
        let big = 1 << 32
        let p = write(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[\(big),\(big),\(big)],\"data_offsets\":[0,8]}}",
                              data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'w'", "overflow"]) {
            $0 == .sizeMismatch(file: p, tensor: "w", shape: [big, big, big], dtype: .F32, byteCount: 8)
        }
        // Element count fits but times the dtype size does not.
        let q = write(rawFile(header: "{\"w\":{\"dtype\":\"F64\",\"shape\":[\(Int.max / 4)],\"data_offsets\":[0,8]}}",
                              data: eightBytes), "bytesOverflow")
        assertSafeTensorsError(try SafeTensorsFile(path: q), mentions: [q, "'w'", "overflow"]) {
            if case .sizeMismatch(q, "w", _, .F64, 8) = $0 { return true } else { return false }
        }
    }

    func testOverlappingTensors() {
        let header = #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let p = write(rawFile(header: header, data: [UInt8](repeating: 0, count: 12)))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'a'", "'b'", "overlap"]) {
            $0 == .overlappingTensors(file: p, first: "a", second: "b")
        }
        // Overlap is an error even in lenient mode.
        assertSafeTensorsError(try SafeTensorsFile(path: p, allowUncoveredData: true)) {
            $0 == .overlappingTensors(file: p, first: "a", second: "b")
        }
    }

    func testIdenticalRangesOverlap() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#
        let p = write(rawFile(header: header, data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'a'", "'b'"]) {
            $0 == .overlappingTensors(file: p, first: "a", second: "b")
        }
    }

    func testEmptyTensorInsideAnotherIsAnOverlapInStrictMode() throws {
        // The reference crate rejects this ("invalid offset for tensor `e`"); empty tensors at a boundary are fine.
        let header = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}"#
        let p = write(rawFile(header: header, data: [7, 8]))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'a'", "'e'"]) {
            $0 == .overlappingTensors(file: p, first: "a", second: "e")
        }
        XCTAssertEqual(try SafeTensorsFile(path: p, allowUncoveredData: true).int64s("e"), [])
        let atEnds = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"# +
            #""s":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}}"#
        let q = write(rawFile(header: atEnds, data: [7, 8]), "boundaries")
        let file = try SafeTensorsFile(path: q)
        XCTAssertEqual(file.names, ["a", "e", "s"])
        XCTAssertEqual(try file.int64s("a"), [7, 8])
        XCTAssertEqual(try file.floats("s"), [])
    }

    func testDuplicateTensorName() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        let p = write(rawFile(header: header, data: eightBytes + eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'a'", "more than once"]) {
            $0 == .duplicateTensor(file: p, tensor: "a")
        }
    }

    func testHoleBetweenTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        let p = write(rawFile(header: header, data: [UInt8](repeating: 0, count: 12)))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "[4, 8)", "'a'"]) {
            $0 == .uncoveredData(file: p, begin: 4, end: 8, previous: "a")
        }
        let lenient = try? SafeTensorsFile(path: p, allowUncoveredData: true)
        XCTAssertEqual(lenient?.names, ["a", "b"])
        XCTAssertEqual(try lenient?.info("b").dataOffset, 8)
    }

    func testHoleAtStartAndTrailingBytes() {
        let p = write(rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eightBytes))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "[0, 4)", "start"]) {
            $0 == .uncoveredData(file: p, begin: 0, end: 4, previous: "")
        }
        let q = write(rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eightBytes), "trailing")
        assertSafeTensorsError(try SafeTensorsFile(path: q), mentions: [q, "[4, 8)", "'a'"]) {
            $0 == .uncoveredData(file: q, begin: 4, end: 8, previous: "a")
        }
        XCTAssertNoThrow(try SafeTensorsFile(path: q, allowUncoveredData: true))
    }

    // MARK: - Metadata

    func testMetadataValueNotAString() {
        let p = write(rawFile(header: #"{"__metadata__":{"format":"pt","epoch":3}}"#))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'epoch'", "number"]) {
            $0 == .invalidMetadata(file: p, key: "epoch", reason: "value is a number, not a string")
        }
    }

    func testMetadataDuplicateKey() {
        let p = write(rawFile(header: #"{"__metadata__":{"k":"1","k":"2"}}"#))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "'k'", "duplicate"]) {
            $0 == .invalidMetadata(file: p, key: "k", reason: "duplicate key")
        }
    }

    func testMetadataNotAnObject() {
        let p = write(rawFile(header: #"{"__metadata__":["pt"]}"#))
        assertSafeTensorsError(try SafeTensorsFile(path: p), mentions: [p, "__metadata__"]) {
            $0 == .invalidMetadata(file: p, key: "", reason: "is an array, not an object")
        }
    }

    func testNullMetadataIsEmpty() throws {
        let p = write(rawFile(header: #"{"__metadata__":null}"#))
        XCTAssertEqual(try SafeTensorsFile(path: p).metadata, [:])
    }

    // MARK: - Accessors

    func testMissingTensor() throws {
        let p = write(rawFile(header: "{\(f32x2)}", data: eightBytes))
        let file = try SafeTensorsFile(path: p)
        for call in [{ _ = try file.info("nope") }, { _ = try file.rawBytes("nope") }, { _ = try file.floats("nope") }] {
            assertSafeTensorsError(try call(), mentions: [p, "'nope'"]) { $0 == .missingTensor(file: p, tensor: "nope") }
        }
        XCTAssertFalse(file.contains("nope"))
        XCTAssertTrue(file.contains("t"))
    }

    func testWrongDType() throws {
        let p = write(rawFile(header: "{\(f32x2)}", data: eightBytes))
        let file = try SafeTensorsFile(path: p)
        assertSafeTensorsError(try file.int64s("t"), mentions: [p, "'t'", "F32", "I64"]) {
            $0 == .wrongDType(file: p, tensor: "t", expected: [.I64, .I32, .I16, .I8, .U8, .BOOL], actual: .F32)
        }
        assertSafeTensorsError(try file.bools("t"), mentions: [p, "'t'"]) {
            $0 == .wrongDType(file: p, tensor: "t", expected: [.BOOL, .U8], actual: .F32)
        }
        let q = write(rawFile(header: #"{"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#, data: eightBytes), "ints")
        let ints = try SafeTensorsFile(path: q)
        assertSafeTensorsError(try ints.floats("i"), mentions: [q, "'i'", "I32"]) {
            $0 == .wrongDType(file: q, tensor: "i", expected: [.F32, .F16, .BF16, .F64], actual: .I32)
        }
        assertSafeTensorsError(try ints.doubles("i"), mentions: [q, "'i'"]) {
            if case .wrongDType(q, "i", _, .I32) = $0 { return true } else { return false }
        }
    }

    func testBoolByteOtherThanZeroOrOne() throws {
        let p = write(rawFile(header: #"{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}"#, data: [1, 0, 2]))
        let file = try SafeTensorsFile(path: p)
        assertSafeTensorsError(try file.bools("m"), mentions: [p, "'m'", "element 2"]) {
            $0 == .invalidValue(file: p, tensor: "m", index: 2, reason: "BOOL byte 2 is neither 0 nor 1")
        }
        assertSafeTensorsError(try file.int64s("m")) { if case .invalidValue(p, "m", 2, _) = $0 { return true } else { return false } }
    }

    func testCopyFloatsChecksDestinationSize() throws {
        let p = write(rawFile(header: "{\(f32x2)}", data: eightBytes))
        let file = try SafeTensorsFile(path: p)
        var small = [Float](repeating: 0, count: 1)
        _ = try small.withUnsafeMutableBufferPointer { buf in
            assertSafeTensorsError(try file.copyFloats("t", into: buf), mentions: [p, "'t'"]) {
                if case .invalidArgument(p, "t", _) = $0 { return true } else { return false }
            }
        }
    }
}
