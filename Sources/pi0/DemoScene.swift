// `pi0 demo aloha|libero`: the policy on real simulator frames bundled in Resources/SampleFrames
// (rendered by tools/sim/render_frames.py; each scene's metadata.json says how), with a picture.
import ArgumentParser
import Foundation
import ImageIO
import PI0
import PI0Runtime

/// One bundled scene: its metadata.json and where its frames lie.
struct DemoScene {
    struct Meta: Decodable {
        struct Frame: Decodable { var step: Int; var state: [Float]; var images: [String: String] }
        var scene: String
        var env_id: String
        var cameras: [String]
        var camera_roles: [String: String]
        var resize: String
        var state_names: [String]
        var action_names: [String]
        var prompt: String
        var frames: [Frame]
    }

    static let names = ["aloha", "libero"]
    let directory: String
    let meta: Meta

    /// Short checkpoint camera names each openpi camera role may go by, most specific first
    /// (openpi's ALOHA and LIBERO keys, the simulators' names, LeRobot datasets' and π0 base's names).
    static let aliases: [String: [String]] = [
        "cam_high": ["cam_high", "top", "image", "base_0_rgb", "agentview", "front"],
        "cam_left_wrist": ["cam_left_wrist", "left_wrist", "left_wrist_0_rgb", "wrist", "wrist_image", "eye_in_hand"],
        "cam_right_wrist": ["cam_right_wrist", "right_wrist", "right_wrist_0_rgb"],
        "image": ["image", "agentview", "base_0_rgb", "top", "cam_high", "front"],
        "wrist_image": ["wrist_image", "image2", "eye_in_hand", "wrist", "left_wrist_0_rgb", "cam_left_wrist", "left_wrist"],
    ]

    static func load(_ name: String) throws -> DemoScene {
        guard names.contains(name) else {
            throw ValidationError("unknown scene '\(name)'; scenes: \(names.joined(separator: ", ")) (or none for synthetic frames)")
        }
        guard let root = Bundle.module.url(forResource: "SampleFrames", withExtension: nil) else {
            throw CLIError("the bundled sample frames are missing next to the executable (Resources/SampleFrames)")
        }
        let dir = root.appendingPathComponent(name).path
        let metaPath = dir + "/metadata.json"
        guard let data = FileManager.default.contents(atPath: metaPath) else { throw CLIError("\(metaPath): cannot read the scene metadata") }
        let meta: Meta
        do { meta = try JSONDecoder().decode(Meta.self, from: data) } catch {
            throw CLIError("\(metaPath): malformed scene metadata: \(error)")
        }
        guard !meta.frames.isEmpty, !meta.cameras.isEmpty else { throw CLIError("\(metaPath): no frames or cameras listed") }
        return DemoScene(directory: dir, meta: meta)
    }

    func image(frame: Int, camera: String) throws -> RGBImage {
        guard let file = meta.frames[frame].images[camera] else {
            throw CLIError("\(directory)/metadata.json: frame \(frame) has no image for camera '\(camera)'")
        }
        return try ImageDecoder.decode(path: directory + "/" + file)
    }

    /// Scene camera → checkpoint camera (full name). By name first (the camera's role and its aliases against
    /// the checkpoint's short names), then the cameras still unmatched in order onto the checkpoint's remaining
    /// cameras — the bundled checkpoint's `top, wrist` get `top` and `left_wrist` for ALOHA. Cameras left over
    /// are not used.
    func cameraMapping(checkpointCameras all: [String]) -> [(scene: String, checkpoint: String)] {
        let real = all.filter { !$0.contains("empty_camera_") }
        let short = { (n: String) in n.split(separator: ".").last.map(String.init) ?? n }
        var used = Set<String>(), result: [String: String] = [:]
        for cam in meta.cameras {
            let candidates = Self.aliases[meta.camera_roles[cam] ?? cam] ?? [cam]
            for alias in candidates + [cam] {
                if let m = real.first(where: { short($0) == alias && !used.contains($0) }) { result[cam] = m; used.insert(m); break }
            }
        }
        var rest = real.filter { !used.contains($0) }[...]
        for cam in meta.cameras where result[cam] == nil {
            guard let m = rest.popFirst() else { break }
            result[cam] = m
        }
        return meta.cameras.compactMap { cam in result[cam].map { (cam, $0) } }
    }
}

extension DemoCommand {
    func runScene(_ name: String) throws {
        let scene = try DemoScene.load(name)
        guard frame >= 0, frame < scene.meta.frames.count else {
            throw ValidationError("--frame must be 0…\(scene.meta.frames.count - 1) for scene \(name)")
        }
        let bundled = checkpoint == nil
        let path = output ?? FileManager.default.currentDirectoryPath + "/pi0_demo_\(name).png"
        try OutputFile.checkFolder(of: path, option: "--output")
        // Checks before loading: the checkpoint's config and, for a real checkpoint, its tokenizer (placeholder
        // ids would silently turn the prompt shown in the picture into noise).
        let plan = try PolicyPreflight(checkpoint: try checkpoint ?? DemoAssets.checkpointDirectory(), tokenizer: tokenizer)
        let dir = plan.directory
        if !bundled { _ = try plan.requireTokenizer() }
        let clockStart = Date()
        let backend = try backendOptions.make()
        let (policy, _) = try Loading.run("weights", summary: false) { progress in
            try PI0Policy(checkpoint: dir, tokenizer: plan.tokenizerPath, backend: backend, loadProgress: progress)
        }
        let loadSeconds = Date().timeIntervalSince(clockStart)
        let ckptName = bundled ? "bundled DemoCheckpoint" : (dir as NSString).lastPathComponent
        let meta = scene.meta, f = meta.frames[frame]
        print(bundled ? "π0 demo \(name) — bundled checkpoint with RANDOM weights: the actions are meaningless, the pipeline is real."
                      : "\(policy.checkpoint.config.model.displayName) demo \(name) — checkpoint \(dir)")
        print(String(format: "loaded      %@ in %.2f s (%@, %@ backend)", ckptName, loadSeconds,
                     policy.model.precision.rawValue, policy.model.backend.name))
        print("scene       \(meta.env_id), step \(f.step) (\(scene.meta.frames.count) bundled frames; --frame picks one)")

        // Cameras.
        let mapping = scene.cameraMapping(checkpointCameras: policy.cameraNames)
        var images: [String: CameraFrame] = [:], shown: [DemoPicture.Frame] = []
        for cam in meta.cameras {
            let img = try scene.image(frame: frame, camera: cam)
            let target = mapping.first { $0.scene == cam }?.checkpoint
            if let target { images[target] = CameraFrame(img) }
            let short = target.map { $0.split(separator: ".").last.map(String.init) ?? $0 }
            shown.append(.init(label: "\(cam) → " + (short ?? "not used"), image: img))
        }
        let mapText = mapping.map { "\($0.scene)→\($0.checkpoint.split(separator: ".").last ?? "")" }.joined(separator: ", ")
        let unused = meta.cameras.filter { c in !mapping.contains { $0.scene == c } }
        print("cameras     \(mapText)" + (unused.isEmpty ? "" : "; not used (checkpoint has no camera for them): \(unused.joined(separator: ", "))"))

        // State: pad with zeros or cut to the checkpoint's dimension.
        var state = f.state
        var stateNote = "state \(state.count)-d"
        if state.count != policy.stateDim {
            stateNote += state.count < policy.stateDim ? " zero-padded to \(policy.stateDim)" : " cut to the checkpoint's \(policy.stateDim)"
            state = Array((state + [Float](repeating: 0, count: max(0, policy.stateDim - state.count))).prefix(policy.stateDim))
        }
        // Prompt: the checkpoint's tokenizer when it has one, else placeholder ids.
        var obs = Observation(images: images, state: state, prompt: prompt ?? meta.prompt)
        var promptNote = "prompt \"\(obs.prompt)\""
        if policy.tokenizer == nil {   // only the bundled random checkpoint may run without one
            let (ids, mask) = DemoAssets.promptTokens(length: policy.checkpoint.config.tokenizerMaxLength, vocab: policy.checkpoint.dims.vlm.vocabSize)
            let n = mask.filter { $0 }.count
            obs.tokens = (Array(ids.prefix(n)), Array(mask.prefix(n)))
            promptNote += " (no tokenizer: placeholder token ids)"
        } else if bundled {
            promptNote += " (demo tokenizer)"
        }
        print("inputs      \(images.count) camera(s), \(stateNote), \(promptNote)")

        let timings = StageTimings()
        let chunk = try policy.predictActionChunk(obs, seed: 7, steps: steps, timings: timings)
        print(String(format: "timings     total %.1f ms (%d Euler steps)", 1000 * timings.total, steps ?? policy.checkpoint.config.numInferenceSteps))
        let robotDims = min(meta.action_names.count, chunk.actionDim)
        if chunk.actionDim != meta.action_names.count {
            print("note        the checkpoint predicts \(chunk.actionDim) action dims; the \(name) robot takes \(meta.action_names.count): "
                  + (chunk.actionDim > robotDims ? "showing the first \(robotDims)" : "showing all \(robotDims)"))
        }
        ActionChunkView.print(actions: chunk.values, horizon: chunk.horizon, width: chunk.actionDim, shownDims: robotDims)

        // Picture.
        let reference: [Float?] = name == "aloha" ? (0..<robotDims).map { $0 < f.state.count ? f.state[$0] : nil } : []
        let picture = DemoPicture(
            title: "π0 demo: \(name) — \(meta.env_id), step \(f.step)",
            warning: bundled ? "\(ckptName): RANDOM WEIGHTS — actions meaningless" : nil,
            frames: shown,
            info: [
                "checkpoint  \(ckptName)" + (bundled ? "" : " (\(dir))"),
                "prompt      \"\(obs.prompt)\"",
                "cameras     " + mapText,
                "state       " + stateSummary(f.state),
                "resize      " + (meta.resize.components(separatedBy: " (").first ?? meta.resize),
                String(format: "inference   %.0f ms, %@ backend, seed 7", 1000 * timings.total, policy.model.backend.name),
                "actions     \(chunk.horizon) steps × \(chunk.actionDim) dims" + (chunk.actionDim > robotDims ? ", first \(robotDims) plotted" : ""),
            ],
            actions: chunk.values, horizon: chunk.horizon, width: chunk.actionDim,
            dimNames: (0..<robotDims).map { meta.action_names[$0] },
            reference: reference, referenceLabel: "joint state at this frame (actions are absolute joint targets)")
        let png = picture.render().png()
        do { try OutputFile.atomicWrite(path: path) { tmp in try Data(png).write(to: URL(fileURLWithPath: tmp)) } } catch {
            throw CLIError("\(path): cannot write the picture: \(error.localizedDescription)")
        }
        print("picture     \(path)")
    }

    private func stateSummary(_ s: [Float]) -> String {
        let shown = s.prefix(7).map { v in
            let t = String(format: "%+.2f", v)
            return t == "-0.00" ? "+0.00" : t
        }.joined(separator: " ")
        return "\(s.count)-d [\(shown)\(s.count > 7 ? " …" : "")]"
    }
}
