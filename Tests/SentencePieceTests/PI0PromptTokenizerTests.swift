// π0 prompt encoding against the Hugging Face fast tokenizer that transformers 4.57 converts from the
// same .model (Fixtures/pi0_prompts.json, written by tools/sentencepiece/make_golden.py with LeRobot's
// call: max_length=48, padding="max_length", padding_side="right", truncation=True, BOS added).

import Foundation
import XCTest
@testable import SentencePiece

final class PI0PromptTokenizerTests: XCTestCase {
    struct Cases: Decodable {
        struct Case: Decodable { let prompt: String; let tokens: [Int]; let mask: [Bool]; let truncated: Bool }
        let tokenizer: String
        let hf_agrees_with_sentencepiece_on_prompts: Bool
        let golden_strings_where_hf_differs: [String]
        let cases: [Case]
    }

    func load() throws -> (PI0PromptTokenizer, Cases) {
        let sp = try Fixtures.processor("gemma_like_bpe")
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: Fixtures.url("pi0_prompts.json")))
        return (PI0PromptTokenizer(processor: sp), cases)
    }

    func testMatchesHuggingFaceFastTokenizer() throws {
        let (tok, golden) = try load()
        XCTAssertEqual(golden.tokenizer, "GemmaTokenizerFast")
        XCTAssertGreaterThan(golden.cases.count, 40)
        XCTAssertTrue(golden.cases.contains { $0.truncated })
        for c in golden.cases {
            let r = tok.encode(c.prompt)
            XCTAssertEqual(r.tokens, c.tokens, c.prompt.debugDescription)
            XCTAssertEqual(r.mask, c.mask, c.prompt.debugDescription)
            XCTAssertEqual(r.truncated, c.truncated, c.prompt.debugDescription)
        }
    }

    func testNewlineBosPaddingAndMask() throws {
        let (tok, _) = try load()
        let sp = tok.processor
        let newline = sp.pieceToId("\n")!
        let body = sp.encode("pick up the red block")
        for prompt in ["pick up the red block", "pick up the red block\n"] {
            let r = tok.encode(prompt)
            let real = [2] + body + [newline]   // <bos>=2, "\n" appended exactly once
            XCTAssertEqual(r.tokens, real + [Int](repeating: 0, count: 48 - real.count))   // <pad>=0
            XCTAssertEqual(r.mask, [Bool](repeating: true, count: real.count) + [Bool](repeating: false, count: 48 - real.count))
            XCTAssertFalse(r.truncated)
        }
        // "\n\n" already ends with "\n": nothing appended, and it is the user-defined piece "\n\n".
        XCTAssertEqual(Array(tok.encode("\n\n").tokens.prefix(3)), [2, sp.pieceToId("\n\n")!, 0])
        // Empty prompt: <bos> "\n".
        XCTAssertEqual(Array(tok.encode("").tokens.prefix(3)), [2, newline, 0])
        XCTAssertEqual(tok.encode("").mask.filter { $0 }.count, 2)
    }

    func testTruncationKeepsBosAndFirst47Tokens() throws {
        let (tok, _) = try load()
        let sp = tok.processor
        let prompt = String(repeating: "pick up the red block and then ", count: 10)
        let full = sp.encode(prompt + "\n")
        XCTAssertGreaterThan(full.count, 47)
        let r = tok.encode(prompt)
        XCTAssertTrue(r.truncated)
        XCTAssertEqual(r.tokens, [2] + full.prefix(47))   // the appended "\n" is cut off too
        XCTAssertEqual(r.mask, [Bool](repeating: true, count: 48))
        // Exactly 47 text tokens fit without truncation.
        let fits = tok.encode(String(repeating: "x", count: 200))
        XCTAssertTrue(fits.truncated)
        let short = PI0PromptTokenizer(processor: sp, maxLength: 5).encode("pick")
        XCTAssertEqual(short.tokens.count, 5)
        XCTAssertEqual(short.tokens.first, 2)
    }

    /// HF matches special-token text inside the prompt; sentencepiece spells it out.
    func testSpecialTokenTextIsMatchedLikeHuggingFace() throws {
        let (tok, _) = try load()
        let sp = tok.processor
        let r = tok.encode("<bos>pick up")
        XCTAssertEqual(Array(r.tokens.prefix(2)), [2, 2])
        XCTAssertEqual(Array(r.tokens.dropFirst(2).prefix(sp.encode("pick up\n").count)), sp.encode("pick up\n"))
        XCTAssertFalse(sp.encode("<bos>pick up").contains(2))
    }
}
