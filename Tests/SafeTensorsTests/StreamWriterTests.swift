// StreamWriterTests.swift — SafeTensorsStreamWriter: chunked writes give the same file as the in-memory
// writer, the data follows entry order, and every misuse is a typed error that names file and tensor.

import Foundation
import XCTest
@testable import SafeTensors

final class StreamWriterTests: XCTestCase {
    private let dir = ScratchDirectory()

    private func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    func testChunkedWritesMatchInMemoryWriter() throws {
        let a: [Float] = (0..<1000).map { Float($0) * 0.25 - 7 }
        let b: [Int64] = [5, -6, 7]
        let path = dir.file("stream.safetensors")
        // Entries in the aligned order (size descending, then name), so the layout equals SafeTensorsWriter's.
        let stream = try SafeTensorsStreamWriter(
            path: path,
            entries: [("b", .I64, [3]), ("a", .F32, [10, 100]), ("empty", .F32, [0]), ("m", .BOOL, [2])],
            metadata: ["format": "pt"])
        XCTAssertEqual(stream.nextTensor, "b")
        try stream.write("b", bytes: b.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } })
        let aBytes = f32Bytes(a)
        var offset = 0
        for chunk in [1, 999, 7, 2993] {  // odd chunk sizes that split elements
            try stream.write("a", bytes: Array(aBytes[offset..<(offset + chunk)]))
            offset += chunk
        }
        XCTAssertEqual(offset, 4000)
        XCTAssertEqual(stream.nextTensor, "m", "the zero-byte tensor needs no write")
        try stream.write("empty", bytes: [])  // an explicit empty write for it is harmless
        try stream.write("m", bytes: [1, 0])
        XCTAssertNil(stream.nextTensor)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing at the final path before finish()")
        try stream.finish()

        var writer = SafeTensorsWriter()
        try writer.add("a", floats: a, shape: [10, 100])
        try writer.add("b", int64s: b, shape: [3])
        try writer.add("empty", floats: [], shape: [0])
        try writer.add("m", bools: [true, false], shape: [2])
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), writer.serialized(metadata: ["format": "pt"]))

        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(try file.floats("a"), a)
        XCTAssertEqual(try file.int64s("b"), b)
        XCTAssertEqual(try file.bools("m"), [true, false])
        XCTAssertEqual(file.metadata, ["format": "pt"])
    }

    func testEntryOrderIsKept() throws {
        let path = dir.file("order.safetensors")
        let stream = try SafeTensorsStreamWriter(path: path, entries: [("z", .U8, [1]), ("a", .F32, [1])])
        try stream.write("z", bytes: [9])
        try stream.write("a", bytes: f32Bytes([2]))
        try stream.finish()
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(try file.info("z").dataOffset, 0)
        XCTAssertEqual(try file.info("a").dataOffset, 1)  // unaligned on purpose: the accessors must cope
        XCTAssertEqual(try file.floats("a"), [2])
        XCTAssertEqual(try file.int64s("z"), [9])
    }

    func testMisuse() throws {
        let path = dir.file("misuse.safetensors")
        assertSafeTensorsError(try SafeTensorsStreamWriter(path: path, entries: [("a", .U8, [1]), ("a", .U8, [1])]),
                               mentions: [path, "'a'"]) { $0 == .duplicateTensor(file: path, tensor: "a") }
        assertSafeTensorsError(try SafeTensorsStreamWriter(path: path, entries: [("n", .U8, [-1])]), mentions: [path, "'n'"]) {
            if case .invalidArgument(path, "n", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try SafeTensorsStreamWriter(path: path, entries: [("x", .F64, [Int.max / 8]), ("y", .F64, [Int.max / 8])]),
                               mentions: [path, "'y'", "overflow"]) {
            if case .invalidArgument(path, "y", _) = $0 { return true } else { return false }
        }

        let stream = try SafeTensorsStreamWriter(path: path, entries: [("a", .F32, [2]), ("b", .U8, [2])])
        assertSafeTensorsError(try stream.write("b", bytes: [1, 2]), mentions: [path, "'b'", "out of order", "'a'"]) {
            if case .invalidArgument(path, "b", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try stream.write("zzz", bytes: [1]), mentions: [path, "'zzz'", "not declared"]) {
            if case .invalidArgument(path, "zzz", _) = $0 { return true } else { return false }
        }
        assertSafeTensorsError(try stream.write("a", bytes: [UInt8](repeating: 0, count: 9)), mentions: [path, "'a'", "9 bytes"]) {
            if case .invalidArgument(path, "a", _) = $0 { return true } else { return false }
        }
        try stream.write("a", bytes: [UInt8](repeating: 0, count: 5))  // the failed calls wrote nothing
        assertSafeTensorsError(try stream.finish(), mentions: [path, "'a'", "5 of 8"]) {
            if case .invalidArgument(path, "a", _) = $0 { return true } else { return false }
        }
        try stream.write("a", bytes: [0, 0, 0])
        try stream.write("b", bytes: [1, 2])
        assertSafeTensorsError(try stream.write("b", bytes: [3]), mentions: [path, "already complete"]) {
            if case .invalidArgument(path, "b", _) = $0 { return true } else { return false }
        }
        try stream.finish()
        assertSafeTensorsError(try stream.finish(), mentions: [path, "already finished"]) {
            if case .invalidArgument(path, _, _) = $0 { return true } else { return false }
        }
        XCTAssertEqual(try SafeTensorsFile(path: path).int64s("b"), [1, 2])
    }

    func testAbandonedWriterLeavesNoFile() throws {
        let path = dir.file("abandoned.safetensors")
        do {
            let stream = try SafeTensorsStreamWriter(path: path, entries: [("a", .U8, [4])])
            try stream.write("a", bytes: [1, 2])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
