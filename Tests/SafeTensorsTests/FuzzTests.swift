// Seeded, time-bounded fuzzing of the safetensors parser (Tests/PI0TestSupport/Fuzz.swift,
// docs/RELIABILITY.md). A file that opens must be self-consistent: every tensor inside the data
// section, its byte count equal to elements × dtype size, and every accessor bounded.
import Foundation
import PI0TestSupport
import XCTest
@testable import SafeTensors

final class SafeTensorsFuzzTests: XCTestCase {
    func testFuzzHeaderAndFile() throws {
        let dir = ScratchDirectory()
        let seeds = try ["golden_dtypes.safetensors", "golden_bf16.safetensors"].map {
            Array(try Data(contentsOf: URL(fileURLWithPath: try fixturePath($0))))
        }
        let dictionary = ["\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "[0,18446744073709551615]",
                          "[-1]", "\"F32\"", "\"BF16\"", "\"BOOL\"", "1e999", "[4294967296,4294967296]", "{", "}", "\\u0000"]
            .map { Array($0.utf8) }
        let path = dir.file("fuzz.safetensors")
        let report = Fuzz.run("safetensors", seeds: seeds, ciCases: 3000, seed: 0x5AFE_7E45, dictionary: dictionary) { bytes in
            dir.write("fuzz.safetensors", bytes)
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(path: path, allowUncoveredData: bytes.count % 2 == 0) } catch is SafeTensorsError {
                return .rejected
            } catch {
                return .wrong("untyped error \(error)")
            }
            for info in file.infos {
                let (n, overflow) = info.shape.reduce((1, false)) { acc, d in
                    let m = acc.0.multipliedReportingOverflow(by: d); return (m.partialValue, acc.1 || m.overflow)
                }
                if overflow || info.dataOffset < 0 || info.dataOffset + info.byteCount > file.dataSize {
                    return .wrong("\(info.name): offset \(info.dataOffset) + \(info.byteCount) outside \(file.dataSize)")
                }
                if info.dtype.byteSize > 0 && n * info.dtype.byteSize != info.byteCount {
                    return .wrong("\(info.name): \(n) elements of \(info.dtype) in \(info.byteCount) bytes")
                }
                guard let raw = try? file.rawBytes(info.name), raw.count == info.byteCount else {
                    return .wrong("\(info.name): rawBytes disagrees with byteCount")
                }
                if let f = try? file.floats(info.name), f.count != n { return .wrong("\(info.name): \(f.count) floats for \(n) elements") }
            }
            return .accepted
        }
        XCTAssertGreaterThan(report.rejected, 0)
        XCTAssertEqual(report.wrong, 0)
    }
}
