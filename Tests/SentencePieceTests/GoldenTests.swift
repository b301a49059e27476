// Compares encode/decode with what the `sentencepiece` Python package (0.2.x) produced for the same
// models: Fixtures/golden_*.json, written by tools/sentencepiece/make_golden.py. Texts and pieces are
// compared as UTF-8 bytes (Swift String equality would accept canonically equivalent strings).

import Foundation
import XCTest
@testable import SentencePiece

struct Golden: Decodable {
    struct Encode: Decodable { let text: String; let ids: [Int]; let pieces: [String]; let decoded: String }
    struct DecodeCase: Decodable { let ids: [Int]; let text: String }
    struct SpecialIds: Decodable { let bos: Int; let eos: Int; let pad: Int; let unk: Int }
    let model: String
    let vocab_size: Int
    let ids: SpecialIds
    let id_to_piece: [String: String]
    let encode: [Encode]
    let decode: [DecodeCase]
}

enum Fixtures {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(name)
    }
    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }
    static func golden(_ name: String) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url("golden_\(name).json")))
    }
    static func processor(_ name: String) throws -> SentencePieceProcessor {
        try SentencePieceProcessor(modelPath: url("\(name).model").path)
    }
}

func bytesEqual(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }
func bytesEqual(_ a: [String], _ b: [String]) -> Bool { a.map { Array($0.utf8) } == b.map { Array($0.utf8) } }

final class GoldenTests: XCTestCase {
    func checkEncode(_ model: String, minCases: Int = 300) throws {
        let golden = try Fixtures.golden(model)
        let sp = try Fixtures.processor(model)
        XCTAssertGreaterThan(golden.encode.count, minCases)
        var failures: [String] = []
        for (i, c) in golden.encode.enumerated() {
            let ids = sp.encode(c.text)
            let pieces = sp.encodeAsPieces(c.text)
            if ids != c.ids || !bytesEqual(pieces, c.pieces) {
                failures.append("#\(i) \(c.text.debugDescription.prefix(80)): ids \(ids.prefix(20)) vs \(c.ids.prefix(20)), pieces \(pieces.prefix(12)) vs \(c.pieces.prefix(12))")
            }
        }
        XCTAssert(failures.isEmpty, "\(model): \(failures.count) of \(golden.encode.count) encodings differ:\n" + failures.prefix(8).joined(separator: "\n"))
    }

    func checkDecode(_ model: String) throws {
        let golden = try Fixtures.golden(model)
        let sp = try Fixtures.processor(model)
        var failures: [String] = []
        for (i, c) in golden.encode.enumerated() where !bytesEqual(sp.decode(c.ids), c.decoded) {
            failures.append("encode #\(i) \(c.ids.prefix(12)): \(sp.decode(c.ids).debugDescription.prefix(60)) vs \(c.decoded.debugDescription.prefix(60))")
        }
        XCTAssertGreaterThan(golden.decode.count, 200)
        for (i, c) in golden.decode.enumerated() where !bytesEqual(sp.decode(c.ids), c.text) {
            failures.append("decode #\(i) \(c.ids): \(sp.decode(c.ids).debugDescription) vs \(c.text.debugDescription)")
        }
        XCTAssert(failures.isEmpty, "\(model): \(failures.count) decodings differ:\n" + failures.prefix(8).joined(separator: "\n"))
    }

    func checkVocabulary(_ model: String) throws {
        let golden = try Fixtures.golden(model)
        let sp = try Fixtures.processor(model)
        XCTAssertEqual(sp.vocabSize, golden.vocab_size)
        XCTAssertEqual(sp.bosId, golden.ids.bos)
        XCTAssertEqual(sp.eosId, golden.ids.eos)
        XCTAssertEqual(sp.padId, golden.ids.pad)
        XCTAssertEqual(sp.unkId, golden.ids.unk)
        XCTAssertGreaterThan(golden.id_to_piece.count, 300)
        for (key, piece) in golden.id_to_piece {
            let id = Int(key)!
            XCTAssert(bytesEqual(sp.idToPiece(id) ?? "<nil>", piece), "id \(id)")
            XCTAssertEqual(sp.pieceToId(piece), id, "piece \(piece.debugDescription)")
        }
        XCTAssertNil(sp.idToPiece(-1))
        XCTAssertNil(sp.idToPiece(sp.vocabSize))
        XCTAssertNil(sp.pieceToId("definitely not a piece ✗"))
    }

    func testBPEEncodeMatchesSentencePiece() throws { try checkEncode("gemma_like_bpe") }
    func testBPEDecodeMatchesSentencePiece() throws { try checkDecode("gemma_like_bpe") }
    func testBPEVocabulary() throws { try checkVocabulary("gemma_like_bpe") }
    func testUnigramEncodeMatchesSentencePiece() throws { try checkEncode("default_unigram") }
    func testUnigramDecodeMatchesSentencePiece() throws { try checkDecode("default_unigram") }
    func testUnigramVocabulary() throws { try checkVocabulary("default_unigram") }
    // Variants of the two models with 1/6 of the multi-character pieces marked UNUSED (and, for BPE, scores
    // rounded so that different pairs tie): exercises BPE's re-segmentation of UNUSED pieces, the
    // leftmost-wins tie rule, and unigram's skipping of UNUSED pieces.
    func testBPEWithUnusedPiecesAndTies() throws {
        try checkEncode("bpe_unused_ties"); try checkDecode("bpe_unused_ties")
    }
    /// Normaliser variants of the BPE model: dummy prefix with byte fallback (Llama-style), and dummy
    /// "prefix" as a suffix with removal of extra whitespace.
    func testBPEWithDummyPrefix() throws {
        try checkEncode("bpe_dummy_prefix"); try checkDecode("bpe_dummy_prefix")
    }
    func testBPEWithWhitespaceAsSuffix() throws {
        try checkEncode("bpe_ws_suffix"); try checkDecode("bpe_ws_suffix")
    }
    /// User-defined pieces spelled with literal spaces ("  ", "<t d>"): matched on the raw text by the
    /// normaliser, then escaped to "▁", so sentencepiece never emits them.
    func testBPEWithLiteralSpaceUserDefinedPieces() throws {
        try checkEncode("bpe_literal_space", minCases: 100); try checkDecode("bpe_literal_space")
        let sp = try Fixtures.processor("bpe_literal_space")
        XCTAssertFalse(sp.encode("a  b   c <t d>").contains { $0 == sp.pieceToId("  ") || $0 == sp.pieceToId("<t d>") })
    }
    func testUnigramWithUnusedPieces() throws {
        try checkEncode("unigram_unused"); try checkDecode("unigram_unused")
    }

    /// Hand-picked expectations on the Gemma-like model, so the important behaviours are visible here
    /// (values taken from the golden file, i.e. from the Python package).
    func testGemmaConventions() throws {
        let golden = try Fixtures.golden("gemma_like_bpe")
        let sp = try Fixtures.processor("gemma_like_bpe")
        let byText = Dictionary(golden.encode.map { ($0.text, $0) }, uniquingKeysWith: { a, _ in a })
        // Control pieces are never produced from text: "<bos>" is spelled out by ordinary pieces.
        XCTAssertFalse(sp.encode("<bos>").contains(sp.bosId))
        XCTAssertEqual(sp.encode("<bos>"), byText["<bos>"]!.ids)
        // User-defined pieces are matched whole, longest first.
        XCTAssertEqual(sp.encode("<start_of_turn>"), [sp.pieceToId("<start_of_turn>")!])
        XCTAssertEqual(sp.encode("\n\n\n"), [sp.pieceToId("\n\n\n")!])
        XCTAssertEqual(sp.encode("\n\n\n\n\n"), byText["\n\n\n\n\n"]!.ids)
        XCTAssertEqual(byText["\n\n\n\n\n"]!.ids, [sp.pieceToId("\n\n\n")!, sp.pieceToId("\n\n")!])
        // No dummy prefix, spaces kept and escaped.
        XCTAssertEqual(sp.encodeAsPieces(" "), ["▁"])
        XCTAssertEqual(sp.encode(""), [])
        // Byte fallback for characters the model has never seen: "ꙮ" is U+A66E = EA 99 AE.
        XCTAssertEqual(sp.encodeAsPieces("ꙮ"), ["<0xEA>", "<0x99>", "<0xAE>"])
        XCTAssertEqual(sp.decode(sp.encode("ꙮ")), "ꙮ")
        // Unknown id decodes to " ⁇ ", control ids to nothing.
        XCTAssertEqual(sp.decode([sp.unkId]), " \u{2047} ")
        XCTAssertEqual(sp.decode([sp.bosId, sp.eosId, sp.padId]), "")
        // Invalid ids are skipped (the Python package raises instead).
        XCTAssertEqual(sp.decode([-1, sp.vocabSize]), "")
    }

    /// The unigram model has no byte fallback: runs of unknown characters become one unk piece.
    func testUnigramUnknownRunsMerge() throws {
        let sp = try Fixtures.processor("default_unigram")
        let pieces = sp.encodeAsPieces("ꙮꙮ")
        let ids = sp.encode("ꙮꙮ")
        XCTAssertEqual(ids.last, sp.unkId)
        XCTAssertTrue(pieces.last!.hasSuffix("ꙮꙮ"), "\(pieces)")
    }
}
