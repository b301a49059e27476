// `pi0 run`: the raw model interface (inputs.safetensors → actions.safetensors).
import ArgumentParser
import Foundation
import PI0
import SafeTensors

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run π0 on preprocessed inputs (the fixtures' inputs.safetensors layout) and write the actions.",
        discussion: """
        INPUTS holds image_0.. [B,3,S,S] float32 in [-1,1], img_mask_0.. [B] bool, lang_tokens [B,L] int64,
        lang_masks [B,L] bool, state [B,max_state_dim] float32 and optionally noise [B,chunk,max_action_dim]
        (otherwise drawn from --seed). OUT receives actions [B,chunk,max_action_dim] float32 and, with
        --dump-intermediates, the intermediate tensors under the fixtures' names.
        """)

    @Option(help: "Checkpoint folder (config.json + model.safetensors).") var checkpoint: String
    @Option(help: "Input tensors (safetensors).") var inputs: String
    @Option(help: "Where to write the actions (safetensors).") var output: String
    @Option(help: "Euler steps (default: the config's num_inference_steps).") var steps: Int?
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Seed for the noise when INPUTS has none.") var seed: UInt64 = 0
    @Flag(help: "Also write the intermediate tensors.") var dumpIntermediates = false
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let precisionValue: Precision?
        if let p = precision {
            guard let v = Precision(rawValue: p) else { throw ValidationError("--precision must be float32 or bfloat16, got '\(p)'") }
            precisionValue = v
        } else { precisionValue = nil }
        let ckpt = try Checkpoint(directory: checkpoint)
        let model = try PI0Model(checkpoint: ckpt, precision: precisionValue, backend: try backendOptions.make())
        let input = try PI0Inputs.load(from: try SafeTensorsFile(path: inputs), dims: ckpt.dims, config: ckpt.config)
        let trace = dumpIntermediates ? IntermediateRecorder() : nil
        let timings = StageTimings()
        let actions = try model.sampleActions(input, steps: steps, seed: seed, trace: trace, timings: timings)
        var writer = SafeTensorsWriter()
        try writer.add("actions", floats: actions.array, shape: actions.shape)
        for e in trace?.entries ?? [] where e.name != "actions" {
            switch e.values {
            case .float32(let v): try writer.add(e.name, floats: v, shape: e.shape)
            case .int64(let v): try writer.add(e.name, int64s: v, shape: e.shape)
            case .bool(let v): try writer.add(e.name, bools: v, shape: e.shape)
            }
        }
        try writer.write(to: output, metadata: ["producer": "pi0-swift", "precision": model.precision.rawValue])
        note(String(format: "actions %@ written to %@ in %.3f s (%@, %@)", "\(actions.shape)", output, timings.total,
                    model.precision.rawValue, model.backend.name))
    }
}
