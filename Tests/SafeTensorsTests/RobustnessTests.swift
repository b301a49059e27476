// RobustnessTests.swift — hostile input never crashes: every truncation of a valid file and thousands of
// random header corruptions either throw a SafeTensorsError or open a file whose tensors all read back.
// Also shows that opening memory-maps instead of reading: a 1 GiB sparse file opens instantly.

import PI0TestSupport
import Foundation
import XCTest
@testable import SafeTensors

final class RobustnessTests: XCTestCase {
    private let dir = ScratchDirectory()

    /// Reads every tensor through every applicable accessor (exercises the bounds of a file that opened).
    private func touchEverything(_ file: SafeTensorsFile) {
        for info in file.infos {
            _ = try? file.rawBytes(info.name).reduce(0) { $0 &+ Int($1) }
            _ = try? file.floats(info.name)
            _ = try? file.doubles(info.name)
            _ = try? file.int64s(info.name)
            _ = try? file.bools(info.name)
        }
    }

    func testEveryTruncationThrows() throws {
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: fixturePath("golden_dtypes.safetensors"))))
        let path = dir.file("truncated.safetensors")
        for length in 0..<original.count {
            dir.write("truncated.safetensors", Array(original.prefix(length)))
            for lenient in [false, true] {
                do {
                    _ = try SafeTensorsFile(path: path, allowUncoveredData: lenient)
                    XCTFail("truncation to \(length) bytes opened (lenient: \(lenient))")
                } catch let error as SafeTensorsError {
                    XCTAssertEqual(error.file, path)
                } catch {
                    XCTFail("non-SafeTensorsError \(error)")
                }
            }
        }
        dir.write("truncated.safetensors", original)
        XCTAssertNoThrow(try SafeTensorsFile(path: path))
    }

    func testRandomHeaderCorruptionNeverCrashes() throws {
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: fixturePath("golden_dtypes.safetensors"))))
        let headerEnd = 8 + Int(original.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let path = dir.file("fuzz.safetensors")
        var rng = SplitMix64(seed: 0x5AFE)
        var opened = 0, rejected = 0
        let interesting: [UInt8] = Array("{}[]\",:0123456789-.eE \\u".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        for iteration in 0..<1500 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(headerEnd))  // includes the 8 length bytes
                bytes[i] = rng.next() % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next())
                    : interesting[Int(rng.next() % UInt64(interesting.count))]
            }
            dir.write("fuzz.safetensors", bytes)
            do {
                let file = try SafeTensorsFile(path: path, allowUncoveredData: iteration % 2 == 1)
                touchEverything(file)
                opened += 1
            } catch let error as SafeTensorsError {
                XCTAssertEqual(error.file, path)
                XCTAssertFalse(error.description.isEmpty)
                rejected += 1
            } catch {
                XCTFail("non-SafeTensorsError \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 1000, "most corruptions must be caught (opened \(opened))")
    }

    /// Random bytes written over a one-tensor header. Each input's expected outcome is decided
    /// independently of our parser: a header Foundation's JSON parser does not accept as an object must
    /// fail with `.invalidHeader`; one that parses to the original header must open and read back
    /// [1, 2, 3, 4]; any other JSON object must either open (and read back) or fail with an error about
    /// the tensor entry, its offsets or the metadata — never with a crash or an untyped error.
    func testRandomGarbageFilesNeverCrash() throws {
        var rng = SplitMix64(seed: 42)
        let path = dir.file("garbage.safetensors")
        let headerText = Array("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}".utf8)
        let original = try JSONSerialization.jsonObject(with: Data(headerText)) as! NSDictionary
        var invalidJSON = 0, unchanged = 0, otherJSON = 0
        for iteration in 0..<300 {
            var header = headerText
            for _ in 0..<3 { header[Int(rng.next() % UInt64(header.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            dir.write("garbage.safetensors", rawFile(headerBytes: header, data: [1, 2, 3, 4], padTo8: rng.next() % 2 == 0))
            let parsed = try? JSONSerialization.jsonObject(with: Data(header)) as? NSDictionary
            let what = "input \(iteration): \(String(decoding: header, as: UTF8.self))"
            let result = Result { try SafeTensorsFile(path: path) }
            switch (parsed, result) {
            case (nil, .success):
                XCTFail("\(what): not a JSON object, yet it opened")
            case (nil, .failure(let error)):
                invalidJSON += 1
                guard case .invalidHeader(let f, _)? = error as? SafeTensorsError else {
                    XCTFail("\(what): expected SafeTensorsError.invalidHeader, got \(error)"); continue
                }
                XCTAssertEqual(f, path)
            case (let dict?, .success(let file)) where dict == original:
                unchanged += 1
                XCTAssertEqual(Array(try file.rawBytes("a")), [1, 2, 3, 4] as [UInt8], what)
            case (let dict?, .failure(let error)) where dict == original:
                XCTFail("\(what): parses to the original header, yet failed with \(error)")
            case (_?, .success(let file)):
                otherJSON += 1
                touchEverything(file)
            case (_?, .failure(let error)):
                otherJSON += 1
                guard let e = error as? SafeTensorsError else { XCTFail("\(what): untyped error \(error)"); continue }
                XCTAssertEqual(e.file, path, what)
                switch e {
                case .invalidTensorEntry, .invalidMetadata, .unknownDType, .sizeMismatch, .invalidOffsets,
                     .offsetsOutOfRange, .uncoveredData:
                    break
                default:
                    XCTFail("\(what): a JSON object header failed with an unexpected error: \(e)")
                }
            }
        }
        // The corruption must exercise every branch, or the test is not testing what it says.
        XCTAssertGreaterThan(invalidJSON, 100)
        XCTAssertGreaterThan(otherJSON + unchanged, 0, "no corrupted header parsed as JSON")
    }

    /// A 1 GiB tensor in a sparse file: opening must not read it (instant, no resident-memory jump), and
    /// reading a small tensor placed after it works.
    func testOpeningMapsInsteadOfReading() throws {
        let big = 1 << 30
        let header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[\(big)],\"data_offsets\":[0,\(big)]},"
            + "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\(big),\(big + 8)]}}"
        let prefix = rawFile(header: header)
        let path = dir.file("sparse.safetensors")
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let total = prefix.count + big + 8
        XCTAssertEqual(ftruncate(fd, off_t(total)), 0)  // sparse: no disk blocks for the zeros
        XCTAssertEqual(prefix.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }, prefix.count)
        let tail: [Float] = [1.5, -2.5]
        XCTAssertEqual(tail.withUnsafeBytes { pwrite(fd, $0.baseAddress, 8, off_t(prefix.count + big)) }, 8)
        close(fd)

        let rssBefore = residentBytes()
        let start = Date()
        let file = try SafeTensorsFile(path: path)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, 0.5, "opening a 1 GiB file took \(elapsed) s: it must not read the data")
        XCTAssertEqual(try file.floats("tail"), tail)
        XCTAssertEqual(try file.info("big").byteCount, big)
        XCTAssertEqual(try file.rawBytes("big")[big / 2], 0)  // touches one page only
        if let before = rssBefore, let after = residentBytes() {
            XCTAssertLessThan(after - before, 64 << 20, "resident memory grew by \(after - before) bytes")
        }
    }

    /// VmRSS from /proc/self/status (Linux), nil elsewhere.
    private func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }
}

