// `pi0 inspect --checkpoint ID_OR_DIR`: what a checkpoint holds, checked against the model without running it.
import ArgumentParser
import Foundation
import PI0
import PI0Tensor
import PI0Runtime
import SafeTensors

struct InspectCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Describe a checkpoint: architecture, dtypes, parameters, missing/extra keys.",
        discussion: "Exit status 2 when an expected tensor is missing or has the wrong shape. "
            + "The folder may also be given without --checkpoint (pi0 inspect DIR), as before.")

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String?
    @Argument(help: ArgumentHelp("Checkpoint folder (older form of --checkpoint).", visibility: .hidden)) var directory: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (checkpoint == nil) != (directory == nil) else {
            throw ValidationError(checkpoint == nil ? "give the checkpoint: --checkpoint ID_OR_DIR" : "give the checkpoint once (--checkpoint or DIR, not both)")
        }
    }

    func run() throws {
        let spec = checkpoint ?? directory!
        let dir = try CheckpointLocator.resolve(spec)
        let ckpt = try Checkpoint(directory: dir)
        let c = ckpt.config, d = ckpt.dims
        let file = ckpt.safetensors
        var byDType: [String: (count: Int, params: Int)] = [:]
        var params = 0
        for info in file.infos {
            byDType[info.dtype.rawValue, default: (0, 0)].count += 1
            byDType[info.dtype.rawValue, default: (0, 0)].params += info.elementCount
            params += info.elementCount
        }
        // Build the model with a shape-only backend: every expected key and shape is checked.
        var problem: String?, unexpected: [String] = []
        do {
            _ = try PI0Model(checkpoint: ckpt, backend: DryRunBackend())
        } catch let e as CheckpointError {
            if case .unexpectedTensors(let keys, _) = e { unexpected = keys } else { problem = "\(e)" }
        }
        let ignored = ckpt.unusedKeys().ignored
        if json {
            func gemma(_ g: GemmaDims) -> [String: Any] {
                ["width": g.width, "depth": g.depth, "mlp_dim": g.mlpDim, "heads": g.heads, "head_dim": g.headDim,
                 "kv_heads": g.kvHeads, "vocab_size": g.vocabSize]
            }
            var obj: [String: Any] = [
                "checkpoint": spec, "directory": dir, "weights": ckpt.weightsPath,
                "model": c.model.rawValue, "paligemma_variant": c.paligemmaVariant, "action_expert_variant": c.actionExpertVariant, "dtype": c.precision.rawValue,
                "chunk_size": c.chunkSize, "num_inference_steps": c.numInferenceSteps, "max_state_dim": c.maxStateDim,
                "max_action_dim": c.maxActionDim, "tokenizer_max_length": c.tokenizerMaxLength, "cameras": c.cameraNames,
                "vision": ["image_size": d.vision.imageSize, "width": d.vision.hidden, "layers": d.vision.layers, "heads": d.vision.heads,
                           "mlp": d.vision.intermediate, "patch_size": d.vision.patchSize, "tokens_per_image": d.vision.tokensPerImage],
                "vlm": gemma(d.vlm), "expert": gemma(d.expert), "tensors": file.infos.count, "parameters": params,
                "dtypes": byDType.mapValues { ["tensors": $0.count, "parameters": $0.params] },
                "keys_ok": problem == nil, "unexpected_tensors": unexpected,
                "ignored_tensors": ignored.map { ["key": $0.key, "reason": $0.reason] },
            ]
            if let s = c.stateDim { obj["state_dim"] = s }
            if let a = c.actionDim { obj["action_dim"] = a }
            if let problem { obj["problem"] = problem }
            try printJSON(obj)
        } else {
            print("checkpoint  \(spec)" + (dir == spec ? "" : " (\(dir))"))
            print("weights     \(ckpt.weightsPath)")
            print("config      \(c.model.rawValue) (\(c.model.displayName)), variants \(c.paligemmaVariant) + \(c.actionExpertVariant), dtype \(c.precision.rawValue)")
            print("            chunk \(c.chunkSize), steps \(c.numInferenceSteps), state/action pad \(c.maxStateDim)/\(c.maxActionDim), tokenizer length \(c.tokenizerMaxLength)")
            print("cameras     \(c.cameraNames.isEmpty ? "(none in config)" : c.cameraNames.joined(separator: ", "))")
            if let s = c.stateDim { print("state dim   \(s)") }
            if let a = c.actionDim { print("action dim  \(a)") }
            print(String(format: "vision      SigLIP %d×%d, width %d, %d layers, %d heads, mlp %d, patch %d → %d tokens/image",
                         d.vision.imageSize, d.vision.imageSize, d.vision.hidden, d.vision.layers, d.vision.heads,
                         d.vision.intermediate, d.vision.patchSize, d.vision.tokensPerImage))
            for (n, g) in [("vlm", d.vlm), ("expert", d.expert)] {
                print(n.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: "Gemma width %d, %d layers, mlp %d, %d heads × %d, %d kv heads, vocab %d",
                             g.width, g.depth, g.mlpDim, g.heads, g.headDim, g.kvHeads, g.vocabSize)
                      + (n == "expert" && c.model == .pi05 ? ", adaptive RMSNorm (time-conditioned)" : ""))
            }
            if c.model == .pi05 { print("state       enters through the prompt (256 bins; see `pi0 prompt`), no state tensor") }
            print("tensors     \(file.infos.count), \(params.formatted()) parameters")
            for (k, v) in byDType.sorted(by: { $0.key < $1.key }) { print("            \(k): \(v.count) tensors, \(v.params.formatted()) parameters") }
            if let problem {
                print("keys        PROBLEM: \(problem)")
            } else if unexpected.isEmpty {
                print("keys        all expected tensors present with the right shapes")
            } else {
                print("keys        all expected tensors present; \(unexpected.count) unexpected:")
                unexpected.forEach { print("            + \($0)") }
            }
            for i in ignored { print("ignored     \(i.key) (\(i.reason))") }
        }
        if problem != nil { throw ExitCode(2) }
    }
}
