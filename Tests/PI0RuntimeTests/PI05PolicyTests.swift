// π0.5 through the policy, the server's layouts and `pi0 run`: a tiny random π0.5 checkpoint with
// QUANTILES processor files and the demo tokenizer, written at test time. The state must reach the model
// only through the prompt: normalised by the checkpoint's stats, binned, written, tokenised without π0's
// newline; no state tensor.
import Foundation
import XCTest
import ImageIO
import MessagePack
import PI0
@testable import PI0Runtime
import PI0Server
import PI0Tensor
import PI0TestSupport
import SafeTensors
import SentencePiece

/// A tiny random π0.5 checkpoint (3 cameras, 14-d state and actions) with processor files whose
/// quantiles map a raw value x to x/2, and the demo tokenizer (vocabulary 1024) as tokenizer.model.
enum PI05PolicyCheckpoint {
    static func make(at dir: String) throws {
        let vlm = GemmaDims(width: 64, depth: 1, mlpDim: 128, heads: 8, kvHeads: 1, headDim: 16, vocabSize: 1024)
        let expert = GemmaDims(width: 32, depth: 1, mlpDim: 64, heads: 8, kvHeads: 1, headDim: 16, vocabSize: 1024)
        let dims = ModelDims(vision: SigLIPDims(hidden: 32, layers: 1, heads: 4, intermediate: 64, patchSize: 14, imageSize: 28),
                             vlm: vlm, expert: expert)
        try RandomCheckpoint.write(to: dir, dims: dims, model: .pi05, dtype: .float32, seed: 5, writeDims: true)
        let fixtures = Bundle.module.resourcePath! + "/Fixtures"
        try FileManager.default.copyItem(atPath: fixtures + "/tokenizer/demo_bpe.model", toPath: dir + "/tokenizer.model")
        let features: [String: Any] = ["observation.state": ["type": "STATE", "shape": [14]], "action": ["type": "ACTION", "shape": [14]]]
        let normMap = ["VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"]
        for (file, registry, stats) in [("policy_preprocessor", "normalizer_processor", "policy_preprocessor_step_4_normalizer_processor.safetensors"),
                                        ("policy_postprocessor", "unnormalizer_processor", "policy_postprocessor_step_0_unnormalizer_processor.safetensors")] {
            let json: [String: Any] = ["name": file, "steps": [["registry_name": registry, "state_file": stats,
                                                                 "config": ["eps": 1e-8, "features": features, "norm_map": normMap]]]]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/" + file + ".json"))
            var w = SafeTensorsWriter()
            for key in ["observation.state", "action"] {
                try w.add(key + ".q01", floats: [Float](repeating: -2, count: 14), shape: [14])
                try w.add(key + ".q99", floats: [Float](repeating: 2, count: 14), shape: [14])
            }
            try w.write(to: dir + "/" + stats)
        }
    }

    /// Raw states and the bins LeRobot writes for them (normalised x/2, bins digitize(x/2) − 1).
    static let rawState: [Float] = [-2, 2, 0, 1, -1, 4, -4, 0.5, -0.5, 1.5, -1.5, 0.25, -0.25, 3]
    static let bins = [0, 255, 128, 192, 64, 255, -1, 160, 96, 224, 32, 144, 112, 255]
}

final class PI05PolicyTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pi05-policy-\(UUID().uuidString)"
        try PI05PolicyCheckpoint.make(at: dir)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func frame(_ seed: Int, side: Int = 40) -> CameraFrame {
        var px = [UInt8]()
        for y in 0..<side { for x in 0..<side { px += [UInt8((x * 5 + seed) % 256), UInt8((y * 3 + seed) % 256), UInt8((x + y) % 256)] } }
        return CameraFrame(RGBImage(width: side, height: side, pixels: px))
    }

    func testStateReachesTheModelOnlyThroughThePrompt() throws {
        let policy = try PI0Policy(checkpoint: dir, backend: ReferenceBackend())
        XCTAssertEqual(policy.model.kind, .pi05)
        let expected = "Task: pick up the cube, State: \(PI05PolicyCheckpoint.bins.map(String.init).joined(separator: " "));\nAction: "
        XCTAssertEqual(try policy.promptText(task: " pick_up the cube", state: PI05PolicyCheckpoint.rawState), expected)
        let obs = Observation(images: ["cam_high": frame(1)], state: PI05PolicyCheckpoint.rawState, prompt: " pick_up the cube")
        let inputs = try policy.preprocess(obs)
        XCTAssertTrue(inputs.state.isEmpty)
        let tokenizer = PI0PromptTokenizer(processor: try SentencePieceProcessor(modelPath: dir + "/tokenizer.model"), maxLength: 200)
        let want = tokenizer.encode(expected, appendNewline: false)
        XCTAssertEqual(inputs.langTokens[0], want.tokens)
        XCTAssertEqual(inputs.langMasks[0], want.mask)
        XCTAssertEqual(inputs.langTokens[0].count, 200)
        XCTAssertNotEqual(tokenizer.encode(expected).tokens, want.tokens, "π0's newline step must not run for π0.5")
        // A different state changes the tokens; the actions follow.
        var other = obs; other.state[0] = 2
        XCTAssertNotEqual(try policy.preprocess(other).langTokens, inputs.langTokens)
        let a = try policy.predictActionChunk(obs, seed: 4), b = try policy.predictActionChunk(other, seed: 4)
        XCTAssertEqual(a.horizon, 50); XCTAssertEqual(a.actionDim, 14)
        XCTAssertTrue(a.values.allSatisfy { $0.isFinite })
        XCTAssertNotEqual(a.values, b.values)
        // The chunk is the model's output, un-normalised: x = (y + 1)·(q99 − q01)/2 + q01 in LeRobot's op order.
        var raw = inputs; raw.noise = nil
        let y = try policy.model.sampleActions(raw, seed: 4).array
        var expectedChunk: [Float] = []
        for t in 0..<50 { for d in 0..<14 { let p = (y[t * 32 + d] + 1) * 4; expectedChunk.append(p / 2 + -2) } }
        XCTAssertEqual(a.values, expectedChunk)
        // Non-finite raw states are refused before anything runs.
        var bad = obs; bad.state[3] = .nan
        XCTAssertThrowsError(try policy.preprocess(bad)) { guard case .badState? = $0 as? PolicyError else { return XCTFail("\($0)") } }
    }

    func testEveryServerLayoutRunsAPI05Checkpoint() async throws {
        let policy = try PI0Policy(checkpoint: dir, backend: try Backends.cpu(threads: 2))
        func img(_ shape: [Int]) -> NumpyValue { .array(NDArray(uint8: (0..<shape.reduce(1, *)).map { UInt8($0 % 251) }, shape: shape)) }
        func floats(_ v: [Float]) -> NumpyValue { .array(NDArray(floats: v, shape: [v.count])) }
        func map(_ pairs: [(String, NumpyValue)]) -> NumpyValue { .map(pairs.map { (.string($0.0), $0.1) }) }
        let prompt: (String, NumpyValue) = ("prompt", .value(.string("fold the towel")))
        let observations: [(ObservationLayout, NumpyValue, Int)] = [
            (.libero, map([("observation/image", img([32, 32, 3])), ("observation/wrist_image", img([32, 32, 3])),
                           ("observation/state", floats([Float](repeating: 0.3, count: 8))), prompt]), 7),
            (.aloha, map([("images", map([("cam_high", img([3, 32, 32])), ("cam_left_wrist", img([3, 32, 32]))])),
                          ("state", floats([Float](repeating: -0.3, count: 14))), prompt]), 14),
            (.droid, map([("observation/exterior_image_1_left", img([32, 32, 3])), ("observation/wrist_image_left", img([32, 32, 3])),
                          ("observation/joint_position", floats([Float](repeating: 0.1, count: 7))),
                          ("observation/gripper_position", floats([0.5])), prompt]), 8),
            (.native, map([("observation.images.cam_high", img([3, 32, 32])),
                           ("observation.state", floats([Float](repeating: 1, count: 14))), prompt]), 14),
        ]
        for (layout, obs, actionDim) in observations {
            let service = PI0PolicyService(policy: policy, layout: layout, fixedSeed: 9, strictObservations: false)
            let out = try await service.infer(obs)
            XCTAssertEqual(out.shape, [50, actionDim], "\(layout)")
            guard case .map(let meta) = service.metadata else { return XCTFail("metadata") }
            XCTAssertTrue(meta.contains { $0.0 == .string("policy") && $0.1 == .string("pi05") }, "\(meta)")
        }
    }

    func testRunPolicyModeOnAPI05Checkpoint() throws {
        let png = dir + "/top.png"
        var px = [UInt8]()
        for y in 0..<30 { for x in 0..<40 { px += [UInt8(x * 6), UInt8(y * 8), 9] } }
        let image = RGBImage(width: 40, height: 30, pixels: px)
        try Data(PNG.encode(image)).write(to: URL(fileURLWithPath: png))
        let state = PI05PolicyCheckpoint.rawState
        let r = try CLI.run(["run", "--checkpoint", dir, "--image", "cam_high=" + png, "--state", state.map { "\($0)" }.joined(separator: ","),
                             "--prompt", "pick up the cube", "--output", dir + "/a.json", "--seed", "3", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("π0.5"), r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/a.json"))) as! [String: Any]
        XCTAssertEqual(json["shape"] as? [Int], [50, 14])
        let cli = (json["actions"] as! [[Double]]).flatMap { $0 }.map(Float.init)
        let policy = try PI0Policy(checkpoint: dir, backend: try Backends.cpu(threads: 2))
        let lib = try policy.predictActionChunk(Observation(images: ["cam_high": CameraFrame(image)], state: state, prompt: "pick up the cube"), seed: 3)
        XCTAssertTrue(ParityResult(name: "cli", actual: cli, expected: lib.values).passes(minPCC: 0.999999, maxRelL2: 1e-6))
        // The same prompt through `pi0 prompt --checkpoint`.
        let p = try CLI.run(["prompt", "--checkpoint", dir, "--task", "pick up the cube", "--state", state.map { "\($0)" }.joined(separator: ",")])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertEqual(p.stdout, try policy.promptText(task: "pick up the cube", state: state) + "\n")
    }
}
