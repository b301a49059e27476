// `pi0 demo`: the main job on an embedded default that needs no download. Without a scene the model runs
// on synthetic frames; `pi0 demo aloha|libero` runs the policy on bundled simulator frames and draws a
// picture (DemoScene.swift).
import ArgumentParser
import Foundation
import PI0
import PI0Runtime
import PI0Tensor

struct DemoCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run π0 end to end on the bundled small random-weight checkpoint (no download needed).",
        discussion: """
        pi0 demo                 synthetic frames, the raw model, a text summary of the action chunk.
        pi0 demo aloha|libero    real simulator frames bundled with pi0 (gym-aloha AlohaTransferCube; LIBERO
                                 spatial task 0) through the policy, plus a picture of the frames and of every
                                 action dimension over the chunk (default ./pi0_demo_<scene>.png).
        """)

    @Argument(help: "Scene: aloha or libero (bundled simulator frames and a picture); none: synthetic frames.")
    var scene: String?
    @Option(help: "Checkpoint folder (or Hugging Face id in the local cache, with a scene) instead of the bundled random one.")
    var checkpoint: String?
    @Option(help: "Euler steps (default: the config's).") var steps: Int?
    @Option(help: "With a scene: where to write the picture (default ./pi0_demo_<scene>.png).") var output: String?
    @Option(help: "With a scene: which bundled frame (0 = the first).") var frame: Int = 0
    @Option(parsing: .unconditional, help: "With a scene: the instruction (default: the scene's; may start with a minus sign).") var prompt: String?
    @Option(help: "With a scene and --checkpoint: SentencePiece tokenizer.model (default: next to the checkpoint or PaliGemma's in the HF cache).")
    var tokenizer: String?
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        if let scene { return try runScene(scene) }
        guard output == nil, prompt == nil, frame == 0, tokenizer == nil else {
            throw ValidationError("--output, --prompt, --frame and --tokenizer need a scene: pi0 demo aloha|libero")
        }
        let dir = try checkpoint.map(CheckpointLocator.resolve) ?? DemoAssets.checkpointDirectory()
        let bundled = checkpoint == nil
        let clockStart = Date()
        let ckpt = try Checkpoint(directory: dir)
        let backend = try backendOptions.make()
        let (model, _) = try Loading.run("weights", summary: false) { progress in
            ckpt.loadProgress = progress
            return try PI0Model(checkpoint: ckpt, backend: backend)
        }
        let loadSeconds = Date().timeIntervalSince(clockStart)
        let d = ckpt.dims, c = ckpt.config
        print(bundled ? "π0 demo — bundled checkpoint with RANDOM weights: the actions are meaningless, the pipeline is real."
                      : "\(c.model.displayName) demo — checkpoint \(dir)")
        print(String(format: "loaded      %@ in %.2f s (%@, %@ backend)", (dir as NSString).lastPathComponent, loadSeconds,
                     model.precision.rawValue, model.backend.name))
        print("model       SigLIP \(d.vision.imageSize)px/\(d.vision.patchSize) (\(d.vision.layers) layers, width \(d.vision.hidden)) → "
              + "Gemma VLM (\(d.vlm.depth)×\(d.vlm.width)) + action expert (\(d.expert.depth)×\(d.expert.width)), "
              + "chunk \(c.chunkSize), \(steps ?? c.numInferenceSteps) steps")
        let cams = max(c.cameraNames.count, 1)
        let side = d.vision.imageSize
        let images = (0..<cams).map { DemoAssets.syntheticFrame(side: side, variant: $0) }
        let (tokens, mask) = DemoAssets.promptTokens(length: c.tokenizerMaxLength, vocab: d.vlm.vocabSize)
        var state = [Float](repeating: 0, count: c.maxStateDim)
        for i in 0..<min(c.stateDim ?? 14, c.maxStateDim) { state[i] = Float(sin(Double(i) * 0.7)) * 0.5 }
        // π0.5 takes no state tensor (its state is part of the prompt, here stand-in token ids).
        let inputs = PI0Inputs(batch: 1, images: images, imageMasks: [[Bool]](repeating: [true], count: cams),
                               langTokens: [tokens], langMasks: [mask], state: c.model == .pi0 ? state : [], noise: nil)
        print("inputs      \(cams) camera(s) \(c.cameraNames.joined(separator: ", ")) (synthetic frames), "
              + "\(mask.filter { $0 }.count) placeholder prompt token ids (no text prompt), " + (c.model == .pi0 ? "state \(c.stateDim ?? c.maxStateDim)-d" : "no state tensor (π0.5: the state is in the prompt)"))
        let timings = StageTimings()
        let actions = try model.sampleActions(inputs, steps: steps, seed: 7, timings: timings)
        let stepTimes = timings.stages.filter { $0.name.hasPrefix("denoise") }.map(\.seconds)
        print(String(format: "timings     vision %.1f ms · prefix %.1f ms · denoise %d × %.1f ms · total %.1f ms",
                     1000 * (timings.seconds("vision") ?? 0), 1000 * (timings.seconds("prefix") ?? 0), stepTimes.count,
                     1000 * stepTimes.reduce(0, +) / Double(max(stepTimes.count, 1)), 1000 * timings.total))
        ActionChunkView.print(actions: actions.array, horizon: c.chunkSize, width: c.maxActionDim,
                              shownDims: c.actionDim ?? min(14, c.maxActionDim))
    }
}

enum DemoAssets {
    static func checkpointDirectory() throws -> String {
        guard let url = Bundle.module.url(forResource: "DemoCheckpoint", withExtension: nil) else {
            throw CLIError("the bundled demo checkpoint is missing next to the executable; pass --checkpoint DIR")
        }
        return url.path
    }

    /// A simple table-top scene in [-1, 1], CHW: a grey table, a red cube and a blue bowl.
    static func syntheticFrame(side: Int, variant: Int) -> [Float] {
        var img = [Float](repeating: 0, count: 3 * side * side)
        for y in 0..<side { for x in 0..<side {
            let u = Double(x) / Double(side), v = Double(y) / Double(side)
            var rgb = v > 0.45 ? (0.55, 0.45, 0.35) : (0.75, 0.8, 0.85)        // table / wall
            let cube = (0.3 + 0.1 * Double(variant), 0.6)
            if abs(u - cube.0) < 0.07 && abs(v - cube.1) < 0.07 { rgb = (0.85, 0.1, 0.1) }
            if (u - 0.7) * (u - 0.7) + (v - 0.65) * (v - 0.65) < 0.012 { rgb = (0.1, 0.2, 0.85) }
            let vals = [rgb.0, rgb.1, rgb.2]
            for ch in 0..<3 { img[ch * side * side + y * side + x] = Float(vals[ch] * 2 - 1) }
        } }
        return img
    }

    /// Placeholder prompt tokens (BOS, ids, newline 108, padding) — the random model has no tokenizer.
    static func promptTokens(length: Int, vocab: Int) -> ([Int], [Bool]) {
        let ids = [2, 439, 871, 419, 501, 621, 951, 166, 442, 748, 419, 668, 587, 108].map { $0 % vocab }
        let n = min(ids.count, length)
        return (Array(ids.prefix(n)) + [Int](repeating: 0, count: length - n),
                [Bool](repeating: true, count: n) + [Bool](repeating: false, count: length - n))
    }
}

/// A compact text view of an action chunk: per dimension, a sparkline over the horizon and the range.
enum ActionChunkView {
    static func print(actions: [Float], horizon: Int, width: Int, shownDims: Int) {
        let bars = Array("▁▂▃▄▅▆▇█")
        Swift.print("actions     [\(horizon) steps × \(width) dims], first \(shownDims) dims shown (sparkline over the chunk, min … max):")
        for dim in 0..<shownDims {
            let series = (0..<horizon).map { actions[$0 * width + dim] }
            let lo = series.min()!, hi = series.max()!
            let line = String(series.map { v in bars[hi > lo ? min(7, Int((v - lo) / (hi - lo) * 7.999)) : 3] })
            Swift.print(String(format: "  dim %2d  %@  %+.3f … %+.3f", dim, line, lo, hi))
        }
        let first = (0..<min(shownDims, 8)).map { String(format: "%+.3f", actions[$0]) }.joined(separator: " ")
        Swift.print("  first action: \(first)\(shownDims > 8 ? " …" : "")")
    }
}
