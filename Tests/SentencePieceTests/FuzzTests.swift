// Seeded, time-bounded fuzzing of SentencePiece model parsing (Tests/PI0TestSupport/Fuzz.swift,
// docs/RELIABILITY.md). A model that parses must encode a prompt to ids inside its vocabulary and
// decode them without crashing.
import Foundation
import PI0TestSupport
import XCTest
@testable import SentencePiece

final class SentencePieceFuzzTests: XCTestCase {
    func testFuzzModelParsing() throws {
        let dir = Bundle.module.resourcePath! + "/Fixtures"
        let seeds = try ["gemma_like_bpe.model", "bpe_dummy_prefix.model"].map {
            Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)))
        }
        // Protobuf tags of ModelProto / TrainerSpec / NormalizerSpec fields and varint extremes.
        let dictionary: [[UInt8]] = [[0x0A], [0x12], [0x1A], [0x22], [0x28], [0x30], [0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
                                     [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x15, 0x00, 0x00, 0xC0, 0x7F]]
        let report = Fuzz.run("sentencepiece", seeds: seeds, ciCases: 1500, seed: 0x5E17, dictionary: dictionary) { bytes in
            let sp: SentencePieceProcessor
            do { sp = try SentencePieceProcessor(modelData: bytes, name: "fuzz") } catch is SentencePieceError { return .rejected } catch {
                return .wrong("untyped error \(error)")
            }
            let ids = sp.encode("pick up the red block\n")
            if let bad = ids.first(where: { $0 < 0 || $0 >= sp.vocabSize }) { return .wrong("id \(bad) outside vocabulary \(sp.vocabSize)") }
            _ = sp.decode(ids)
            return .accepted
        }
        XCTAssertGreaterThan(report.rejected, 0)
        XCTAssertGreaterThan(report.accepted, 0)
    }
}
