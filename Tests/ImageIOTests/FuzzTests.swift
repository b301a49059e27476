// Seeded, time-bounded fuzzing of the PNG and JPEG decoders (Tests/PI0TestSupport/Fuzz.swift,
// docs/RELIABILITY.md). An image that decodes must have positive dimensions and exactly
// width × height × 3 bytes.
import Foundation
import PI0TestSupport
import XCTest
@testable import ImageIO

final class ImageFuzzTests: XCTestCase {
    var fixtures: String { Bundle.module.resourcePath! + "/Fixtures" }

    func check(_ bytes: [UInt8]) -> FuzzOutcome {
        let img: RGBImage
        do { img = try ImageDecoder.decode(data: bytes, name: "fuzz") } catch is ImageIOError { return .rejected } catch {
            return .wrong("untyped error \(error)")
        }
        if img.width <= 0 || img.height <= 0 || img.pixels.count != img.width * img.height * 3 {
            return .wrong("\(img.width)x\(img.height) image with \(img.pixels.count) bytes")
        }
        return .accepted
    }

    func testFuzzJPEG() throws {
        let seeds = try ["j37x29_420.jpg", "j37x29_411.jpg", "j37x29_420_prog.jpg", "j37x29_420_rst.jpg",
                         "j37x29_420_nodht.jpg", "j37x29_420_opt.jpg", "c37x29_cmyk.jpg", "c37x29_ycck.jpg"].map {
            Array(try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + $0)))
        }
        let markers: [[UInt8]] = [[0xFF, 0xC0], [0xFF, 0xC2], [0xFF, 0xC4], [0xFF, 0xDA], [0xFF, 0xDB], [0xFF, 0xDD],
                                  [0xFF, 0xD0], [0xFF, 0xD9], [0xFF, 0xEE], [0xFF, 0x00]]
        let report = Fuzz.run("jpeg", seeds: seeds, ciCases: 2500, seed: 0x1BE6, dictionary: markers, check)
        XCTAssertGreaterThan(report.rejected, 0)
        XCTAssertGreaterThan(report.accepted, 0)
    }

    func testFuzzPNG() throws {
        var px: [UInt8] = []
        for y in 0..<12 { for x in 0..<16 { px += [UInt8(x * 16), UInt8(y * 20), UInt8((x + y) * 7)] } }
        let seeds = [PNG.encode(RGBImage(width: 16, height: 12, pixels: px)),
                     PNG.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]))]
        let chunks: [[UInt8]] = [Array("IHDR".utf8), Array("IDAT".utf8), Array("IEND".utf8), Array("PLTE".utf8),
                                 Array("tRNS".utf8), [0x78, 0x9C], [0x78, 0x01], [0, 0, 0x40, 0], [0x7F, 0xFF, 0xFF, 0xFF]]
        // Two cases in three get their chunk CRCs recomputed, so mutations reach past the CRC check.
        let report = Fuzz.run("png", seeds: seeds, ciCases: 3000, seed: 0x9E6, dictionary: chunks) { bytes in
            self.check(bytes.count % 3 == 0 ? bytes : Self.fixingCRCs(bytes))
        }
        XCTAssertGreaterThan(report.rejected, 0)
        XCTAssertGreaterThan(report.accepted, 0)
    }

    /// The PNG with every complete chunk's CRC recomputed.
    static func fixingCRCs(_ png: [UInt8]) -> [UInt8] {
        var b = png, pos = 8
        while pos + 12 <= b.count {
            let len = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard len <= b.count - pos - 12 else { break }
            let crc = Zlib.crc32(b[(pos + 4)..<(pos + 8 + len)])
            for k in 0..<4 { b[pos + 8 + len + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(k))) }
            pos += 12 + len
        }
        return b
    }
}
