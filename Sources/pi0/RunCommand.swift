// `pi0 run`: the policy (camera frames + state + prompt → actions in the robot's units) or, with
// --inputs, the raw model (inputs.safetensors → actions.safetensors).
import ArgumentParser
import Foundation
import PI0
import PI0Runtime
import SafeTensors

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run π0: a policy observation (--image/--state/--prompt) or preprocessed model inputs (--inputs).",
        discussion: """
        Policy mode: pi0 run --checkpoint ID_OR_DIR --image top=frame.png --image wrist=w.jpg \\
                       --state 0.1,0.2,... --prompt "pick up the cube" [--output actions.json|.npy|.safetensors]
          Images are PNG or JPEG files of any size (resized with padding as LeRobot does); camera names are the
          checkpoint's (`observation.images.top`) or their last part (`top`); the state is in the robot's units.
          Actions are un-normalised, [chunk, action_dim]; printed when --output is omitted.
        Raw mode: pi0 run --checkpoint DIR --inputs IN.safetensors --output OUT.safetensors
          IN holds image_0.. [B,3,S,S] float32 in [-1,1], img_mask_0.. [B] bool, lang_tokens [B,L] int64,
          lang_masks [B,L] bool, state [B,max_state_dim] float32 and optionally noise [B,chunk,max_action_dim]
          (else drawn from --seed). OUT receives actions [B,chunk,max_action_dim] float32 and, with
          --dump-intermediates, the intermediate tensors under the fixtures' names.
          Real-time chunking (docs/RTC.md): when IN also holds rtc_prev_chunk [B,T_prev,A_prev] float32 (the previous
          chunk's unexecuted actions, normalised), rtc_inference_delay and optionally rtc_execution_horizon (int64),
          every Euler velocity is guided towards that chunk, with the checkpoint's rtc_config (LeRobot's defaults
          without one) unless --rtc-schedule / --rtc-max-guidance-weight say otherwise.
        """)

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String
    @Option(help: "Raw mode: preprocessed input tensors (safetensors).") var inputs: String?
    @Option(name: .customLong("image"), help: "Policy mode: CAMERA=FILE (PNG/JPEG); repeat per camera.") var images: [String] = []
    @Option(parsing: .unconditional, help: "Policy mode: robot state, comma-separated (may start with a minus sign).") var state: String?
    @Option(help: "Policy mode: the instruction.") var prompt: String?
    @Option(help: "Policy mode: SentencePiece tokenizer.model (default: next to the checkpoint or PaliGemma's in the HF cache).")
    var tokenizer: String?
    @Option(help: "Output file: .safetensors (raw or policy), .json or .npy (policy).") var output: String?
    @Option(help: "Euler steps (default: the config's num_inference_steps).") var steps: Int?
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Seed for the noise.") var seed: UInt64 = 0
    @Flag(help: "Raw mode: also write the intermediate tensors.") var dumpIntermediates = false
    @Option(help: "Raw mode, real-time chunking: prefix schedule zeros|ones|linear|exp (default: the checkpoint's rtc_config).")
    var rtcSchedule: String?
    @Option(help: "Raw mode, real-time chunking: maximum guidance weight (default: the checkpoint's rtc_config, else 10).")
    var rtcMaxGuidanceWeight: Float?
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let precisionValue = try precision.map { p -> Precision in
            guard let v = Precision(rawValue: p) else { throw ValidationError("--precision must be float32 or bfloat16, got '\(p)'") }
            return v
        }
        if let inputs {
            guard let output else { throw ValidationError("raw mode (--inputs) needs --output OUT.safetensors") }
            try runRaw(inputs: inputs, output: output, precision: precisionValue)
        } else {
            try runPolicy(precision: precisionValue)
        }
    }

    func runRaw(inputs: String, output: String, precision: Precision?) throws {
        let ckpt = try Checkpoint(directory: try CheckpointLocator.resolve(checkpoint))
        let model = try PI0Model(checkpoint: ckpt, precision: precision, backend: try backendOptions.make())
        let input = try PI0Inputs.load(from: try SafeTensorsFile(path: inputs), dims: ckpt.dims, config: ckpt.config)
        let trace = dumpIntermediates ? IntermediateRecorder() : nil
        let timings = StageTimings()
        let actions = try model.sampleActions(input, steps: steps, seed: seed, rtcConfig: try rtcConfig(ckpt.config),
                                              trace: trace, timings: timings)
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

    /// The checkpoint's rtc_config (or LeRobot's defaults) with the command line's overrides.
    func rtcConfig(_ config: PI0Config) throws -> RTCConfig? {
        guard rtcSchedule != nil || rtcMaxGuidanceWeight != nil else { return nil }
        var c = config.rtc ?? RTCConfig()
        if let s = rtcSchedule {
            guard let v = RTCSchedule(rawValue: s.uppercased()) else {
                throw ValidationError("--rtc-schedule must be zeros, ones, linear or exp, got '\(s)'")
            }
            c.schedule = v
        }
        if let g = rtcMaxGuidanceWeight {
            guard g.isFinite, g > 0 else { throw ValidationError("--rtc-max-guidance-weight must be a positive number, got \(g)") }
            c.maxGuidanceWeight = g
        }
        return c
    }

    func runPolicy(precision: Precision?) throws {
        guard !images.isEmpty else { throw ValidationError("give at least one --image CAMERA=FILE (or --inputs for raw mode)") }
        guard let state else { throw ValidationError("--state is required in policy mode (comma-separated robot state)") }
        guard let prompt else { throw ValidationError("--prompt is required in policy mode") }
        let stateValues = try state.split(separator: ",").enumerated().map { i, s -> Float in
            guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--state value \(i) '\(s)' is not a number") }
            return v
        }
        var frames: [String: CameraFrame] = [:]
        for spec in images {
            guard let eq = spec.firstIndex(of: "=") else { throw ValidationError("--image takes CAMERA=FILE, got '\(spec)'") }
            frames[String(spec[..<eq])] = try CameraFrame.load(path: String(spec[spec.index(after: eq)...]))
        }
        let policy = try PI0Policy(checkpoint: checkpoint, tokenizer: tokenizer, precision: precision, backend: try backendOptions.make())
        let timings = StageTimings()
        let chunk = try policy.predictActionChunk(Observation(images: frames, state: stateValues, prompt: prompt), seed: seed,
                                                  steps: steps, timings: timings)
        note(String(format: "π0: %d×%d actions in %.3f s (%@)", chunk.horizon, chunk.actionDim, timings.total, policy.model.backend.name))
        try ActionOutput.write(chunk, to: output)
    }
}

/// Writing an action chunk as JSON, NumPy .npy or safetensors, or printing it.
enum ActionOutput {
    static func write(_ chunk: ActionChunk, to path: String?) throws {
        guard let path else {
            for t in 0..<chunk.horizon { print(chunk[t].map { String(format: "%.6g", $0) }.joined(separator: " ")) }
            return
        }
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "json":
            let rows = (0..<chunk.horizon).map { Array(chunk[$0]).map(Double.init) }
            let obj: [String: Any] = ["actions": rows, "shape": [chunk.horizon, chunk.actionDim]]
            try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]).write(to: url)
        case "npy":
            try npy(chunk.values, shape: [chunk.horizon, chunk.actionDim]).write(to: url)
        case "safetensors":
            var w = SafeTensorsWriter()
            try w.add("actions", floats: chunk.values, shape: [chunk.horizon, chunk.actionDim])
            try w.write(to: path, metadata: ["producer": "pi0-swift"])
        default:
            throw ValidationError("--output must end in .json, .npy or .safetensors, got '\(path)'")
        }
    }

    /// NumPy format 1.0: magic, header dict padded with spaces to a multiple of 64 bytes, little-endian float32 data.
    static func npy(_ values: [Float], shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        d.append(contentsOf: Array(header.utf8))
        values.withUnsafeBytes { d.append(contentsOf: $0) }
        return d
    }
}
