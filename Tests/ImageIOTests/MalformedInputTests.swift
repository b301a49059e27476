// Truncated and bit-flipped files must throw a typed error naming the file, never crash or hang.
import PI0TestSupport
import Foundation
import XCTest
@testable import ImageIO

final class MalformedInputTests: XCTestCase {
    let files = ["j37x29_420.jpg", "j37x29_420_prog.jpg", "j48x64_prog_rst.jpg", "j37x29_gray.jpg", "j37x29_440.jpg",
                 "j48x64_444_prog.jpg", "j37x29_420_nodht.jpg",
                 "p_rgb8.png", "p_pal4_i.png", "p_pillow_rgb.png"]

    func testTruncationAlwaysThrows() throws {
        for f in files {
            let data = try Fixtures.bytes(f)
            // Every length for the first 700 bytes, then every 7th.
            for cut in Swift.stride(from: 0, to: data.count, by: 1) where cut < 700 || cut % 7 == 0 {
                XCTAssertThrowsError(try ImageDecoder.decode(data: Array(data[0..<cut]), name: f), "\(f) cut at \(cut)") { e in
                    guard let ie = e as? ImageIOError else { return XCTFail("\(f): untyped error \(e)") }
                    XCTAssertTrue(ie.description.hasPrefix(f), ie.description)
                }
            }
        }
    }

    func testByteFlipsNeverCrash() throws {
        var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["IMAGEIO_FUZZ_SEED"] ?? "") ?? 12345)
        for f in files {
            let data = try Fixtures.bytes(f)
            let png = f.hasSuffix(".png")
            // IMAGEIO_FUZZ_TRIALS raises the count for a longer local run (default 300 per file).
            let trials = Int(ProcessInfo.processInfo.environment["IMAGEIO_FUZZ_TRIALS"] ?? "") ?? 300
            for trial in 0..<trials {
                var d = data
                let k = 1 + Int(rng.next() % 3)
                // Half the trials hit the first 700 bytes, where the headers and tables are.
                let span = trial % 2 == 0 ? min(d.count, 700) : d.count
                for _ in 0..<k { d[Int(rng.next() % UInt64(span))] ^= UInt8(1 + rng.next() % 255) }
                do {
                    let img = try ImageDecoder.decode(data: d, name: f)
                    XCTAssertEqual(img.pixels.count, img.width * img.height * 3)
                    // Every byte of these PNGs is signature, chunk length/type/CRC or CRC-protected data
                    // (nothing after IEND), so any change must be detected. JPEG has no checksum.
                    XCTAssertFalse(png, "\(f) trial \(trial): corrupted PNG decoded without error")
                } catch let e as ImageIOError {
                    XCTAssertTrue(e.description.hasPrefix(f), e.description)
                } catch {
                    XCTFail("\(f) trial \(trial): untyped error \(error)")
                }
            }
        }
    }

    func testPNGWhoseHeaderDisagreesWithItsData() throws {
        // A valid 2x2 PNG whose IHDR claims 2x3 (CRC recomputed): the pixel data is too short.
        var png = PNG.encode(RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 7, count: 12)))
        png[23] = 3                     // IHDR height, low byte (IHDR data starts at byte 16)
        let crc = Zlib.crc32(png[12..<29])
        png[29] = UInt8(crc >> 24); png[30] = UInt8(crc >> 16 & 0xFF); png[31] = UInt8(crc >> 8 & 0xFF); png[32] = UInt8(crc & 0xFF)
        XCTAssertThrowsError(try PNG.decode(png, name: "short.png")) {
            XCTAssertEqual($0 as? ImageIOError, .truncated(file: "short.png", what: "image data inflates to 14 bytes, 2x3 needs 21"))
        }
    }

    func testOverSubscribedHuffmanTableIsRejected() throws {
        // Found by fuzzing: 3 codes of length 1 cannot exist; must be a typed error, not a trap.
        var counts = [Int](repeating: 0, count: 16); counts[0] = 3
        XCTAssertThrowsError(try JPEGHuffmanTable(counts: counts, values: [0, 1, 2]))
        var jpg = try Fixtures.bytes("j37x29_444.jpg")
        let dht = (0..<jpg.count - 1).first { jpg[$0] == 0xFF && jpg[$0 + 1] == 0xC4 }!
        jpg[dht + 5] = 3; jpg[dht + 7] -= 3   // first table: 3 one-bit codes, same symbol total
        XCTAssertThrowsError(try JPEG.decode(jpg, name: "bad.jpg")) {
            XCTAssertEqual($0 as? ImageIOError, .corrupt(file: "bad.jpg", reason: "over-subscribed Huffman table 0/0"))
        }
    }

    func testSpecificPNGErrors() throws {
        var d = try Fixtures.bytes("p_rgb8.png")
        d[20] ^= 0x40   // inside IHDR width -> CRC mismatch
        XCTAssertThrowsError(try PNG.decode(d, name: "cam0.png")) {
            XCTAssertTrue("\($0)".contains("cam0.png") && "\($0)".contains("CRC mismatch in chunk IHDR"), "\($0)")
        }
    }
}

