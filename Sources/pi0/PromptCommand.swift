// `pi0 prompt`: the exact text π0.5 tokenises for a task and a state (docs/SPEC_PI05.md §10), so a user
// can see what the model is told. With --checkpoint the raw state goes through the checkpoint's own
// normaliser first; with --model pi05 the state is given already normalised.
import ArgumentParser
import Foundation
import PI0
import PI0Runtime

struct PromptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompt",
        abstract: "Print the prompt π0.5 tokenises: \"Task: …, State: <256 bins>;\\nAction: \".",
        discussion: """
        pi0 prompt --model pi05 --task "pick up the cube" --normalized-state 0.1,-0.5,1.0 [--json]
        pi0 prompt --checkpoint DIR_OR_ID --task "pick up the cube" --state 0.31,0.02,... [--json]
          --normalized-state: values already normalised to [-1, 1] (out-of-range values give bins -1 / 255,
          as LeRobot's); --state: the robot's raw state, normalised by the checkpoint's processor files.
          A NaN or infinite value is refused. --json prints {"prompt", "bins", "normalized_state"}.
        """)

    @Option(help: "Model kind without a checkpoint: pi05 (π0's prompt is the task itself).") var model: String?
    @Option(help: "Checkpoint folder or Hugging Face id in the local cache (its config.json and normaliser).") var checkpoint: String?
    @Option(parsing: .unconditional, help: "The instruction (may start with a minus sign).") var task: String
    @Option(parsing: .unconditional, help: "With --model: the normalised state, comma-separated.") var normalizedState: String?
    @Option(parsing: .unconditional, help: "With --checkpoint: the raw robot state, comma-separated.") var state: String?
    @Flag(help: "Print a JSON object instead of the bare prompt.") var json = false

    /// Comma-separated float32 values. A finite number beyond float32's range (1e39) is an error here, not
    /// an infinity (an explicit nan/inf is passed on, to be refused with its index by the caller).
    static func values(_ text: String, option: String) throws -> [Float] {
        try text.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, s in
            let t = s.trimmingCharacters(in: .whitespaces)
            guard let v = Float(t) else { throw ValidationError("\(option) value \(i) '\(t)' is not a number") }
            if v.isInfinite, !t.lowercased().hasSuffix("inf"), !t.lowercased().hasSuffix("infinity") {
                throw ValidationError("\(option) value \(i) '\(t)' is outside the float32 range (±\(Float.greatestFiniteMagnitude))")
            }
            return v
        }
    }

    func run() throws {
        let normalized: [Float]
        switch (model, checkpoint) {
        case let (m?, nil):
            guard m == ModelKind.pi05.rawValue else {
                throw ValidationError("--model must be pi05 (π0 does not put the state into its prompt), got '\(m)'")
            }
            guard let normalizedState, state == nil else { throw ValidationError("--model pi05 takes --normalized-state v1,v2,… (not --state)") }
            normalized = try Self.values(normalizedState, option: "--normalized-state")
        case let (nil, c?):
            guard let state, normalizedState == nil else { throw ValidationError("--checkpoint takes the raw --state v1,v2,… (not --normalized-state)") }
            let dir = try CheckpointLocator.resolve(c)
            let config = try PI0Config.load(path: (dir as NSString).appendingPathComponent("config.json"))
            guard config.model == .pi05 else {
                throw CLIError("\(dir): config.json says type '\(config.model.rawValue)'; only π0.5 writes the state into its prompt")
            }
            let raw = try Self.values(state, option: "--state")
            if let want = config.stateDim, raw.count != want {
                throw ValidationError("--state has \(raw.count) values; this checkpoint's state has \(want)")
            }
            if let stats = try NormalizationStats.loadIfPresent(checkpointDirectory: dir) {
                normalized = try stats.normalizeState(raw)
            } else {
                note("warning: \(dir) has no policy_preprocessor.json; the state is used as given (no normalisation)")
                normalized = raw
            }
        default:
            throw ValidationError("give exactly one of --model pi05 (with --normalized-state) or --checkpoint DIR (with --state)")
        }
        let prompt = try PI05Prompt.prompt(task: task, normalizedState: normalized)
        if json {
            let obj: [String: Any] = ["prompt": prompt, "bins": try PI05Prompt.discretize(normalized),
                                      "normalized_state": normalized.map(Double.init)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(prompt, terminator: "")
            if !prompt.hasSuffix("\n") { print() }
        }
    }
}
