// TestSupport.swift — shared helpers for the SafeTensors tests: fixture lookup, scratch directories,
// hand-built (possibly malformed) files, and an assertion that pins the exact error thrown.

import Foundation
import XCTest
@testable import SafeTensors

/// Absolute path of a file in Tests/SafeTensorsTests/Fixtures.
func fixturePath(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
        XCTFail("missing fixture \(name)", file: file, line: line)
        throw CocoaError(.fileNoSuchFile)
    }
    return url.path
}

/// A fresh directory removed when the object dies.
final class ScratchDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "safetensors-tests-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Writes `bytes` to `name` and returns the path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        // Plain POSIX I/O: FileManager's atomic create is ~10x slower, which matters for the fuzz loops.
        let p = file(name)
        let fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot create \(p)")
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count, "short write to \(p)")
        close(fd)
        return p
    }
}

/// 8-byte little-endian length + header bytes (+ optional space padding to 8) + data.
func rawFile(headerBytes: [UInt8], data: [UInt8] = [], padTo8: Bool = true, lengthOverride: UInt64? = nil) -> [UInt8] {
    var header = headerBytes
    if padTo8 { while header.count % 8 != 0 { header.append(0x20) } }
    var out: [UInt8] = []
    withUnsafeBytes(of: (lengthOverride ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + header + data
}

func rawFile(header: String, data: [UInt8] = [], padTo8: Bool = true) -> [UInt8] {
    rawFile(headerBytes: Array(header.utf8), data: data, padTo8: padTo8)
}

/// Asserts that `body` throws a SafeTensorsError for which `matches` holds, and that its message names
/// every string in `mentions` (the file path, the tensor, ...). Returns the error for further checks.
@discardableResult
func assertSafeTensorsError<T>(
    _ body: @autoclosure () throws -> T, mentions: [String] = [],
    file: StaticString = #filePath, line: UInt = #line,
    _ matches: (SafeTensorsError) -> Bool
) -> SafeTensorsError? {
    do {
        _ = try body()
        XCTFail("expected an error, got success", file: file, line: line)
        return nil
    } catch let error as SafeTensorsError {
        XCTAssertTrue(matches(error), "unexpected error case: \(error)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(error.description.contains(m), "message '\(error)' does not mention '\(m)'", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected SafeTensorsError, got \(error)", file: file, line: line)
        return nil
    }
}

/// Parses a hex bit pattern from golden_expected.json.
func hexBits(_ s: String) -> UInt64 { UInt64(s, radix: 16)! }
