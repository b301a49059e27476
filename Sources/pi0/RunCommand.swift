// `pi0 run`: the policy (camera frames + state + prompt → actions in the robot's units) or, with
// --inputs, the raw model (inputs.safetensors → actions.safetensors).
import ArgumentParser
import Foundation
import PI0
import PI0Runtime
import SafeTensors

struct RunCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run π0 or π0.5: a policy observation (--image/--state/--prompt) or preprocessed model inputs (--inputs).",
        discussion: """
        Policy mode: pi0 run --checkpoint ID_OR_DIR --image top=frame.png --image wrist=w.jpg \\
                       --state 0.1,0.2,... --prompt "pick up the cube" [--output actions.json|.npy|.safetensors]
          Images are PNG or JPEG files of any size (resized with padding as LeRobot does); camera names are the
          checkpoint's (`observation.images.top`) or their last part (`top`); the state is in the robot's units
          (π0.5 writes it, normalised and discretised, into the prompt: see `pi0 prompt`).
          Actions are un-normalised, [chunk, action_dim]; printed when --output is omitted (--json: as JSON).
        Raw mode: pi0 run --checkpoint ID_OR_DIR --inputs IN.safetensors --output OUT.safetensors
          IN holds image_0.. [B,3,S,S] float32 in [-1,1], img_mask_0.. [B] bool, lang_tokens [B,L] int64,
          lang_masks [B,L] bool, state [B,max_state_dim] float32 (π0 only) and optionally noise [B,chunk,max_action_dim]
          (else drawn from --seed). OUT receives actions [B,chunk,max_action_dim] float32 and, with
          --dump-intermediates, the intermediate tensors under the fixtures' names.
        Everything checkable from the arguments, config.json and the processor files (output path and format,
        camera names, state length, tokenizer) is checked before the weights are read. --output never replaces
        the checkpoint's files or the inputs; an existing file is replaced only with --force, through a
        temporary file, so an interrupted run leaves the old file or none.
          Real-time chunking (docs/RTC.md): when IN also holds rtc_prev_chunk [B,T_prev,A_prev] float32 (the previous
          chunk's unexecuted actions, normalised), rtc_inference_delay and optionally rtc_execution_horizon (int64),
          every Euler velocity is guided towards that chunk, with the checkpoint's rtc_config (LeRobot's defaults
          without one) unless --rtc-schedule / --rtc-max-guidance-weight say otherwise.
        """)

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String
    @Option(help: "Raw mode: preprocessed input tensors (safetensors).") var inputs: String?
    @Option(name: .customLong("image"), help: "Policy mode: CAMERA=FILE (PNG/JPEG); repeat per camera.") var images: [String] = []
    @Option(parsing: .unconditional, help: "Policy mode: robot state, comma-separated (may start with a minus sign).") var state: String?
    @Option(parsing: .unconditional, help: "Policy mode: the instruction (may start with a minus sign).") var prompt: String?
    @Option(help: "Policy mode: SentencePiece tokenizer.model (default: next to the checkpoint or PaliGemma's in the HF cache; `pi0 download --tokenizer` gets it).")
    var tokenizer: String?
    @Option(help: "Output file: .safetensors (raw or policy), .json or .npy (policy); the format follows the extension.") var output: String?
    @Flag(help: "Replace an existing --output file.") var force = false
    @Flag(help: "Print the result as one JSON object on standard output.") var json = false
    @Option(help: "Euler steps (default: the config's num_inference_steps).") var steps: Int?
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Seed for the noise.") var seed: UInt64 = 0
    @Flag(help: "Raw mode: also write the intermediate tensors.") var dumpIntermediates = false
    @Option(help: "Raw mode, real-time chunking: prefix schedule zeros|ones|linear|exp (default: the checkpoint's rtc_config).")
    var rtcSchedule: String?
    @Option(help: "Raw mode, real-time chunking: maximum guidance weight (default: the checkpoint's rtc_config, else 10).")
    var rtcMaxGuidanceWeight: Float?
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parsePrecision(precision)
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if inputs != nil {
            guard output != nil else { throw ValidationError("raw mode (--inputs) needs --output OUT.safetensors") }
            guard images.isEmpty, state == nil, prompt == nil, tokenizer == nil else {
                throw ValidationError("--inputs (raw mode) cannot be combined with --image, --state, --prompt or --tokenizer")
            }
        } else {
            guard !dumpIntermediates else { throw ValidationError("--dump-intermediates needs raw mode (--inputs)") }
            guard !images.isEmpty else { throw ValidationError("give at least one --image CAMERA=FILE (or --inputs for raw mode)") }
            guard state != nil else { throw ValidationError("--state is required in policy mode (comma-separated robot state)") }
            guard prompt != nil else { throw ValidationError("--prompt is required in policy mode") }
        }
    }

    func run() throws {
        let precisionValue = try parsePrecision(precision)
        if let inputs, let output {
            try runRaw(inputs: inputs, output: output, precision: precisionValue)
        } else {
            try runPolicy(precision: precisionValue)
        }
    }

    func runRaw(inputs: String, output: String, precision: Precision?) throws {
        // Checks before loading: the checkpoint folder, the inputs file, the output path.
        let dir = try CheckpointLocator.resolve(checkpoint)
        try InputFile.check(inputs, option: "--inputs")
        let out = try OutputFile(output, formats: [.safetensors], force: force, protected: [dir, inputs])
        let inputFile = try SafeTensorsFile(path: inputs)
        let ckpt = try Checkpoint(directory: dir)
        let input = try PI0Inputs.load(from: inputFile, dims: ckpt.dims, config: ckpt.config)
        let backend = try backendOptions.make()
        let (model, _) = try Loading.run("weights") { progress in
            ckpt.loadProgress = progress
            return try PI0Model(checkpoint: ckpt, precision: precision, backend: backend)
        }
        let trace = dumpIntermediates ? IntermediateRecorder() : nil
        let timings = StageTimings()
        let display = Loading.inference("inference", steps: steps ?? ckpt.config.numInferenceSteps, timings: timings)
        let actions = try model.sampleActions(input, steps: steps, seed: seed, rtcConfig: try rtcConfig(ckpt.config),
                                              trace: trace, timings: timings)
        display.finish()
        var writer = SafeTensorsWriter()
        try writer.add("actions", floats: actions.array, shape: actions.shape)
        for e in trace?.entries ?? [] where e.name != "actions" {
            switch e.values {
            case .float32(let v): try writer.add(e.name, floats: v, shape: e.shape)
            case .int64(let v): try writer.add(e.name, int64s: v, shape: e.shape)
            case .bool(let v): try writer.add(e.name, bools: v, shape: e.shape)
            }
        }
        try OutputFile.atomicWrite(path: out.path) { tmp in
            try writer.write(to: tmp, metadata: ["producer": "pi0-swift", "precision": model.precision.rawValue])
        }
        note(String(format: "actions %@ written to %@ in %.3f s (%@, %@)", "\(actions.shape)", output, timings.total,
                    model.precision.rawValue, model.backend.name))
        if json {
            try printJSON(["output": output, "shape": actions.shape, "seconds": timings.total,
                           "precision": model.precision.rawValue, "backend": model.backend.name])
        }
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
        guard let state, let prompt else { return }
        let stateValues = try PromptCommand.values(state, option: "--state")
        // Checks before loading: checkpoint and config, cameras, state length, tokenizer, output path, images.
        let plan = try PolicyPreflight(checkpoint: checkpoint, tokenizer: tokenizer)
        var specs: [(camera: String, file: String)] = []
        for spec in images {
            guard let eq = spec.firstIndex(of: "=") else { throw ValidationError("--image takes CAMERA=FILE, got '\(spec)'") }
            let cam = String(spec[..<eq]), file = String(spec[spec.index(after: eq)...])
            do { _ = try plan.resolveCamera(cam) } catch { throw ValidationError("--image \(spec): \(error)") }
            specs.append((cam, file))
        }
        do { try plan.checkState(count: stateValues.count) } catch { throw ValidationError("--\(error)") }
        let tokenizerPath = try plan.requireTokenizer()
        let out = try output.map {
            try OutputFile($0, formats: OutputFile.Format.allCases, force: force,
                           protected: [plan.directory, tokenizerPath] + specs.map(\.file))
        }
        var frames: [String: CameraFrame] = [:]
        for s in specs { try InputFile.check(s.file, option: "--image \(s.camera)") }
        let decoding = Progress("decoding images", total: Int64(specs.count))
        for (i, s) in specs.enumerated() {
            decoding.update(done: Int64(i), detail: s.camera)
            do { frames[s.camera] = try CameraFrame.load(path: s.file) } catch { decoding.finish(); throw error }
        }
        decoding.finish()
        let backend = try backendOptions.make()
        let (policy, _) = try Loading.run("weights") { progress in
            try PI0Policy(checkpoint: plan.directory, tokenizer: tokenizerPath, precision: precision, backend: backend,
                          graph: backendOptions.graph, loadProgress: progress)
        }
        let timings = StageTimings()
        let display = Loading.inference("inference", steps: steps ?? policy.checkpoint.config.numInferenceSteps, timings: timings)
        let chunk = try policy.predictActionChunk(Observation(images: frames, state: stateValues, prompt: prompt), seed: seed,
                                                  steps: steps, timings: timings)
        display.finish()
        note(String(format: "%@: %d×%d actions in %.3f s (%@)", policy.model.kind.displayName, chunk.horizon, chunk.actionDim, timings.total, policy.model.backend.name))
        if let out { try ActionOutput.write(chunk, to: out) }
        if json {
            try printJSON(["actions": (0..<chunk.horizon).map { Array(chunk[$0]).map(Double.init) }, "shape": [chunk.horizon, chunk.actionDim],
                           "seconds": timings.total, "precision": policy.model.precision.rawValue, "backend": policy.model.backend.name]
                          .merging(output.map { ["output": $0] } ?? [:]) { a, _ in a })
        } else if out == nil {
            for t in 0..<chunk.horizon { print(chunk[t].map { String(format: "%.6g", $0) }.joined(separator: " ")) }
        }
    }
}

/// One JSON object on standard output (sorted keys, one line).
func printJSON(_ obj: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
}

/// Inputs must be regular files: a FIFO or device would block the read forever, a directory cannot be read.
enum InputFile {
    static func check(_ path: String, option: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CLIError("\(option) \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw CLIError("\(option) \(path) is not a regular file (a directory, FIFO or device)")
        }
    }
}

/// Writing an action chunk as JSON, NumPy .npy or safetensors, or printing it.
enum ActionOutput {
    /// Writes `chunk` in the format `out` was checked for (temporary file, then rename).
    static func write(_ chunk: ActionChunk, to out: OutputFile) throws {
        let shape = [chunk.horizon, chunk.actionDim]
        switch out.format {
        case .json:
            let rows = (0..<chunk.horizon).map { Array(chunk[$0]).map(Double.init) }
            try out.write(try JSONSerialization.data(withJSONObject: ["actions": rows, "shape": shape] as [String: Any], options: [.sortedKeys]))
        case .npy:
            try out.write(npy(chunk.values, shape: shape))
        case .safetensors:
            var w = SafeTensorsWriter()
            try w.add("actions", floats: chunk.values, shape: shape)
            try OutputFile.atomicWrite(path: out.path) { tmp in try w.write(to: tmp, metadata: ["producer": "pi0-swift"]) }
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
