// `pi0 inspect DIR`: what a checkpoint holds, checked against the model without running it.
import ArgumentParser
import Foundation
import PI0
import SafeTensors

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Describe a checkpoint: architecture, dtypes, parameters, missing/extra keys.")

    @Argument(help: "Checkpoint folder.") var directory: String

    func run() throws {
        let ckpt = try Checkpoint(directory: directory)
        let c = ckpt.config, d = ckpt.dims
        print("checkpoint  \(directory)")
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
        let file = ckpt.safetensors
        var byDType: [String: (count: Int, params: Int)] = [:]
        var params = 0
        for info in file.infos {
            byDType[info.dtype.rawValue, default: (0, 0)].count += 1
            byDType[info.dtype.rawValue, default: (0, 0)].params += info.elementCount
            params += info.elementCount
        }
        print("tensors     \(file.infos.count), \(params.formatted()) parameters")
        for (k, v) in byDType.sorted(by: { $0.key < $1.key }) { print("            \(k): \(v.count) tensors, \(v.params.formatted()) parameters") }
        // Build the model with a shape-only backend: every expected key and shape is checked.
        do {
            _ = try PI0Model(checkpoint: ckpt, backend: DryRunBackend())
            print("keys        all expected tensors present with the right shapes")
        } catch let e as CheckpointError {
            if case .unexpectedTensors(let keys, _) = e {
                print("keys        all expected tensors present; \(keys.count) unexpected:")
                keys.forEach { print("            + \($0)") }
            } else {
                print("keys        PROBLEM: \(e)")
                throw ExitCode(2)
            }
        }
        for i in ckpt.unusedKeys().ignored { print("ignored     \(i.key) (\(i.reason))") }
    }
}
