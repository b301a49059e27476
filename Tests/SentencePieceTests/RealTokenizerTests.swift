// Opt-in checks against a real tokenizer.model (PaliGemma's is gated on the Hugging Face hub, so it is
// not a fixture). Skipped unless PI0_TOKENIZER_MODEL points at the file; with PI0_TOKENIZER_GOLDEN set
// too (a JSON from `tools/sentencepiece/make_golden.py --model MODEL OUT.json`) every golden string is
// compared with the Python package's output, and with PI0_TOKENIZER_PROMPTS (written by the same script
// with `--hf SNAPSHOT_DIR PROMPTS.json`) π0 prompts are compared with the HF tokenizer.json LeRobot loads.
// See docs/TOKENIZER.md.

import Foundation
import XCTest
@testable import SentencePiece

final class RealTokenizerTests: XCTestCase {
    func model() throws -> SentencePieceProcessor {
        guard let path = ProcessInfo.processInfo.environment["PI0_TOKENIZER_MODEL"], !path.isEmpty else {
            throw XCTSkip("set PI0_TOKENIZER_MODEL to a tokenizer.model to run")
        }
        return try SentencePieceProcessor(modelPath: path)
    }

    /// PaliGemma conventions (docs/SPEC.md §2.1) and losslessness of identity + byte fallback.
    func testPaliGemmaConventions() throws {
        let sp = try model()
        guard sp.vocabSize == 257_152, sp.pieceToId("<seg127>") != nil else {
            throw XCTSkip("not PaliGemma's tokenizer (vocab \(sp.vocabSize))")
        }
        XCTAssertEqual([sp.padId, sp.eosId, sp.bosId, sp.unkId], [0, 1, 2, 3])
        XCTAssertEqual(sp.encode("\n"), [108])
        for s in ["pick up the red block\n", "  two  spaces ", "ロボット 🤖 ꙮ\t\n\n", "<loc0123><seg042>"] {
            XCTAssertEqual(sp.decode(sp.encode(s)), s)
        }
        let r = PI0PromptTokenizer(processor: sp).encode("pick up the red block")
        XCTAssertEqual(r.tokens.first, 2)
        XCTAssertEqual(r.tokens.count, 48)
    }

    func testAgainstGoldenFile() throws {
        let sp = try model()
        guard let path = ProcessInfo.processInfo.environment["PI0_TOKENIZER_GOLDEN"], !path.isEmpty else {
            throw XCTSkip("set PI0_TOKENIZER_GOLDEN to run")
        }
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(sp.vocabSize, golden.vocab_size)
        var bad = 0
        for c in golden.encode where sp.encode(c.text) != c.ids || !bytesEqual(sp.decode(c.ids), c.decoded) {
            bad += 1
            if bad <= 5 { XCTFail("\(c.text.debugDescription.prefix(80)): \(sp.encode(c.text).prefix(16)) vs \(c.ids.prefix(16))") }
        }
        for c in golden.decode where !bytesEqual(sp.decode(c.ids), c.text) {
            bad += 1
            if bad <= 10 { XCTFail("decode \(c.ids)") }
        }
        XCTAssertEqual(bad, 0)
    }

    func testPromptsAgainstHuggingFaceTokenizer() throws {
        let sp = try model()
        guard let path = ProcessInfo.processInfo.environment["PI0_TOKENIZER_PROMPTS"], !path.isEmpty else {
            throw XCTSkip("set PI0_TOKENIZER_PROMPTS to run")
        }
        let golden = try JSONDecoder().decode(PI0PromptTokenizerTests.Cases.self,
                                              from: Data(contentsOf: URL(fileURLWithPath: path)))
        if !golden.golden_strings_where_hf_differs.isEmpty {
            // Informational: where HF's tokenizer.json and sentencepiece disagree on plain text.
            print("HF tokenizer differs from sentencepiece on \(golden.golden_strings_where_hf_differs.count) golden strings, e.g.",
                  golden.golden_strings_where_hf_differs.prefix(5).map(\.debugDescription))
        }
        let tok = PI0PromptTokenizer(processor: sp)
        for c in golden.cases {
            let r = tok.encode(c.prompt)
            XCTAssertEqual(r.tokens, c.tokens, c.prompt.debugDescription)
            XCTAssertEqual(r.mask, c.mask, c.prompt.debugDescription)
            XCTAssertEqual(r.truncated, c.truncated, c.prompt.debugDescription)
        }
    }
}
