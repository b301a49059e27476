import XCTest
@testable import ImageIO

final class ZlibTests: XCTestCase {
    func testChecksumsKnownValues() {
        // Standard check values: CRC-32/ISO-HDLC("123456789") and the Adler-32 example from Wikipedia.
        XCTAssertEqual(Zlib.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(Zlib.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Zlib.adler32([UInt8]()), 1)
    }

    func testInflateKnownStreams() throws {
        // zlib.compress(b"hello hello hello hello", 9) and zlib.compress(b"", 9) from CPython's zlib.
        let hello: [UInt8] = [0x78, 0xDA, 0xCB, 0x48, 0xCD, 0xC9, 0xC9, 0x57, 0xC8, 0x40, 0x27, 0x01, 0x68, 0x03, 0x08, 0xB1]
        XCTAssertEqual(String(decoding: try Zlib.inflate(hello), as: UTF8.self), "hello hello hello hello")
        XCTAssertEqual(try Zlib.inflate([0x78, 0xDA, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]), [])
        // zlib.compress(b"abc", 0): one stored block.
        XCTAssertEqual(try Zlib.inflate(hex("7801010300fcff616263024d0127")), Array("abc".utf8))
        // compressobj(9): "hello hello hello hello", Z_FULL_FLUSH (an empty stored block right after a
        // Huffman block, so the decoder's lookahead must give bytes back), then "world world", finish.
        XCTAssertEqual(try Zlib.inflate(hex("78daca48cdc9c957c8402701000000ffff2bcf2fca495128079100e2900d21")),
                       Array("hello hello hello helloworld world".utf8))
    }

    func testDeflateRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let random = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let repetitive = [UInt8]((0..<20000).map { UInt8($0 % 7 + ($0 / 1000)) })
        for data in [[], [42], random, repetitive, [UInt8](repeating: 9, count: 70000)] {
            let z = Zlib.deflate(data)
            XCTAssertEqual(try Zlib.inflate(z), data)
        }
        XCTAssertLessThan(Zlib.deflate(repetitive).count, 2000, "LZ77 matching should compress repeats")
    }

    func testOutputLimit() throws {
        let z = Zlib.deflate([UInt8](repeating: 0, count: 70000))
        XCTAssertEqual(try Zlib.inflate(z, maxOutput: 70000).count, 70000)
        XCTAssertThrowsError(try Zlib.inflate(z, maxOutput: 69999)) {
            XCTAssertEqual($0 as? ZlibError, .corrupt("output exceeds the expected 69999 bytes"))
        }
    }

    func testCorruptStreamsThrow() {
        let good = Zlib.deflate(Array("some text some text some text".utf8))
        XCTAssertThrowsError(try Zlib.inflate([0x78]))
        XCTAssertThrowsError(try Zlib.inflate([0x79, 0x9C] + good.dropFirst(2)))      // header check
        for cut in 0..<good.count { XCTAssertThrowsError(try Zlib.inflate(Array(good[0..<cut])), "cut at \(cut)") }
        var bad = good; bad[bad.count - 1] ^= 1                                       // Adler-32
        XCTAssertThrowsError(try Zlib.inflate(bad)) { XCTAssertEqual($0 as? ZlibError, .corrupt("Adler-32 mismatch (stored \(Zlib.adler32(Array("some text some text some text".utf8)) ^ 1), computed \(Zlib.adler32(Array("some text some text some text".utf8))))")) }
    }
}

private func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}
