// π0's prompt encoding as LeRobot 0.6.1 does it (docs/SPEC.md §2.1):
//   `Pi0NewLineProcessor` appends "\n" unless the task already ends with it, then
//   `TokenizerProcessorStep` calls the Hugging Face Gemma fast tokenizer with
//   max_length=48, padding="max_length", padding_side="right", truncation=True, add_special_tokens=True.
// The HF tokenizer adds <bos> (its TemplateProcessing post-processor) and truncation keeps room for it:
// the result is <bos> + the first 47 text tokens (checked against transformers 4.57's GemmaTokenizerFast
// in tools/sentencepiece/make_golden.py → Fixtures/pi0_prompts.json).
//
// One HF behaviour that sentencepiece itself does not have: the text of a special token (<pad>, <eos>,
// <bos>, <unk>, i.e. the model's CONTROL and UNKNOWN pieces) inside the prompt is matched before the
// model runs and becomes that token's id. The text between such matches is encoded separately, which is
// the same as sentencepiece here because Gemma's normaliser adds no dummy prefix.

public struct PI0PromptTokenizer: Sendable {
    public let processor: SentencePieceProcessor
    public let maxLength: Int
    private let specials: PrefixMatcher

    public init(processor: SentencePieceProcessor, maxLength: Int = 48) {
        precondition(maxLength >= 1, "maxLength must be at least 1 (room for <bos>)")
        self.processor = processor
        self.maxLength = maxLength
        var keys: [[UInt8]] = []
        for id in 0..<processor.vocabSize where processor.types[id] == .control || processor.types[id] == .unknown {
            keys.append(processor.pieceBytes[id])
        }
        specials = PrefixMatcher(keys)
    }

    /// tokens: `maxLength` ids (<bos>, text tokens, then pad id); mask: true on <bos> and text tokens;
    /// truncated: the prompt had more than `maxLength - 1` text tokens and the rest were dropped.
    public func encode(_ prompt: String) -> (tokens: [Int], mask: [Bool], truncated: Bool) {
        let text = prompt.hasSuffix("\n") ? prompt : prompt + "\n"
        var ids: [Int] = []
        if processor.bosId >= 0 { ids.append(processor.bosId) }
        ids += encodeWithSpecialTokens(text)
        let truncated = ids.count > maxLength
        if truncated { ids.removeLast(ids.count - maxLength) }
        let real = ids.count
        let pad = processor.padId >= 0 ? processor.padId : 0
        ids += [Int](repeating: pad, count: maxLength - real)
        return (ids, (0..<maxLength).map { $0 < real }, truncated)
    }

    /// The HF split on special tokens (leftmost, longest), sentencepiece on the text between them.
    func encodeWithSpecialTokens(_ text: String) -> [Int] {
        if specials.isEmpty { return processor.encode(text) }
        let bytes = Array(text.utf8)
        var ids: [Int] = []
        var segmentStart = 0, pos = 0
        func flush(_ end: Int) {
            if end > segmentStart {
                ids += processor.encode(String(decoding: bytes[segmentStart..<end], as: UTF8.self))
            }
        }
        while pos < bytes.count {
            if let n = specials.longestMatch(bytes, from: pos, end: bytes.count) {
                flush(pos)
                ids.append(processor.pieceToIdInternal(bytes[pos..<(pos + n)]))
                pos += n
                segmentStart = pos
            } else {
                pos += 1
            }
        }
        flush(bytes.count)
        return ids
    }
}
