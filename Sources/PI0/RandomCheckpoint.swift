// Writes a random-weight π0 or π0.5 checkpoint with the real key names and shapes, streamed to disk with
// bounded memory (a full-size bf16 checkpoint is ~7 GB), so anyone can benchmark without a download.
// Values: linear weights uniform in ±1/√fan_in, biases ±0.02, norm weights ±0.1 (Gemma uses 1+w;
// SigLIP LayerNorm weights 1 ± 0.1), π0.5 adaRMS dense weights ±2/√fan_in (LeRobot zero-initialises them,
// which would make every gate ≈ 0), embeddings ±0.02·√3. The actions are meaningless.
import Foundation
import PI0Tensor
import SafeTensors

public enum RandomCheckpoint {
    /// A LeRobot-style config.json for the dimensions' variant names, with three ALOHA-style cameras.
    public static func configJSON(model: ModelKind = .pi0, dtype: Precision, imageSize: Int, stateDim: Int = 14,
                                  actionDim: Int = 14) -> [String: Any] {
        let defaults = PI0Config(model: model)
        let cam: [String: Any] = ["type": "VISUAL", "shape": [3, imageSize, imageSize]]
        return [
            "type": model.rawValue, "n_obs_steps": 1,
            "input_features": ["observation.images.cam_high": cam, "observation.images.cam_left_wrist": cam,
                               "observation.images.cam_right_wrist": cam,
                               "observation.state": ["type": "STATE", "shape": [stateDim]]],
            "output_features": ["action": ["type": "ACTION", "shape": [actionDim]]],
            "device": "cpu", "paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m",
            "dtype": dtype.rawValue, "chunk_size": 50, "n_action_steps": 50, "max_state_dim": 32, "max_action_dim": 32,
            "num_inference_steps": 10, "min_period": 0.004, "max_period": 4.0, "image_resolution": [imageSize, imageSize],
            "empty_cameras": 0, "tokenizer_max_length": defaults.tokenizerMaxLength,
            "normalization_mapping": defaults.normalizationMapping,
        ]
    }

    /// Writes `model.safetensors` and `config.json` (and `pi0_dims.json` / `pi05_dims.json` when
    /// `writeDims`) into `directory`.
    public static func write(to directory: String, dims: ModelDims, model: ModelKind = .pi0, dtype: Precision, seed: UInt64 = 1,
                             writeDims: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tensors = CheckpointLayout.tensors(dims: dims, model: model)
        let st: SafeTensorsDType = dtype == .bfloat16 ? .BF16 : .F32
        let path = (directory as NSString).appendingPathComponent("model.safetensors")
        let writer = try SafeTensorsStreamWriter(path: path, entries: tensors.map { ($0.name, st, $0.shape) },
                                                 metadata: ["format": "pt", "producer": "pi0-swift write-random-checkpoint"])
        var rng = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let chunk = 1 << 20
        var f32 = [Float](repeating: 0, count: chunk)
        var b16 = [UInt16](repeating: 0, count: chunk)
        let total = tensors.reduce(0) { $0 + $1.count }
        var done = 0
        for t in tensors {
            let (scale, offset): (Float, Float) = {
                switch t.role {
                case .linear(let fanIn): return (1 / Float(fanIn).squareRoot(), 0)
                case .adaptiveNorm(let fanIn): return (2 / Float(fanIn).squareRoot(), 0)
                case .bias: return (0.02, 0)
                case .norm: return (0.1, t.name.contains("vision_tower") ? 1 : 0)
                case .embedding: return (0.0346, 0)
                }
            }()
            var left = t.count
            while left > 0 {
                let n = min(left, chunk)
                for i in 0..<n {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17            // xorshift64
                    let u = Float(rng >> 40) * (1 / 16_777_216.0) * 2 - 1          // uniform [-1, 1)
                    f32[i] = offset + scale * u
                }
                if st == .BF16 {
                    for i in 0..<n { b16[i] = BFloat16.bits(f32[i]) }
                    try b16.withUnsafeBytes { try writer.write(t.name, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
                } else {
                    try f32.withUnsafeBytes { try writer.write(t.name, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<(4 * n)])) }
                }
                left -= n; done += n
                progress?(done, total)
            }
        }
        try writer.finish()
        let config = configJSON(model: model, dtype: dtype, imageSize: dims.vision.imageSize)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("config.json")))
        if writeDims { try writeDimsFile(dims, to: (directory as NSString).appendingPathComponent(ModelDims.fileName(for: model))) }
    }

    /// `pi0_dims.json` in the fixtures' format.
    public static func writeDimsFile(_ d: ModelDims, to path: String) throws {
        func gemma(_ g: GemmaDims) -> [String: Any] {
            ["width": g.width, "depth": g.depth, "mlp_dim": g.mlpDim, "num_heads": g.heads, "num_kv_heads": g.kvHeads,
             "head_dim": g.headDim, "vocab_size": g.vocabSize, "rms_norm_eps": Double(g.rmsNormEps), "rope_theta": Double(g.ropeTheta)]
        }
        let v = d.vision
        let obj: [String: Any] = [
            "vlm": gemma(d.vlm), "expert": gemma(d.expert),
            "vision": ["hidden_size": v.hidden, "num_layers": v.layers, "num_heads": v.heads, "intermediate_size": v.intermediate,
                       "patch_size": v.patchSize, "image_size": v.imageSize, "layer_norm_eps": Double(v.layerNormEps)],
        ]
        try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
    }
}
