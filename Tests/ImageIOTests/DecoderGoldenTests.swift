// Decodes every fixture written by tools/imageio/make_golden.py and compares with the expected RGB bytes:
// for JPEG, what Pillow 13 (libjpeg-turbo) decodes; for PNG, the writer's source samples through the
// documented conversion (manifest `pil_equal` says where Pillow agrees — all but 16-bit gray).
import Foundation
import XCTest
@testable import ImageIO

enum Fixtures {
    static var dir: URL { Bundle.module.resourceURL!.appendingPathComponent("Fixtures") }
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: dir.appendingPathComponent(name))) }
    static func cases() throws -> [[String: Any]] {
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: Any]
        return m["cases"] as! [[String: Any]]
    }
}

final class DecoderGoldenTests: XCTestCase {
    /// Every case must match its golden exactly (max |diff| 0).
    func check(kind: String) throws {
        var n = 0
        for c in try Fixtures.cases() where c["kind"] as! String == kind {
            let file = c["file"] as! String
            let img = try ImageDecoder.decode(path: Fixtures.dir.appendingPathComponent(file).path)
            let want = try Fixtures.bytes(file + ".rgb")
            XCTAssertEqual(img.width, c["width"] as? Int, file)
            XCTAssertEqual(img.height, c["height"] as? Int, file)
            guard img.pixels.count == want.count else { XCTFail("\(file): \(img.pixels.count) bytes, want \(want.count)"); continue }
            var maxDiff = 0, bad = 0, first = -1
            for i in want.indices {
                let d = abs(Int(img.pixels[i]) - Int(want[i]))
                if d > 0 { bad += 1; if first < 0 { first = i } }
                maxDiff = max(maxDiff, d)
            }
            XCTAssertEqual(maxDiff, 0, "\(file): \(bad) of \(want.count) bytes differ, max |diff| \(maxDiff), first at byte \(first) (pixel \(first / 3))")
            n += 1
        }
        XCTAssertGreaterThan(n, 10, "fixtures of kind \(kind) missing")
    }

    func testJPEGMatchesPillowExactly() throws { try check(kind: "jpeg") }
    func testPNGMatchesSourceSamples() throws { try check(kind: "png") }

    /// Opt-in: every `<i>.jpg` in $IMAGEIO_RANDOM_JPEG_DIR must decode to its `<i>.rgb` exactly
    /// (files from tools/imageio/make_random_jpegs.py).
    func testRandomJPEGDirectory() throws {
        guard let dir = ProcessInfo.processInfo.environment["IMAGEIO_RANDOM_JPEG_DIR"] else {
            throw XCTSkip("set IMAGEIO_RANDOM_JPEG_DIR to run")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jpg") }
        XCTAssertFalse(files.isEmpty)
        var bad: [String] = []
        for f in files {
            let img = try ImageDecoder.decode(path: dir + "/" + f)
            let want = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.dropLast(4) + ".rgb")))
            if img.pixels != want { bad.append(f) }
        }
        XCTAssertEqual(bad, [], "\(bad.count) of \(files.count) differ from Pillow")
    }

    func testGray16DiffersFromPillowOnlyByDesign() throws {
        // Pillow clips 16-bit gray to 255 ("I;16" -> RGB); we keep the high byte. The manifest records it.
        let flagged = try Fixtures.cases().filter { !($0["pil_equal"] as! Bool) }.map { $0["file"] as! String }
        XCTAssertEqual(Set(flagged), ["p_gray16.png", "p_gray16_i.png"])
    }

    func testPNGEncodeRoundTrip() throws {
        let src = try ImageDecoder.decode(path: Fixtures.dir.appendingPathComponent("p_pillow_rgb.png").path)
        let png = PNG.encode(src)
        XCTAssertEqual(Array(png[0..<8]), PNG.signature)
        XCTAssertEqual(try PNG.decode(png, name: "roundtrip"), src)
        let tiny = RGBImage(width: 1, height: 1, pixels: [1, 2, 3])
        XCTAssertEqual(try ImageDecoder.decode(data: PNG.encode(tiny), name: "tiny"), tiny)
    }

    func testCoverageOfGoldenSet() throws {
        // Guards against a regenerated fixture set silently losing the interesting cases.
        let files = Set(try Fixtures.cases().map { $0["file"] as! String })
        for f in ["j37x29_440.jpg", "j37x29_411.jpg", "j37x29_420_nodht.jpg", "j37x29_rgb.jpg", "j160x120_420_prog.jpg",
                  "j3x17_420.jpg", "p_pal2_i.png", "p_rgba16.png"] {
            XCTAssertTrue(files.contains(f), "fixture \(f) missing")
        }
    }

    /// CMYK and YCCK JPEGs (issue 13) decode exactly as Pillow 13 does (tools/imageio/make_cmyk_golden.py):
    /// Adobe transform 0, transform 2 (YCCK) and no Adobe marker.
    func testCMYKAndYCCKMatchPillowExactly() throws {
        for file in ["c37x29_cmyk.jpg", "c37x29_ycck.jpg", "c37x29_cmyk_noadobe.jpg", "j8x8_cmyk.jpg"] {
            let img = try JPEG.decode(try Fixtures.bytes(file), name: file)
            let want = try Fixtures.bytes(file + ".rgb")
            XCTAssertEqual(img.pixels.count, want.count, file)
            let diff = zip(img.pixels, want).map { abs(Int($0) - Int($1)) }.max() ?? -1
            XCTAssertEqual(diff, 0, "\(file): max |diff| \(diff)")
        }
        // The YCCK reading differs from the CMYK one (the flag is honoured).
        XCTAssertNotEqual(try Fixtures.bytes("c37x29_cmyk.jpg.rgb"), try Fixtures.bytes("c37x29_ycck.jpg.rgb"))
    }

    func testUnknownFormatAndMissingFile() {
        XCTAssertThrowsError(try ImageDecoder.decode(data: Array("GIF89a-not-supported".utf8), name: "x.gif")) {
            XCTAssertEqual($0 as? ImageIOError, .unknownFormat(file: "x.gif"))
        }
        XCTAssertThrowsError(try ImageDecoder.decode(path: "/nonexistent/cam.png")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/cam.png"))
        }
    }
}
