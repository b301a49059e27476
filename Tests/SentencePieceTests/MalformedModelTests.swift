// Bad model files must throw a typed error naming the file, never crash or read out of range.

import Foundation
import XCTest
@testable import SentencePiece

/// A minimal protobuf writer for hand-built models.
struct ProtoWriter {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }
    mutating func int(_ field: Int, _ v: Int) { tag(field, 0); varint(UInt64(bitPattern: Int64(v))) }
    mutating func bytes(_ field: Int, _ b: [UInt8]) { tag(field, 2); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    mutating func float(_ field: Int, _ f: Float) {
        tag(field, 5)
        let u = f.bitPattern
        bytes += [UInt8(u & 0xff), UInt8(u >> 8 & 0xff), UInt8(u >> 16 & 0xff), UInt8(u >> 24)]
    }

    static func piece(_ s: String, _ score: Float, _ type: Int) -> [UInt8] {
        var w = ProtoWriter(); w.string(1, s); w.float(2, score); w.int(3, type); return w.bytes
    }

    /// A model: pieces (text, score, type), trainer_spec fields, normalizer_spec fields.
    static func model(_ pieces: [(String, Float, Int)], modelType: Int = 2, byteFallback: Bool = false,
                      charsmap: [UInt8]? = nil) -> [UInt8] {
        var w = ProtoWriter()
        for p in pieces { w.bytes(1, piece(p.0, p.1, p.2)) }
        var t = ProtoWriter(); t.int(3, modelType); t.int(35, byteFallback ? 1 : 0); t.int(43, -1)
        w.bytes(2, t.bytes)
        var n = ProtoWriter(); n.string(1, "identity"); n.int(3, 0); n.int(4, 0)
        if let c = charsmap { n.bytes(2, c) }
        w.bytes(3, n.bytes)
        return w.bytes
    }
}

final class MalformedModelTests: XCTestCase {
    func assertMalformed(_ data: [UInt8], _ contains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SentencePieceProcessor(modelData: data, name: "test.model"), file: file, line: line) { error in
            guard case SentencePieceError.malformedModel(let path, let reason) = error else {
                return XCTFail("expected malformedModel, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(path, "test.model", file: file, line: line)
            XCTAssert(reason.contains(contains), "\(reason) does not mention \(contains)", file: file, line: line)
        }
    }

    func testHandBuiltModelWorks() throws {
        // Sanity check of the writer: a 5-piece BPE model.
        let data = ProtoWriter.model([("<unk>", 0, 2), ("a", -1, 1), ("b", -2, 1), ("ab", -0.5, 1), ("▁", -3, 1)])
        let sp = try SentencePieceProcessor(modelData: data)
        XCTAssertEqual(sp.encode("ab ab"), [3, 4, 3])
        XCTAssertEqual(sp.encodeAsPieces("abc"), ["ab", "c"])
        XCTAssertEqual(sp.encode("abc"), [3, 0])
        XCTAssertEqual(sp.bosId, -1)
        XCTAssertEqual(sp.unkId, 0)
    }

    func testTruncatedModelsThrowOrLoadNeverCrash() throws {
        let full = try Fixtures.bytes("gemma_like_bpe.model")
        var threw = 0
        for n in stride(from: 0, to: full.count, by: 37) + [1, 2, 3, full.count - 1] {
            do {
                let sp = try SentencePieceProcessor(modelData: Array(full.prefix(n)), name: "cut")
                _ = sp.decode(sp.encode("pick up the 🤖 <start_of_turn>\n\n"))   // whatever loaded must work
            } catch let e as SentencePieceError {
                if case .malformedModel(let path, _) = e { XCTAssertEqual(path, "cut") } else { XCTFail("\(e)") }
                threw += 1
            }
        }
        XCTAssertGreaterThan(threw, 500)
        assertMalformed(Array(full.prefix(100)), "runs past the end")
        assertMalformed(Array(full.prefix(full.count - 1)), "runs past the end")
    }

    func testGarbageThrows() {
        assertMalformed([], "no pieces")
        assertMalformed([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "varint")
        assertMalformed([0x0A, 0x7F, 0x01], "length 127")          // field 1 claims 127 bytes
        assertMalformed([0x0B], "wire type 3")                     // a group start
        assertMalformed([0x00], "invalid field number 0")
        assertMalformed([0x08, 0x01], "field 1 has wire type 0")   // pieces must be length-delimited
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let junk = (0..<Int.random(in: 1...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertThrowsError(try SentencePieceProcessor(modelData: junk))
        }
    }

    func testInvalidVocabularies() {
        assertMalformed(ProtoWriter.model([("a", 0, 1)]), "no UNKNOWN piece")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("<unk2>", 0, 2)]), "second UNKNOWN")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("a", 0, 1), ("a", 0, 1)]), "already defined")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("", 0, 1)]), "empty")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("a", 0, 9)]), "unknown piece type 9")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("<0x41>", 0, 6)]), "byte_fallback is false")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("<0x41>", 0, 6)], byteFallback: true), "<0x00> is missing")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2), ("<0x4g>", 0, 6)], byteFallback: true), "<0xNN>")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2)], charsmap: [1, 2]), "shorter than 4")
        assertMalformed(ProtoWriter.model([("<unk>", 0, 2)], charsmap: [0xff, 0, 0, 0, 1, 2]), "trie size")
    }

    func testUnsupportedModelTypes() {
        for type in [3, 4, 99] {   // WORD, CHAR, unknown
            XCTAssertThrowsError(try SentencePieceProcessor(modelData: ProtoWriter.model([("<unk>", 0, 2)], modelType: type))) {
                guard case SentencePieceError.unsupported(let what) = $0 else { return XCTFail("\($0)") }
                XCTAssert(what.contains("model_type \(type)"), what)
            }
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try SentencePieceProcessor(modelPath: "/nonexistent/tokenizer.model")) {
            guard case SentencePieceError.cannotRead(let path, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "/nonexistent/tokenizer.model")
        }
        XCTAssertThrowsError(try SentencePieceProcessor(modelPath: NSTemporaryDirectory()))
    }

    /// A corrupted (but well-sized) nmt_nfkc charsmap must not make encoding read out of range.
    func testCorruptCharsmapDoesNotCrash() throws {
        var data = try Fixtures.bytes("default_unigram.model")
        let reference = try SentencePieceProcessor(modelData: data)
        var rng = SystemRandomNumberGenerator()
        // The charsmap is the big blob in the middle of the file; scribble over part of it.
        for i in stride(from: data.count / 3, to: data.count * 2 / 3, by: 5) { data[i] = UInt8.random(in: 0...255, using: &rng) }
        if let sp = try? SentencePieceProcessor(modelData: data) {
            for text in ["Ｆｕｌｌｗｉｄｔｈ ｶﾀｶﾅ ㍿", "pick up the red block", "ﬁ ½ ①"] { _ = sp.decode(sp.encode(text)) }
        }
        XCTAssertFalse(reference.encode("pick up").isEmpty)
    }
}
