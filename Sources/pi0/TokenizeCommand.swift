// `pi0 tokenize`: SentencePiece ids of a text, as π0's prompt encoding or plain.
import ArgumentParser
import Foundation
import PI0Runtime
import SentencePiece

struct TokenizeCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of TEXT (π0 prompt encoding by default, --raw for plain SentencePiece).",
        discussion: "Without TEXT, reads a JSON array of strings on standard input and prints a JSON array of id arrays.")

    @Option(help: "SentencePiece .model file (default: ./tokenizer.model or PaliGemma's from the caches; `pi0 download --tokenizer` gets it).")
    var tokenizer: String?
    @Flag(help: "Plain SentencePiece encoding (no BOS, no newline, no padding).") var raw = false
    @Option(help: "π0 prompt length (tokenizer_max_length).") var maxLength: Int = 48
    @Argument(help: "Text to encode.") var text: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        guard let path = tokenizer ?? CheckpointLocator.defaultTokenizer(near: ".") else {
            throw CLIError("no tokenizer: no ./tokenizer.model and none in the caches; " + PolicyPreflight.tokenizerHelp)
        }
        let sp = try SentencePieceProcessor(modelPath: path)
        let prompt = PI0PromptTokenizer(processor: sp, maxLength: maxLength)
        func encode(_ s: String) -> [Int] { raw ? sp.encode(s) : prompt.encode(s).tokens }
        if let text {
            if !raw && prompt.encode(text).truncated { warn("prompt truncated to \(maxLength) tokens") }
            print(String(decoding: try JSONSerialization.data(withJSONObject: encode(text)), as: UTF8.self))
            return
        }
        let input = FileHandle.standardInput.readDataToEndOfFile()
        guard let strings = (try? JSONSerialization.jsonObject(with: input)) as? [String] else {
            throw ValidationError("standard input must be a JSON array of strings (or pass TEXT)")
        }
        print(String(decoding: try JSONSerialization.data(withJSONObject: strings.map(encode)), as: UTF8.self))
    }
}
