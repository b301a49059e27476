// π0.5 checkpoints: the model kind comes from config.json (never the folder name), malformed π0.5
// checkpoints get errors naming the key, and the adaRMS norm matches LeRobot's component outputs.
import Foundation
import XCTest
@testable import PI0
import PI0Tensor
import SafeTensors

final class PI05CheckpointTests: XCTestCase {
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "pi05-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// Copies fixture case `source` into `tmp/folder`, rewriting its weights' keys with `rename` (nil
    /// drops the tensor), replacing shapes (`reshape`, values repeated to fill) and appending `extra`.
    func makeCase(_ source: String, folder: String = "case", rename: (String) -> String? = { $0 },
                  reshape: [String: [Int]] = [:], extra: [(String, [Float], [Int])] = [],
                  config: ((inout [String: Any]) -> Void)? = nil) throws -> String {
        let src = Fixtures.path(source), dir = tmp + "/" + folder
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = try SafeTensorsFile(path: src + "/model.safetensors")
        var w = SafeTensorsWriter()
        for info in file.infos {
            guard let name = rename(info.name) else { continue }
            if let shape = reshape[info.name] {
                let floats = try file.floats(info.name), n = shape.reduce(1, *)
                try w.add(name, floats: Array(repeatElement(floats, count: n / floats.count + 1).joined().prefix(n)), shape: shape)
            } else {
                try w.add(name, dtype: info.dtype, shape: info.shape, bytes: Array(try file.rawBytes(info.name)))
            }
        }
        for (n, v, s) in extra { try w.add(n, floats: v, shape: s) }
        try w.write(to: dir + "/model.safetensors")
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/config.json"))) as! [String: Any]
        config?(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/config.json"))
        for dims in ["pi0_dims.json", "pi05_dims.json"] where FileManager.default.fileExists(atPath: src + "/" + dims) {
            try FileManager.default.copyItem(atPath: src + "/" + dims, toPath: dir + "/" + dims)
        }
        return dir
    }

    func load(_ dir: String) throws -> PI0Model {
        try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: DryRunBackend())
    }

    func testModelKindComesFromConfigJSONNotTheFolderName() throws {
        // A π0.5 checkpoint in a folder called "pi0" and a π0 one in a folder called "pi05".
        let pi05 = try makeCase("pi05_tiny_1cam", folder: "pi0")
        let pi0 = try makeCase("tiny_1cam", folder: "pi05")
        XCTAssertEqual(try Checkpoint(directory: pi05).config.model, .pi05)
        XCTAssertEqual(try load(pi05).kind, .pi05)
        XCTAssertEqual(try Checkpoint(directory: pi0).config.model, .pi0)
        XCTAssertEqual(try load(pi0).kind, .pi0)
        // π0.5's own defaults when the config leaves them out.
        let defaults = try makeCase("pi05_tiny_1cam", folder: "defaults", config: {
            $0.removeValue(forKey: "tokenizer_max_length"); $0.removeValue(forKey: "normalization_mapping")
        })
        let c = try Checkpoint(directory: defaults).config
        XCTAssertEqual(c.tokenizerMaxLength, 200)
        XCTAssertEqual(c.normalizationMapping["STATE"], "QUANTILES")
        // A π0.5 folder whose dims file carries π0's name still loads with its own dimensions.
        let renamed = try makeCase("pi05_tiny_1cam", folder: "renamed")
        try FileManager.default.moveItem(atPath: renamed + "/pi05_dims.json", toPath: renamed + "/pi0_dims.json")
        XCTAssertEqual(try Checkpoint(directory: renamed).dims, try Checkpoint(directory: pi05).dims)
        XCTAssertEqual(try load(renamed).kind, .pi05)
        // An unknown policy type is refused by name.
        let other = try makeCase("pi05_tiny_1cam", folder: "other", config: { $0["type"] = "pi0_fast" })
        XCTAssertThrowsError(try Checkpoint(directory: other)) { e in
            guard case .unsupported(_, "type", _)? = e as? PI0ConfigError else { return XCTFail("\(e)") }
        }
    }

    func testMissingDenseLayerIsNamed() throws {
        let key = "model.paligemma_with_expert.gemma_expert.model.layers.1.post_attention_layernorm.dense.weight"
        let dir = try makeCase("pi05_tiny_1cam", rename: { $0 == key ? nil : $0 })
        XCTAssertThrowsError(try load(dir)) { e in
            XCTAssertEqual(e as? CheckpointError, .missingTensor(key: key, file: dir + "/model.safetensors"))
        }
        let finalKey = "model.paligemma_with_expert.gemma_expert.model.norm.dense.bias"
        let dir2 = try makeCase("pi05_tiny_1cam", folder: "b", rename: { $0 == finalKey ? nil : $0 })
        XCTAssertThrowsError(try load(dir2)) { e in
            XCTAssertEqual(e as? CheckpointError, .missingTensor(key: finalKey, file: dir2 + "/model.safetensors"))
        }
    }

    func testPI0TensorInPI05CheckpointIsNamed() throws {
        let dir = try makeCase("pi05_tiny_1cam", extra: [("model.state_proj.weight", [Float](repeating: 0, count: 32 * 32), [32, 32])])
        XCTAssertThrowsError(try load(dir)) { e in
            XCTAssertEqual(e as? CheckpointError, .otherModelTensor(key: "model.state_proj.weight", file: dir + "/model.safetensors", config: .pi05))
            XCTAssertTrue("\(e)".contains("model.state_proj.weight") && "\(e)".contains("π0"))
        }
        // A plain expert norm weight (π0's) next to the dense layers.
        let normKey = "model.paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.weight"
        let dir2 = try makeCase("pi05_tiny_1cam", folder: "b", extra: [(normKey, [Float](repeating: 0, count: 32), [32])])
        XCTAssertThrowsError(try load(dir2)) { e in
            XCTAssertEqual(e as? CheckpointError, .otherModelTensor(key: normKey, file: dir2 + "/model.safetensors", config: .pi05))
        }
    }

    func testConfigTypeThatDoesNotMatchTheWeightsIsNamed() throws {
        // π0 weights under a pi05 config, and π0.5 weights under a pi0 config.
        let pi0Weights = try makeCase("tiny_1cam", folder: "a", config: { $0["type"] = "pi05" })
        try FileManager.default.moveItem(atPath: pi0Weights + "/pi0_dims.json", toPath: pi0Weights + "/pi05_dims.json")
        XCTAssertThrowsError(try load(pi0Weights)) { e in
            guard case let .otherModelTensor(key, _, config)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertEqual(config, .pi05)
            XCTAssertEqual(key, "model.action_time_mlp_in.bias")
        }
        let pi05Weights = try makeCase("pi05_tiny_1cam", folder: "b", config: { $0["type"] = "pi0" })
        try FileManager.default.moveItem(atPath: pi05Weights + "/pi05_dims.json", toPath: pi05Weights + "/pi0_dims.json")
        // The dims file's use_adarms says π0.5.
        XCTAssertThrowsError(try Checkpoint(directory: pi05Weights)) { e in
            guard case .unsupported(_, "expert.use_adarms", _)? = e as? PI0ConfigError else { return XCTFail("\(e)") }
        }
        try FileManager.default.removeItem(atPath: pi05Weights + "/pi0_dims.json")
        try RandomCheckpoint.writeDimsFile(try Checkpoint(directory: Fixtures.path("pi05_tiny_1cam")).dims, to: pi05Weights + "/pi0_dims.json")
        XCTAssertThrowsError(try load(pi05Weights)) { e in
            guard case let .otherModelTensor(key, _, config)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertEqual(config, .pi0)
            XCTAssertEqual(key, "model.paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.bias")
        }
    }

    func testWrongWidthIsNamed() throws {
        let dense = "model.paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.weight"
        let dir = try makeCase("pi05_tiny_1cam", reshape: [dense: [64, 32]])
        XCTAssertThrowsError(try load(dir)) { e in
            guard case let .shapeMismatch(k, expected, actual, _, _)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertEqual(k, dense); XCTAssertEqual(expected, [96, 32]); XCTAssertEqual(actual, [64, 32])
        }
        let time = "model.time_mlp_in.weight"
        let dir2 = try makeCase("pi05_tiny_1cam", folder: "b", reshape: [time: [32, 64]])
        XCTAssertThrowsError(try load(dir2)) { e in
            guard case let .shapeMismatch(k, expected, actual, _, _)? = e as? CheckpointError else { return XCTFail("\(e)") }
            XCTAssertEqual(k, time); XCTAssertEqual(expected, [32, 32]); XCTAssertEqual(actual, [32, 64])
        }
    }

    func testConfigValuesLeRobotRefusesAreNamed() throws {
        // LeRobot's PI05Config.__post_init__ refuses n_action_steps > chunk_size and unknown variants, draccus
        // an unknown normalisation mode; an action feature wider than max_action_dim used to load and then
        // trap in PI0Policy.postprocess (slicing 40 values out of a 32-wide row).
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("n_action_steps", { $0["n_action_steps"] = 51 }),
            ("paligemma_variant", { $0["paligemma_variant"] = "gemma_7b" }),
            ("action_expert_variant", { $0["action_expert_variant"] = "gemma_1b" }),
            ("normalization_mapping.STATE", { $0["normalization_mapping"] = ["VISUAL": "IDENTITY", "STATE": "BOGUS", "ACTION": "QUANTILES"] }),
            ("output_features.action.shape", { $0["output_features"] = ["action": ["type": "ACTION", "shape": [40]]] }),
        ]
        for (i, (field, edit)) in cases.enumerated() {
            let dir = try makeCase("pi05_tiny_1cam", folder: "c\(i)", config: edit)
            XCTAssertThrowsError(try Checkpoint(directory: dir), field) { e in
                guard case let .invalidValue(file, f, _)? = e as? PI0ConfigError else { return XCTFail("\(field): \(e)") }
                XCTAssertEqual(file, dir + "/config.json")
                XCTAssertEqual(f, field)
            }
        }
        // The limits themselves are accepted: n_action_steps == chunk_size, an action as wide as max_action_dim.
        let edge = try makeCase("pi05_tiny_1cam", folder: "edge", config: { $0["n_action_steps"] = 50; $0["chunk_size"] = 50 })
        XCTAssertEqual(try Checkpoint(directory: edge).config.actionDim, 32)
    }

    func testPI05InputsCarryNoStateTensor() throws {
        let ckpt = try Checkpoint(directory: Fixtures.path("pi05_tiny_1cam"))
        let model = try PI0Model(checkpoint: ckpt, backend: ReferenceBackend())
        var inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: Fixtures.path("pi05_tiny_1cam") + "/inputs.safetensors"),
                                        dims: ckpt.dims, config: ckpt.config)
        XCTAssertTrue(inputs.state.isEmpty)
        inputs.state = [Float](repeating: 0, count: 32)
        XCTAssertThrowsError(try model.sampleActions(inputs)) {
            guard case .invalid("state", _)? = $0 as? PI0InputError else { return XCTFail("\($0)") }
        }
    }

    /// LeRobot's PiGemmaRMSNorm on random x and cond (the fixture's component tensors), through the
    /// expert's layer-0 input norm; and the plain VLM norm.
    func testAdaptiveAndPlainRMSNormMatchLeRobot() throws {
        for name in ["pi05_tiny_1cam", "pi05_tiny_2cam_bf16"] {
            let dir = Fixtures.path(name)
            let model = try PI0Model(checkpoint: try Checkpoint(directory: dir), backend: ReferenceBackend())
            let out = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let x = try out.floats("adarms_in"), cond = try out.floats("adarms_cond_in")
            let shape = try out.info("adarms_in").shape, b = shape[0], t = shape[1], w = shape[2]
            let e = model.expert, be = model.backend
            let mods = DeviceTensor(shape: [e.normCount, b, 3 * w], backend: be)
            let condT = DeviceTensor(shape: [b, w], uploading: cond, backend: be), xT = DeviceTensor(shape: [b * t, w], uploading: x, backend: be)
            e.modulations(cond: condT.ref, rows: b, into: mods.ref)
            let y = DeviceTensor(shape: [b * t, w], backend: be)
            e.norm(e.layers[0].inputNorm, xT.ref, batch: b, tokens: t, modulation: mods.ref, out: y.ref)
            let tol: (Double, Double) = model.bf16 ? (0.999, 1e-2) : (0.99999, 2e-5)
            let r = ParityResult(name: "adarms_out", actual: be.download(y.ref, count: y.count), expected: try out.floats("adarms_out"))
            XCTAssertTrue(r.passes(minPCC: tol.0, maxRelL2: tol.1), "\(name) \(r)")
            // The gate [B, W] as the norm returns it (in the hidden dtype).
            let gate = (0..<b).flatMap { be.download(mods + $0 * 3 * w + 2 * w, count: w) }.map { model.bf16 ? BFloat16.round($0) : $0 }
            let g = ParityResult(name: "adarms_gate", actual: gate, expected: try out.floats("adarms_gate"))
            XCTAssertTrue(g.passes(minPCC: tol.0, maxRelL2: tol.1), "\(name) \(g)")

            let px = try out.floats("rmsnorm_in"), ps = try out.info("rmsnorm_in").shape
            let pxT = DeviceTensor(shape: [ps[0] * ps[1], ps[2]], uploading: px, backend: be)
            let py = DeviceTensor(shape: [ps[0] * ps[1], ps[2]], backend: be)
            model.vlm.norm(model.vlm.layers[0].inputNorm, pxT.ref, batch: ps[0], tokens: ps[1], modulation: nil, out: py.ref)
            let p = ParityResult(name: "rmsnorm_out", actual: be.download(py.ref, count: py.count), expected: try out.floats("rmsnorm_out"))
            XCTAssertTrue(p.passes(minPCC: tol.0, maxRelL2: tol.1), "\(name) \(p)")
        }
    }
}
